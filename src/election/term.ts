/** A term of leadership, as the elector hands it out: types only, so that the library's
 *  public types need nothing else. */

/** One term of leadership. */
export interface Term {
  readonly identity: string;
  readonly uid: string;
  /** leaseTransitions of this term: larger than any earlier term's on the same Lease object. */
  readonly fencingToken: number;
  /** How long after the anchor the work may start: a Lease object we created, one that
   *  replaced an object we saw, or a free record that no release wrote, may have been
   *  deleted or cleared under a leader that has not yet noticed (see timing.ts holdMs);
   *  0 otherwise. */
  readonly holdMs: number;
}

export type LossReason = 'renew-deadline' | 'holder-changed' | 'deleted' | 'recreated' | 'modified';
