/**
 * The start-up window: how long a run keeps retrying before it has reached the API server
 * (--startup-timeout, then 69), and how a denial (401/403) is told from one by an apiserver
 * that is still starting — a restarted apiserver denies every request until its authorizer
 * has warmed up. On the injected clock.
 */

import { formatDuration } from '../core/duration.ts';
import { ExitStatus } from '../core/exit-status.ts';
import type { Clock } from '../core/time.ts';
import type { ApiError } from '../kube/errors.ts';
import type { Fatal } from './events.ts';
import type { Verdict } from './failures.ts';

/** What to do with a campaign error: retry it (and say so), ask the server whether it is
 *  starting before judging a denial, or end the run. */
export type StartupDecision =
  | { readonly do: 'retry'; readonly message: string }
  | { readonly do: 'ask-if-starting' }
  | { readonly do: 'end'; readonly fatal: Fatal };

export class StartupWindow {
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  /** How the timeout is named in messages (`--startup-timeout`). */
  readonly #option: string;
  readonly #startedAt: number;
  #reached = false;
  #lastAnswerAt = Number.NEGATIVE_INFINITY;
  /** Start of a run of denials not interrupted by an answer. */
  #deniedSince: number | null = null;
  #asking = false;
  #lastError = '';

  readonly #server: string;

  /** `server`: the API server's address, which the failure names. */
  constructor(clock: Clock, timeoutMs: number, option: string, server: string) {
    this.#server = server;
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
    this.#option = option;
    this.#startedAt = clock.now().mono;
  }

  /** A request had a 2xx answer. */
  answered(): void {
    this.#reached = true;
    this.#lastAnswerAt = this.#clock.now().mono;
  }

  /** A campaign request failed; `verdict` is the failure policy's. */
  failed(e: ApiError, verdict: Verdict): StartupDecision {
    if (e.kind !== 'unavailable' && e.kind !== 'tls') this.#reached = true;
    if (!verdict.retry && (e.status === 401 || e.kind === 'forbidden')) {
      if (this.#asking) return { do: 'retry', message: '' };
      this.#asking = true;
      return { do: 'ask-if-starting' };
    }
    if (!verdict.retry) return { do: 'end', fatal: verdict };
    if (!this.#reached && this.#clock.now().mono - this.#startedAt >= this.#timeoutMs) return { do: 'end', fatal: this.#unreachable(e.message) };
    this.#lastError = e.message;
    return { do: 'retry', message: e.message };
  }

  /** The answer to ask-if-starting, for the denial `e` and its verdict. */
  starting(isStarting: boolean, e: ApiError, verdict: Verdict): StartupDecision {
    this.#asking = false;
    const now = this.#clock.now().mono;
    if (this.#deniedSince === null || this.#lastAnswerAt > this.#deniedSince) this.#deniedSince = now;
    if (isStarting && now - this.#deniedSince < this.#timeoutMs) return { do: 'retry', message: `${e.message}; the API server is still starting: retrying` };
    return verdict.retry ? { do: 'retry', message: e.message } : { do: 'end', fatal: verdict };
  }

  /** At the end of the window: the failure if the server was never reached. */
  expired(): Fatal | undefined {
    if (this.#reached) return undefined;
    return this.#unreachable(this.#lastError);
  }

  /** The same words whichever comes first at the end of the window: the timer or a failure. */
  #unreachable(lastError: string): Fatal {
    return {
      status: ExitStatus.unavailable,
      event: 'unreachable',
      message: `API server unreachable for ${formatDuration(this.#timeoutMs)} (${this.#option}) at ${this.#server}${lastError ? `: ${lastError}` : ''}`,
    };
  }
}
