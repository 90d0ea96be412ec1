/**
 * Time as leader-run measures it: an instant on both clocks, a clock that can be injected,
 * and elapsed time that a suspended host cannot fool.
 */

/** A point in time on both clocks: monotonic (CLOCK_MONOTONIC, shared by the processes of one
 *  host, so leader-run and its watchdog can hand each other instants) and wall. */
export interface Instant {
  readonly mono: number;
  readonly wall: number;
}

/** The one clock the decisions of a run are made on; tests inject a fake one. */
export interface Clock {
  now(): Instant;
  /** Calls fn after ms; returns a function that cancels the call. */
  after(ms: number, fn: () => void): () => void;
}

/** Both clocks now. */
export function instantNow(): Instant {
  return { mono: Number(process.hrtime.bigint()) / 1e6, wall: Date.now() };
}

export const systemClock: Clock = {
  now: instantNow,
  after(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(t);
  },
};

/** Time since `since`, as the larger of monotonic and wall-clock elapsed time, so a host that
 *  slept (monotonic clocks stop during suspend) never believes it still leads. */
export function elapsedMs(since: Instant, now: Instant): number {
  return Math.max(now.mono - since.mono, now.wall - since.wall);
}
