/**
 * Leader election on a Lease, interoperable with client-go's leaderelection.
 *
 * What it guarantees: while `leading` is true, this process's last successful write is
 * less than R old (measured on both the monotonic and the wall clock), so its lease is
 * valid for at least D − R more; the moment that stops being true, or the Lease shows
 * another holder, is deleted, recreated or changed by a write we did not make,
 * `stoppedLeading` fires — from a timer, never waiting on a request. Every request
 * carries a deadline no later than the time the lease has left.
 *
 * What it does not do: stop the work. Fencing the child within the remaining D − R is
 * the job of src/child (and of its watchdog, which keeps the deadline even when this
 * process is frozen). Followers judge expiry only by how long they have watched a record
 * not change, on their own monotonic clock; they never compare renewTime with their
 * wall clock.
 *
 * An elector campaigns once: after losing the lease it stays stopped, and leader-run
 * exits so its supervisor restarts it from a clean state.
 */
import { type Clock, elapsedMs, type Instant } from '../core/time.ts';
import { ApiError } from '../kube/errors.ts';
import type { LeaseLock } from '../lease/lock.ts';
import {
  acquireSpec,
  HANDOVER_ANNOTATION,
  handedOverTo,
  handoverSpec,
  handoverValue,
  holderOf,
  isReleased,
  type LeaseSnapshot,
  type LeaseSpec,
  observationKey,
  releaseSpec,
  renewSpec,
  sameClaim,
  stepDownRequestOf,
  transitionsOf,
  withAnnotations,
} from '../lease/record.ts';
import type { LossReason, Term } from './term.ts';
import {
  checkTiming,
  type Deadlines,
  deadlines,
  expiryAfterMs,
  followerRetryMs,
  holdMs,
  recordDurationSeconds,
  renewAttemptMs,
  type Timing,
  TimingError,
} from './timing.ts';

export interface ElectorConfig {
  readonly identity: string;
  readonly timing: Timing;
  /** For jitter; injected so tests are deterministic. */
  readonly random?: () => number;
  /** Coordinated leader election (KEP-4355): the API server's controller names the holder.
   *  The elector never creates or takes the Lease; it claims it only when the controller has
   *  named it, and a preferredHolder other than itself asks it to step down. */
  readonly coordinated?: boolean;
}

export type { LossReason, Term } from './term.ts';

export interface ElectorEvents {
  /** We lead; `anchor` is the send time of the write that won, `won` the Lease it wrote. */
  startedLeading(term: Term, anchor: Instant, won: LeaseSnapshot): void;
  /** Leadership is lost; fence now. */
  stoppedLeading(reason: LossReason, detail: string): void;
  /** A holder different from the last one seen (ourselves included), as client-go's OnNewLeader. */
  newLeader?(holder: string): void;
  /** A renewal succeeded; the lease is now anchored at `anchor`. */
  renewed?(anchor: Instant, latencyMs: number): void;
  /** While leading: the Lease carries a step-down request for this term (once per term);
   *  `to`: the identity to hand the Lease to. */
  stepDownRequested?(to: string | undefined): void;
  /** A renewal failed while leading; still leading until the renew deadline. */
  renewFailed?(err: ApiError): void;
  /** A request of the campaign (before leading, or a release) failed; the elector carries on. */
  campaignError?(err: ApiError): void;
  /** A request had a 2xx answer: the API server is reachable and lets us in. */
  answered?(): void;
  /** The follower's watch failed; it polls instead (for good if the watch is forbidden). */
  watchFailed?(err: ApiError): void;
  /** A try at the Lease found it held: by `holder` (`ours`: our identity, in a record this
   *  process did not write), expiring `earliestMs` from now at the earliest if not renewed. */
  declined?(holder: string, earliestMs: number, ours: boolean): void;
}

type State = 'idle' | 'following' | 'leading' | 'lost' | 'released' | 'stopped';

/** #tryAcquire's answer when another candidate wrote first. */
const LOST_RACE = -1;

export class Elector {
  readonly #lock: LeaseLock;
  readonly #clock: Clock;
  readonly #cfg: ElectorConfig;
  readonly #events: ElectorEvents;
  readonly #random: () => number;
  readonly #d: Deadlines;

  #state: State = 'idle';
  #observedKey = '';
  #observedAt = Number.NEGATIVE_INFINITY;
  #observed: LeaseSnapshot | null = null;
  #lastHolder = '';
  /** Per Lease object (uid) observed: when we first saw it (monotonic), the largest
   *  leaseDurationSeconds of its records that were not releases, its largest leaseTransitions. */
  #seen = new Map<string, { firstAt: number; durationS: number; transitions: number }>();

  /** Leader: the snapshot we last wrote (or adopted), the anchor of its write, our term. */
  #current: LeaseSnapshot | null = null;
  #anchor: Instant | null = null;
  #term: Term | null = null;
  #lossReason: LossReason | null = null;
  /** Writes sent whose outcome we do not know (no answer before the deadline), by renewTime. */
  #pending = new Map<string, Instant>();
  /** The renewTime of a create we sent whose answer we missed, if any. */
  #pendingCreate: string | null = null;
  /** Whether a write we sent whose answer we missed took a free record that no release wrote. */
  #unreleasedFree = false;

  /** The follower's watch on the Lease, while it runs; the snapshot its last event brought. */
  #watch: AbortController | null = null;
  #fromWatch: { snap: LeaseSnapshot | null } | null = null;
  /** RBAC without the watch verb: poll instead, and stop asking. */
  #watchForbidden = false;

  #inflight: AbortController | null = null;
  #cancelGuard: (() => void) | null = null;
  #wake: (() => void) | null = null;
  #running: Promise<void> | null = null;
  #following: Promise<void> | null = null;

  /** Throws TimingError for a timing set that could let the child outlive the lease. */
  constructor(cfg: ElectorConfig, lock: LeaseLock, clock: Clock, events: ElectorEvents) {
    const problem = checkTiming(cfg.timing);
    if (problem) throw new TimingError(problem);
    this.#d = deadlines(cfg.timing);
    this.#cfg = cfg;
    this.#lock = lock;
    this.#clock = clock;
    this.#events = events;
    this.#random = cfg.random ?? Math.random;
  }

  get leading(): boolean {
    return this.#state === 'leading';
  }
  get state(): State {
    return this.#state;
  }
  get term(): Term | null {
    return this.#term;
  }
  get anchor(): Instant | null {
    return this.#anchor;
  }
  /** How much longer the lease is ours for certain: R − time since the anchor, measured now
   *  on both clocks; 0 when not leading. Ask it right before starting work. */
  validForMs(): number {
    if (this.#state !== 'leading' || !this.#anchor) return 0;
    return Math.max(0, this.#cfg.timing.renewDeadlineMs - elapsedMs(this.#anchor, this.#clock.now()));
  }
  get lossReason(): LossReason | null {
    return this.#lossReason;
  }
  /** The last snapshot seen, for status reporting. */
  get observed(): LeaseSnapshot | null {
    return this.#observed;
  }

  /** Campaigns, then renews while leading. Resolves when leadership is lost, the elector is
   *  stopped, or the lease is released. */
  run(): Promise<void> {
    if (!this.#running) {
      this.#state = 'following';
      this.#following = this.#follow();
      this.#running = this.#following.then(() => (this.#state === 'leading' ? this.#renew() : undefined));
    }
    return this.#running;
  }

  /** Stops campaigning. A write already in flight is allowed to finish, so we never hold a
   *  lease without knowing it; if it won, `leading` is true afterwards and the caller releases.
   *  A write of ours whose answer was lost may still have landed: if the Lease holds one, it
   *  is released here (no work ran under it). Resolves true if it released one. */
  async stopCampaigning(): Promise<boolean> {
    if (this.#state === 'following' || this.#state === 'idle') {
      this.#state = 'stopped';
      this.#stopWatch();
      this.#wake?.();
    }
    await this.#following;
    if (this.#state !== 'stopped' || this.#pending.size === 0) return false;
    const deadlineMs = this.#d.followerRequestMs;
    const snap = await this.#call((s) => this.#lock.get(s), deadlineMs).catch(() => null);
    if (!snap || holderOf(snap) !== this.#cfg.identity || !this.#pending.has(snap.spec.renewTime ?? '')) return false;
    this.#pending.clear();
    try {
      await this.#call((s) => this.#lock.update(snap, releaseSpec(snap, this.#clock.now().wall), s), deadlineMs);
      return true;
    } catch (e) {
      if (!(e instanceof ApiError && e.kind === 'conflict')) this.#report(e);
      return false;
    }
  }

  /** Ends our term: stops renewing and, if the Lease still holds our last write, clears it so
   *  the next candidate takes over at once. Call only once the child is confirmed gone.
   *  `annotations` go in the same write (--once-per's record), so the Lease is never free
   *  without them; `handoverTo`: write the record that hands the Lease to that identity
   *  (record.ts, HANDOVER_ANNOTATION) instead of a free one. Resolves true if it was written. */
  async release(opts: { annotations?: Record<string, string> | undefined; handoverTo?: string | undefined } = {}): Promise<boolean> {
    const deadlineMs = renewAttemptMs(this.#cfg.timing, this.#cfg.timing.renewDeadlineMs);
    const canRelease = this.#state === 'leading' || (this.#state === 'lost' && this.#lossReason === 'renew-deadline');
    // A renewal in flight is let finish (it is bounded by its deadline): its write may land,
    // and the release must then start from it, not conflict with it.
    this.#stopLeading('released');
    await this.#running;
    if (!canRelease || !this.#current) return false;
    let current: LeaseSnapshot = this.#current;
    for (;;) {
      try {
        const wall = this.#clock.now().wall;
        const to = opts.handoverTo;
        const spec = to ? handoverSpec(current, to, wall) : releaseSpec(current, wall);
        const annotations = { ...opts.annotations, ...(to && { [HANDOVER_ANNOTATION]: handoverValue(this.#cfg.identity, spec) }) };
        const from = Object.keys(annotations).length > 0 ? withAnnotations(current, annotations) : current;
        this.#current = await this.#call((s) => this.#lock.update(from, spec, s), deadlineMs);
        return true;
      } catch (e) {
        // A conflict is either our own renewal whose answer we missed — release from it — or
        // someone else's write, and then there is nothing of ours to release.
        const ours: LeaseSnapshot | null = e instanceof ApiError && e.kind === 'conflict' ? await this.#ownLatest(current, deadlineMs) : null;
        if (ours) {
          current = ours;
          continue;
        }
        if (e instanceof ApiError && e.kind !== 'conflict') this.#events.campaignError?.(e);
        return false;
      }
    }
  }

  /** Ends our term without releasing: the Lease is left to expire. For a term whose work
   *  could not be confirmed stopped. */
  abandon(): void {
    this.#stopLeading('released');
  }

  /** The Lease, if it still carries our claim as `known` left it — only its metadata
   *  changed (a label, an annotation) — or a write of ours sent after `known` whose answer
   *  we missed (an unanswered renewal). */
  async #ownLatest(known: LeaseSnapshot, deadlineMs: number): Promise<LeaseSnapshot | null> {
    const snap = await this.#call((s) => this.#lock.get(s), deadlineMs).catch(() => null);
    if (!snap || snap.uid !== known.uid || holderOf(snap) !== this.#cfg.identity) return null;
    if (sameClaim(snap.spec, known.spec)) return snap;
    if (!this.#pending.has(snap.spec.renewTime ?? '')) return null;
    this.#pending.delete(snap.spec.renewTime ?? '');
    return snap;
  }

  // ---- following -------------------------------------------------------------------

  async #follow(): Promise<void> {
    const t = this.#cfg.timing;
    // undefined: read the Lease before deciding. With a watch running, a read happens only
    // at the instant the observed record would expire (to confirm it), after a conflict,
    // or when the watch fails; in between, decisions are made on what the watch delivers.
    let snap: LeaseSnapshot | null | undefined;
    while (this.#state === 'following') {
      if (snap === undefined) {
        try {
          snap = await this.#call((s) => this.#lock.get(s), this.#d.followerRequestMs);
        } catch (e) {
          this.#report(e);
          if (this.#state !== 'following') break; // the report may have stopped us
          await this.#sleep(followerRetryMs(t, this.#random));
          continue;
        }
        this.#observe(snap);
        // Whatever the watch did or did not deliver, continue from what we just read; what
        // the new watch delivers is newer, even if it comes at once.
        this.#stopWatch();
        this.#fromWatch = null;
        if (snap) this.#startWatch(snap.resourceVersion);
      }
      if (this.#state !== 'following') break;
      const waitMs = await this.#tryAcquire(snap);
      if (this.#state !== 'following') break;
      if (waitMs === LOST_RACE && this.#watch && !this.#fromWatch) {
        // The watch brings the winner's write: no need to read it (a herd of losers would).
        await this.#sleep(t.retryPeriodMs);
      } else if (waitMs <= 0) {
        snap = undefined;
        continue;
      }
      if (!this.#fromWatch && waitMs > 0) {
        // Watching: sleep until the observed record would expire (or an event comes).
        // Otherwise poll every retry period.
        const untilExpiry = this.#watch && snap && holderOf(snap) !== '' ? this.#expiresInMs(snap) : undefined;
        await this.#sleep(untilExpiry ?? waitMs);
      }
      const delivered = this.#fromWatch as { snap: LeaseSnapshot | null } | null; // set by the watch meanwhile
      this.#fromWatch = null;
      snap = delivered ? delivered.snap : undefined;
    }
    this.#stopWatch();
  }

  #expiresInMs(snap: LeaseSnapshot): number {
    const leftMs = expiryAfterMs(snap.spec.leaseDurationSeconds ?? undefined, this.#cfg.timing) - (this.#clock.now().mono - this.#observedAt);
    return Math.max(1, Math.ceil(leftMs));
  }

  #startWatch(fromVersion: string): void {
    const watch = this.#lock.watch?.bind(this.#lock);
    if (!watch || this.#watchForbidden) return;
    const ac = new AbortController();
    this.#watch = ac;
    void (async () => {
      let version = fromVersion;
      try {
        // The server ends a watch after a while: go on from the last version seen.
        while (!ac.signal.aborted && this.#state === 'following') {
          await watch(version, ac.signal, (snap) => {
            if (ac.signal.aborted || this.#state !== 'following') return;
            if (snap) version = snap.resourceVersion;
            this.#observe(snap);
            this.#fromWatch = { snap };
            this.#wake?.();
          });
        }
      } catch (e) {
        // Never fatal: polling decides just as safely, only more slowly.
        if (e instanceof ApiError && e.kind === 'forbidden') this.#watchForbidden = true;
        if (!ac.signal.aborted && e instanceof ApiError && e.kind !== 'gone') this.#events.watchFailed?.(e);
      }
      // Broken or stopped: if it was ours, go back to polling (the next read restarts it).
      if (this.#watch === ac) {
        this.#watch = null;
        this.#wake?.();
      }
    })();
  }

  #stopWatch(): void {
    this.#watch?.abort(new DOMException('watch no longer needed', 'AbortError'));
    this.#watch = null;
  }

  /** Tries to take the Lease; returns how long to wait before looking again (0: at once,
   *  LOST_RACE: another candidate wrote first). */
  async #tryAcquire(snap: LeaseSnapshot | null): Promise<number> {
    const t = this.#cfg.timing;
    const now = this.#clock.now();
    const holder = holderOf(snap);
    if (snap && holder === this.#cfg.identity) {
      // Ours only if it is a write of this process whose answer we missed; otherwise it is
      // an earlier incarnation or a collision, and waits to expire like anyone else's.
      const sent = this.#pending.get(snap.spec.renewTime ?? '');
      if (sent && elapsedMs(sent, now) < t.renewDeadlineMs) {
        this.#lead(snap, sent, snap.spec.renewTime === this.#pendingCreate || this.#replacedAnother(snap) || this.#unreleasedFree);
        return 0;
      }
    }
    if (this.#cfg.coordinated) return this.#tryClaim(snap, now);
    const leftMs = snap ? expiryAfterMs(snap.spec.leaseDurationSeconds ?? undefined, t) - (now.mono - this.#observedAt) : 0;
    // A record the last leader wrote, once its tree was gone, to hand the Lease to us: as free
    // as its release would have been, for us alone.
    if (snap && holder !== '' && leftMs > 0 && !handedOverTo(snap, this.#cfg.identity)) {
      this.#events.declined?.(holder, Math.ceil(leftMs), holder === this.#cfg.identity);
      // Wake at the expiry instant rather than up to a retry period after it.
      return Math.min(followerRetryMs(t, this.#random), Math.ceil(leftMs));
    }
    // A free record is taken at once; but unless a release wrote it, the term is held as for
    // a new object (see holdMs) — until it has been seen unchanged for as long as a held one.
    const unreleasedFree = !!snap && holder === '' && !isReleased(snap.spec) && leftMs > 0;
    const spec = acquireSpec(snap, this.#cfg.identity, recordDurationSeconds(t), now.wall, this.#transitionsBefore(snap));
    this.#pending.set(spec.renewTime ?? '', now);
    if (!snap) this.#pendingCreate = spec.renewTime ?? null;
    this.#unreleasedFree ||= unreleasedFree;
    try {
      const won = await this.#call((s) => (snap ? this.#lock.update(snap, spec, s) : this.#lock.create(spec, s)), this.#d.followerRequestMs);
      const fresh = !snap || this.#replacedAnother(won) || unreleasedFree;
      this.#observe(won);
      if (this.#state === 'following' || this.#state === 'stopped') this.#lead(won, now, fresh);
      return 0;
    } catch (e) {
      if (e instanceof ApiError && e.kind === 'conflict') return LOST_RACE; // someone else was first
      this.#report(e);
      return followerRetryMs(t, this.#random);
    }
  }

  /**
   * Coordinated: the controller names the holder (writing holderIdentity with a 5 s lease); we
   * claim a record naming us with a write of our own — our term, anchored at its send time,
   * with our lease duration and leaseTransitions + 1 (the controller never moves it, so the
   * fencing token still grows). The controller judges the previous holder expired by the API
   * server's wall clock against renewTime from that holder's clock, so it may name us while a
   * skewed predecessor still leads: the term is held until the predecessor's last record,
   * seen unchanged, would have expired by our own observation (at once after a release; a
   * lease duration if we never saw one), as a follower would judge it.
   */
  async #tryClaim(snap: LeaseSnapshot | null, now: Instant): Promise<number> {
    const t = this.#cfg.timing;
    const holder = holderOf(snap);
    if (!snap || holder !== this.#cfg.identity) {
      if (snap && holder) {
        const leftMs = expiryAfterMs(snap.spec.leaseDurationSeconds ?? undefined, t) - (now.mono - this.#observedAt);
        this.#events.declined?.(holder, Math.max(0, Math.ceil(leftMs)), false);
      }
      return followerRetryMs(t, this.#random);
    }
    const spec = acquireSpec(snap, this.#cfg.identity, recordDurationSeconds(t), now.wall, this.#transitionsBefore(snap));
    this.#pending.set(spec.renewTime ?? '', now);
    try {
      const won = await this.#call((s) => this.#lock.update(snap, spec, s), this.#d.followerRequestMs);
      this.#observe(won);
      if (this.#state === 'following' || this.#state === 'stopped') this.#lead(won, now, false);
      return 0;
    } catch (e) {
      if (e instanceof ApiError && e.kind === 'conflict') return LOST_RACE;
      this.#report(e);
      return followerRetryMs(t, this.#random);
    }
  }

  /** Coordinated: the last record of another holder seen, and when (monotonic) the lease it
   *  gave would have expired by our observation; null: the last was a release; undefined:
   *  none seen yet. */
  #predecessor: { until: number } | null | undefined = undefined;

  /** Whether `snap` is a Lease object that replaced one observed before, recently enough that
   *  the earlier one's leader may not have noticed the deletion yet: its last write came
   *  before the deletion, so before we first saw `snap`'s object, and its child is gone by
   *  that write + its D — at the latest, our first sight of this object + the longest D seen. */
  #replacedAnother(snap: LeaseSnapshot): boolean {
    const firstAt = this.#seen.get(snap.uid)?.firstAt ?? this.#clock.now().mono;
    if (this.#clock.now().mono - firstAt >= this.#longestSeenMs()) return false;
    for (const uid of this.#seen.keys()) if (uid !== snap.uid) return true;
    return false;
  }

  /** The largest leaseTransitions seen on Lease objects other than `snap`'s (-1: none), so a
   *  term on a recreated Lease gets a larger fencing token than the terms before it. */
  #transitionsBefore(snap: LeaseSnapshot | null): number {
    let max = -1;
    for (const [uid, s] of this.#seen) if (uid !== snap?.uid) max = Math.max(max, s.transitions);
    return max;
  }

  /** The largest lease duration of any record seen that was not a release: the longest lease
   *  a leader we may not have seen stop could be relying on. */
  #longestSeenMs(): number {
    let max = 0;
    for (const s of this.#seen.values()) max = Math.max(max, s.durationS * 1000);
    return max;
  }

  #observe(snap: LeaseSnapshot | null): void {
    this.#events.answered?.();
    const key = observationKey(snap);
    if (snap) {
      const seen = this.#seen.get(snap.uid) ?? { firstAt: this.#clock.now().mono, durationS: 0, transitions: -1 };
      if (!isReleased(snap.spec)) seen.durationS = Math.max(seen.durationS, snap.spec.leaseDurationSeconds ?? 0);
      seen.transitions = Math.max(seen.transitions, transitionsOf(snap));
      this.#seen.set(snap.uid, seen);
    }
    if (key !== this.#observedKey) {
      this.#observedKey = key;
      if (snap && this.#cfg.coordinated && this.#state !== 'leading') {
        const h = holderOf(snap);
        if (isReleased(snap.spec)) this.#predecessor = null;
        else if (h && h !== this.#cfg.identity)
          this.#predecessor = { until: this.#clock.now().mono + expiryAfterMs(snap.spec.leaseDurationSeconds ?? undefined, this.#cfg.timing) };
      }
      this.#observedAt = this.#clock.now().mono;
    }
    this.#observed = snap;
    const holder = holderOf(snap);
    if (holder && holder !== this.#lastHolder) this.#events.newLeader?.(holder);
    this.#lastHolder = holder;
  }

  // ---- leading ---------------------------------------------------------------------

  /** `fresh`: a Lease object new to us, one that replaced another, or a free record no
   *  release wrote (see #holdMs). */
  #lead(snap: LeaseSnapshot, anchor: Instant, fresh: boolean): void {
    // An answer that came too late leaves no lease worth starting on: let it expire.
    if (elapsedMs(anchor, this.#clock.now()) >= this.#cfg.timing.renewDeadlineMs) return;
    this.#state = 'leading';
    this.#stopWatch();
    this.#current = snap;
    this.#anchor = anchor;
    this.#pending.clear();
    this.#pendingCreate = null;
    this.#unreleasedFree = false;
    this.#stepDownSaid = false;
    this.#term = {
      identity: this.#cfg.identity,
      uid: snap.uid,
      fencingToken: transitionsOf(snap),
      holdMs: this.#holdMs(fresh, anchor),
    };
    this.#guard();
    if (this.#state === 'leading') this.#events.startedLeading(this.#term, anchor, snap);
  }

  /** How long after `anchor` the term's work must wait. Coordinated, the controller's word is
   *  not enough (see #tryClaim): until the predecessor's last record, seen unchanged, expires;
   *  0 after a release; a new-Lease hold if none was seen. Otherwise the new-Lease hold for a
   *  `fresh` term, 0 for any other. Every way to a term — a write that won, or one of ours whose
   *  answer was lost — comes through here. */
  #holdMs(fresh: boolean, anchor: Instant): number {
    const newLease = holdMs(this.#cfg.timing, this.#longestSeenMs());
    if (!this.#cfg.coordinated) return fresh ? newLease : 0;
    const p = this.#predecessor;
    return p === undefined ? newLease : p === null ? 0 : Math.max(0, Math.ceil(p.until - anchor.mono));
  }

  /** The timer that ends leadership at anchor + R, whatever the requests are doing. */
  #guard(): void {
    this.#cancelGuard?.();
    this.#cancelGuard = null;
    if (this.#state !== 'leading' || !this.#anchor) return;
    const el = elapsedMs(this.#anchor, this.#clock.now());
    const left = this.#cfg.timing.renewDeadlineMs - el;
    if (left <= 0) {
      this.#lose('renew-deadline', `no successful renewal for ${Math.round(el)}ms`);
      return;
    }
    this.#cancelGuard = this.#clock.after(Math.min(left, this.#d.guardTickMs), () => this.#guard());
  }

  async #renew(): Promise<void> {
    const t = this.#cfg.timing;
    // The write that won is the first renewal: the next one is due a retry period after it.
    if (this.#anchor) await this.#sleep(t.retryPeriodMs - (this.#clock.now().mono - this.#anchor.mono));
    while (this.#state === 'leading' && this.#current && this.#anchor) {
      const sent = this.#clock.now();
      const left = t.renewDeadlineMs - elapsedMs(this.#anchor, sent);
      const current = this.#current;
      const spec = renewSpec(current, sent.wall);
      this.#pending.set(spec.renewTime ?? '', sent);
      let next = t.retryPeriodMs;
      try {
        const snap = await this.#call((s) => this.#lock.update(current, spec, s), renewAttemptMs(t, left));
        this.#current = snap; // it landed: whatever comes next (a release) starts from it
        this.#pending.delete(spec.renewTime ?? '');
        if (this.#state !== 'leading') break;
        this.#anchor = sent;
        this.#pending.clear();
        this.#observe(snap);
        this.#guard();
        const now = this.#clock.now();
        this.#events.renewed?.(sent, now.mono - sent.mono);
        next = t.retryPeriodMs - (now.mono - sent.mono);
      } catch (e) {
        if (this.#state !== 'leading') break;
        if (e instanceof ApiError && e.kind === 'conflict') {
          next = await this.#reconcile();
        } else if (e instanceof ApiError && e.kind === 'not-found') {
          this.#lose('deleted', 'the Lease was deleted');
        } else {
          this.#report(e);
          next = this.#d.renewRetryMs;
        }
      }
      if (this.#state === 'leading') await this.#sleep(next);
    }
  }

  /** After a conflict while leading: decide whether the Lease is still ours. */
  async #reconcile(): Promise<number> {
    const current = this.#current;
    const anchor = this.#anchor;
    if (!current || !anchor) return 0;
    let snap: LeaseSnapshot | null;
    try {
      snap = await this.#call((s) => this.#lock.get(s), this.#cfg.timing.renewDeadlineMs - elapsedMs(anchor, this.#clock.now()));
    } catch (e) {
      this.#report(e);
      return this.#d.renewRetryMs;
    }
    if (this.#state !== 'leading') return 0;
    this.#observe(snap);
    const holder = holderOf(snap);
    if (!snap) this.#lose('deleted', 'the Lease was deleted');
    else if (snap.uid !== current.uid) this.#lose('recreated', 'the Lease was deleted and created again');
    else if (holder !== this.#cfg.identity) this.#lose('holder-changed', `the Lease now names ${JSON.stringify(holder)}`);
    if (!snap || this.#state !== 'leading') return 0;
    if (sameClaim(snap.spec, current.spec)) {
      // Only metadata changed (a label, an annotation): our claim stands at a new version.
      this.#current = snap;
      this.#checkStepDown(snap);
      return 0;
    }
    const sent = this.#pending.get(snap.spec.renewTime ?? '');
    if (sent && sameClaim(snap.spec, { ...current.spec, renewTime: snap.spec.renewTime })) {
      // A renewal of ours whose answer we missed did land; it anchors the lease at its send time.
      this.#current = snap;
      this.#anchor = sent;
      this.#pending.clear();
      this.#guard();
      if (this.#state === 'leading') this.#events.renewed?.(sent, this.#clock.now().mono - sent.mono);
      return 0;
    }
    this.#lose('modified', 'the Lease was changed by a write this process did not make');
    return 0;
  }

  #stepDownSaid = false;
  /** A step-down request is an annotation: it arrives as a metadata-only change. */
  #checkStepDown(snap: LeaseSnapshot): void {
    if (this.#stepDownSaid || this.#state !== 'leading' || !this.#term) return;
    // Coordinated: the controller marks a better candidate as preferredHolder and waits for
    // us to let go — a step-down, to no one in particular (it names the next holder itself).
    const preferred = this.#cfg.coordinated ? (snap.spec.preferredHolder ?? '') : '';
    const request =
      preferred && preferred !== this.#cfg.identity
        ? { holder: this.#cfg.identity, transitions: this.#term.fencingToken, to: undefined }
        : stepDownRequestOf(snap, this.#cfg.identity, this.#term.fencingToken);
    if (!request) return;
    this.#stepDownSaid = true;
    this.#events.stepDownRequested?.(request.to);
  }

  #lose(reason: LossReason, detail: string): void {
    if (this.#state !== 'leading') return;
    this.#lossReason = reason;
    this.#stopLeading('lost');
    this.#events.stoppedLeading(reason, detail);
  }

  #stopLeading(next: 'lost' | 'released'): void {
    if (this.#state === 'leading' || this.#state === 'following' || this.#state === 'idle') this.#state = next;
    this.#cancelGuard?.();
    this.#cancelGuard = null;
    this.#stopWatch();
    // Lost: nothing we send matters any more. Released: see release().
    if (next === 'lost') this.#inflight?.abort(new DOMException('leadership ended', 'AbortError'));
    this.#wake?.();
  }

  // ---- plumbing --------------------------------------------------------------------

  #report(e: unknown): void {
    const err = e instanceof ApiError ? e : new ApiError('other', e instanceof Error ? e.message : String(e));
    if (this.#state === 'leading') this.#events.renewFailed?.(err);
    else this.#events.campaignError?.(err);
  }

  async #call<T>(fn: (signal: AbortSignal) => Promise<T>, deadlineMs: number): Promise<T> {
    const ac = new AbortController();
    this.#inflight = ac;
    const cancel = this.#clock.after(Math.max(1, deadlineMs), () => ac.abort(new DOMException('deadline passed', 'TimeoutError')));
    try {
      if (deadlineMs <= 0) throw new ApiError('unavailable', 'no time left for the request');
      return await fn(ac.signal);
    } finally {
      cancel();
      if (this.#inflight === ac) this.#inflight = null;
    }
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const cancel = this.#clock.after(ms, () => {
        this.#wake = null;
        resolve();
      });
      this.#wake = () => {
        cancel();
        this.#wake = null;
        resolve();
      };
    });
  }
}

export type { LeaseSpec };
