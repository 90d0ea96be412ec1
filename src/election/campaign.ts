/**
 * A campaign for one of several Leases — `--slots N`, a semaphore on plain Leases, as
 * consul lock's `-n` — or for one (the ordinary run: a single slot). One Elector per Lease,
 * each following its own Lease through its own watch; the first to win is the term, and every
 * other is stopped at once, and released if it won too (no work ran under it).
 *
 * What it guarantees, per slot, is exactly what the Elector guarantees for its Lease: the
 * winner is an Elector like any other, and nothing here changes its timing. At most N terms
 * at once across all candidates follows from each Lease having at most one holder.
 */
import type { Clock, Instant } from '../core/time.ts';
import type { ApiError } from '../kube/errors.ts';
import type { LeaseLock } from '../lease/lock.ts';
import type { LeaseSnapshot } from '../lease/record.ts';
import { Elector, type ElectorConfig, type LossReason, type Term } from './elector.ts';

export interface CampaignEvents {
  /** Slot `slot` won: its term, the send time of the winning write, and the Lease it wrote. */
  startedLeading(term: Term, anchor: Instant, won: LeaseSnapshot, slot: number): void;
  /** The winning slot's events, as the Elector's. */
  stoppedLeading(reason: LossReason, detail: string): void;
  renewed?(anchor: Instant, latencyMs: number): void;
  stepDownRequested?(to: string | undefined): void;
  renewFailed?(err: ApiError): void;
  /** Any slot's. */
  newLeader?(holder: string, slot: number): void;
  campaignError?(err: ApiError): void;
  answered?(): void;
  watchFailed?(err: ApiError): void;
  /** A try at slot `slot` found its Lease held (as the Elector's); `all`: every slot's has. */
  declined?(holder: string, earliestMs: number, ours: boolean, slot: number, all: boolean): void;
}

export class Campaign {
  readonly #electors: Elector[];
  #winner: number | null = null;
  /** Slots given back after another won: their releases, awaited before the run ends. */
  readonly #drops: Promise<unknown>[] = [];

  constructor(cfg: ElectorConfig, locks: readonly LeaseLock[], clock: Clock, events: CampaignEvents) {
    const declined = new Set<number>();
    this.#electors = locks.map((lock, slot) => {
      const mine = () => this.#winner === slot;
      return new Elector(cfg, lock, clock, {
        startedLeading: (term, anchor, won) => {
          if (this.#winner !== null) return void this.#drops.push(this.#electors[slot]!.release());
          this.#winner = slot;
          for (const [i, e] of this.#electors.entries()) if (i !== slot) this.#drops.push(drop(e));
          events.startedLeading(term, anchor, won, slot);
        },
        stoppedLeading: (reason, detail) => mine() && events.stoppedLeading(reason, detail),
        renewed: (anchor, latencyMs) => mine() && events.renewed?.(anchor, latencyMs),
        stepDownRequested: (to) => mine() && events.stepDownRequested?.(to),
        renewFailed: (e) => mine() && events.renewFailed?.(e),
        newLeader: (holder) => events.newLeader?.(holder, slot),
        campaignError: (e) => events.campaignError?.(e),
        answered: () => events.answered?.(),
        watchFailed: (e) => events.watchFailed?.(e),
        declined: (holder, earliestMs, ours) => {
          declined.add(slot);
          events.declined?.(holder, earliestMs, ours, slot, declined.size === locks.length);
        },
      });
    });
  }

  /** Whether the winning slot leads now. */
  get leading(): boolean {
    return this.#winner !== null && this.#electors[this.#winner]!.leading;
  }

  /** The winning slot's last snapshot, else the first slot's: for /leader. */
  get observed(): LeaseSnapshot | null {
    return this.#electors[this.#winner ?? 0]!.observed;
  }

  run(): Promise<void> {
    return Promise.all(this.#electors.map((e) => e.run())).then(() => undefined);
  }

  /** Stops every slot's campaign (Elector.stopCampaigning); a slot that won meanwhile is the
   *  winner (`leading`), for the caller to release. Resolves true if a lost write was released. */
  async stopCampaigning(): Promise<boolean> {
    const lost = await Promise.all(this.#electors.map((e, i) => (i === this.#winner ? false : e.stopCampaigning())));
    await Promise.all(this.#drops);
    return lost.some(Boolean);
  }

  /** Elector.release, for the winning slot; only once its tree is confirmed gone. */
  async release(opts: Parameters<Elector['release']>[0] = {}): Promise<boolean> {
    const released = this.#winner === null ? false : await this.#electors[this.#winner]!.release(opts);
    await Promise.all(this.#drops);
    return released;
  }

  /** Elector.abandon, for the winning slot. */
  abandon(): void {
    if (this.#winner !== null) this.#electors[this.#winner]!.abandon();
  }
}

/** A slot another one beat: stop campaigning, and give it back if it won meanwhile. */
async function drop(e: Elector): Promise<void> {
  await e.stopCampaigning();
  if (e.leading) await e.release();
}
