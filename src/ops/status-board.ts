/**
 * The status board: what leader-run believes about itself, for the HTTP endpoints and the
 * metrics. run.ts updates it at each election and child event; /healthz, /readyz, /leader
 * and /metrics read it. It never feeds back into a decision: the elector, the supervisor and
 * the watchdog decide alone.
 */
import { elapsedMs, type Instant } from '../core/time.ts';

/** Who leads, as the last Lease read showed it. */
export interface LeaderView {
  readonly holder: string | null;
  /** The holder's acquireTime. */
  readonly since: string | null;
  readonly transitions: number | null;
}

/** Whoever wants to hear about events as they happen (the metrics). */
export interface StateSink {
  leading(on: boolean): void;
  termWon(): void;
  renewed(latencyMs: number): void;
  renewFailed(): void;
  fenced(ms: number): void;
  childExited(status: number): void;
}

export interface StateOptions {
  /** "namespace/name" */
  readonly lease: string;
  readonly identity: string;
  readonly renewDeadlineMs: number;
  /** The same clock as the elector's anchors. */
  readonly now: () => Instant;
}

/** Read on demand from the run, once it has an elector (see attach). */
export interface StateSources {
  /** Who leads, from the last Lease the elector saw. */
  readonly observed: () => LeaderView | null;
  /** Whether a stop sequence has begun. */
  readonly stopping: () => boolean;
}

export interface Health {
  readonly ok: boolean;
  readonly reason: string;
}

export class StatusBoard {
  readonly opts: StateOptions;
  #sources: StateSources = { observed: () => null, stopping: () => false };
  #leading = false;
  #lastWrite: Instant | null = null;
  #terms = 0;
  #sinks: Partial<StateSink>[] = [];
  /** Extra liveness checks (the event-loop stall detector); each returns a reason or undefined. */
  #checks: Array<() => string | undefined> = [];

  constructor(opts: StateOptions) {
    this.opts = opts;
  }

  /** The HTTP server starts before the elector exists; until then there is no Lease to show. */
  attach(sources: StateSources): void {
    this.#sources = sources;
  }

  subscribe(sink: Partial<StateSink>): void {
    this.#sinks.push(sink);
  }

  addLivenessCheck(check: () => string | undefined): void {
    this.#checks.push(check);
  }

  get leading(): boolean {
    return this.#leading;
  }

  // ---- events (run.ts) ---------------------------------------------------------------

  startedLeading(anchor: Instant): void {
    this.#leading = true;
    this.#lastWrite = anchor;
    this.#terms++;
    this.#emit((s) => s.termWon?.());
    this.#emit((s) => s.leading?.(true));
  }

  renewed(anchor: Instant, latencyMs: number): void {
    this.#lastWrite = anchor;
    this.#emit((s) => s.renewed?.(latencyMs));
  }

  renewFailed(): void {
    this.#emit((s) => s.renewFailed?.());
  }

  /** Leadership lost, or the term ended with a release. */
  notLeading(): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#emit((s) => s.leading?.(false));
  }

  fenced(ms: number): void {
    this.#emit((s) => s.fenced?.(ms));
  }

  childExited(status: number): void {
    this.#emit((s) => s.childExited?.(status));
  }

  // ---- reads (HTTP) ------------------------------------------------------------------

  /** Liveness: fails when we believe we lead but our last successful write is older than the
   *  renew deadline (the elector should already have given up: something is stuck), or when
   *  a liveness check (the event loop) reports a problem. */
  health(): Health {
    if (this.#leading && this.#lastWrite) {
      const el = elapsedMs(this.#lastWrite, this.opts.now());
      if (el > this.opts.renewDeadlineMs)
        return { ok: false, reason: `leading, but the last successful renewal was ${Math.round(el)}ms ago (renew deadline ${this.opts.renewDeadlineMs}ms)` };
    }
    for (const check of this.#checks) {
      const reason = check();
      if (reason) return { ok: false, reason };
    }
    return { ok: true, reason: 'ok' };
  }

  /** Readiness: a standby is ready too (it must not stall a rolling update); only stopping is not. */
  ready(): Health {
    return this.#sources.stopping() ? { ok: false, reason: 'stopping' } : { ok: true, reason: 'ok' };
  }

  /** "Which pod leads", as seen in the last Lease read. */
  leader(): { lease: string; holder: string | null; self: string; leading: boolean; since: string | null; transitions: number | null } {
    const v = this.#sources.observed();
    const holder = v?.holder || null;
    return {
      lease: this.opts.lease,
      holder,
      self: this.opts.identity,
      leading: this.#leading,
      since: holder ? (v?.since ?? null) : null,
      transitions: v?.transitions ?? null,
    };
  }

  /** Terms won by this process. */
  get terms(): number {
    return this.#terms;
  }

  #emit(fn: (s: Partial<StateSink>) => void): void {
    for (const s of this.#sinks) fn(s);
  }
}
