/**
 * Notices when the event loop was stuck: a timer that should fire every TICK_MS and records
 * how late it was. A stuck loop cannot answer /healthz at all, so what the probe can report
 * is a stall that just ended — it stays reported for `rememberMs` so a probe sees it.
 */

const TICK_MS = 100;

export class StallDetector {
  readonly #thresholdMs: number;
  readonly #rememberMs: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #expected = 0;
  #last: { endedAt: number; ms: number } | null = null;

  /** Stalls of at least `thresholdMs` are reported for `rememberMs` after they end. */
  constructor(thresholdMs: number, rememberMs: number, now: () => number = () => performance.now()) {
    this.#thresholdMs = thresholdMs;
    this.#rememberMs = rememberMs;
    this.#now = now;
  }

  start(): void {
    this.#expected = this.#now() + TICK_MS;
    // unref: watching the loop must never keep the process alive.
    this.#timer = setInterval(() => this.tick(), TICK_MS).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Exposed for tests; called by the timer. */
  tick(): void {
    const now = this.#now();
    const late = now - this.#expected;
    if (late >= this.#thresholdMs) this.#last = { endedAt: now, ms: late };
    this.#expected = now + TICK_MS;
  }

  /** Why the loop is not healthy, or undefined. */
  problem(): string | undefined {
    const s = this.#last;
    if (!s || this.#now() - s.endedAt > this.#rememberMs) return undefined;
    return `the event loop was stuck for ${Math.round(s.ms)}ms (limit ${this.#thresholdMs}ms), ${Math.round((this.#now() - s.endedAt) / 1000)}s ago`;
  }
}
