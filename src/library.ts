/**
 * The election as a library, for Node programs that lead in-process instead of running a
 * child: the same Lease record, timing rules, failure policy and kubeconfig handling as the
 * CLI.
 *
 *   const election = await LeaderElection.create({ lockName: 'reports' });
 *   election.on('started-leading', async ({ signal }) => { await work(signal); }); // the term's work
 *   process.on('SIGTERM', () => void election.stop());
 *   await election.start();
 *
 * What it guarantees: the work is told to stop (the term's signal aborts) when the term ends,
 * and the Lease is released only once the work has settled — the promise a started-leading
 * listener returned — and never while it may still run: work that does not settle within
 * `stopTimeoutMs` is not released over; the Lease is left to expire. A stop — stop(), or a
 * `leader-run step-down` naming this term — keeps the Lease renewed while the work drains; a
 * lost term cannot be renewed, so the work must stop within the lease's remaining D − R. `leading` is true only while work may run (after the new-Lease
 * hold), and `term.validForMs()` says how long the lease is certainly still ours.
 *
 * What only the CLI can guarantee: its child runs under a watchdog that kills it by the lease
 * deadline even if leader-run is frozen or dead. In-process work freezes with the process.
 */

import { systemClock } from './core/time.ts';
import { Elector } from './election/elector.ts';
import type { LossReason, Term } from './election/term.ts';
import { checkTiming, DEFAULT_TIMING, type Timing, type TimingField, timingMessage } from './election/timing.ts';
import type { KubeClient } from './kube/client.ts';
import { ConfigError } from './kube/config-error.ts';
import type { ApiError } from './kube/errors.ts';
import { connectLease } from './lease/connect.ts';
import { defaultIdentity, LEASE_NAME, NAMESPACE_NAME } from './lease/record.ts';
import { type FailureContext, verdictFor } from './supervisor/failures.ts';
import { type StartupDecision, StartupWindow } from './supervisor/startup.ts';

export interface LeaderElectionOptions {
  lockName: string;
  /** Default: the Pod's namespace, else the kubeconfig context's, else 'default'. */
  lockNamespace?: string;
  /** Default: `<hostname>_<random>`, unique per process. */
  identity?: string;
  kubeconfig?: string;
  context?: string;
  /** Milliseconds; defaults as kube-controller-manager: 15 s, 10 s, 2 s. */
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** How long stop() waits for the term's work to settle before giving up on releasing the
   *  Lease (default 20 s, below Kubernetes' default 30 s grace). */
  stopTimeoutMs?: number;
  /** How long to retry while the API server cannot be reached, before start() rejects
   *  (default 30 s). */
  startupTimeoutMs?: number;
}

/** The term's AbortSignal, as far as the work needs it (a real AbortSignal at run time). */
export interface TermSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
  throwIfAborted(): void;
}

export interface LeadingTerm extends Term {
  /** How long the lease is certainly still ours: R − time since the last renewal, now; 0
   *  once the term is over. A critical section that needs longer should not start. */
  validForMs(): number;
}

export interface LeadingEvent {
  term: LeadingTerm;
  /** Aborts when this term ends: leadership lost, or stop(). */
  signal: TermSignal;
}

/** `step-down`: `leader-run step-down` asked this term to hand over (a planned end: the
 *  work drains while the Lease is renewed, then it is released — or handed to `--to`). */
export type StopReason = LossReason | 'stopped' | 'step-down';

export interface LeaderElectionEvents {
  /** The term begins. A listener may return a promise: the term's work, which the election
   *  waits for before it releases the Lease. */
  'started-leading': [LeadingEvent];
  /** The term is over. `released`: the Lease was given back (false when the work did not
   *  settle in time, or someone else holds it). */
  'stopped-leading': [{ reason: StopReason; released: boolean }];
  'new-leader': [{ holder: string }];
  /** A request failed; the election carries on (or loses by its timers). */
  error: [ApiError];
  /** Something the user should hear of: the work did not settle in time. */
  warning: [{ message: string }];
}

type Listener<A extends unknown[]> = (...args: A) => unknown;

/** A permanent failure: start() rejects with it. `status` is the CLI's exit status for it. */
export class LeaderElectionError extends Error {
  override name = 'LeaderElectionError';
  readonly kind: string;
  readonly status: number;
  constructor(kind: string, status: number, message: string) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** The library's names of the timing fields, for its messages. */
const TIMING_OPTIONS: Record<TimingField, string> = {
  leaseDurationMs: 'leaseDurationMs',
  renewDeadlineMs: 'renewDeadlineMs',
  retryPeriodMs: 'retryPeriodMs',
  fenceGraceMs: 'fenceGraceMs',
};

interface ActiveTerm {
  readonly ac: AbortController;
  /** The work of the term's listeners, settled (never rejects). */
  readonly work: Promise<void>;
}

export class LeaderElection {
  readonly identity: string;
  readonly lease: string;
  readonly #client: KubeClient;
  readonly #stopTimeoutMs: number;
  readonly #startupTimeoutMs: number;
  readonly #listeners = new Map<keyof LeaderElectionEvents, Set<Listener<never[]>>>();
  #elector!: Elector;
  #startup!: StartupWindow;
  #ctx!: FailureContext;
  #term: ActiveTerm | null = null;
  #cancelHold: (() => void) | null = null;
  #ending: Promise<void> | null = null;
  #started = false;
  /** stop() or a permanent failure is ending the election: it finishes it, not run(). */
  #leaving = false;
  #over = false;
  #settle!: (error?: LeaderElectionError) => void;
  readonly #done: Promise<void>;

  private constructor(identity: string, lease: string, client: KubeClient, stopTimeoutMs: number, startupTimeoutMs: number) {
    this.identity = identity;
    this.lease = lease;
    this.#client = client;
    this.#stopTimeoutMs = stopTimeoutMs;
    this.#startupTimeoutMs = startupTimeoutMs;
    this.#done = new Promise((resolve, reject) => {
      this.#settle = (e) => (e ? reject(e) : resolve());
    });
    this.#done.catch(() => {}); // rejected only towards start()'s caller
  }

  /** Loads the kubeconfig (kubectl's rules) and validates the options; nothing is sent yet.
   *  Throws RangeError (a bad option) or ConfigError (no usable kubeconfig). */
  static async create(o: LeaderElectionOptions): Promise<LeaderElection> {
    if (!LEASE_NAME.test(o.lockName ?? ''))
      throw new RangeError(`lockName ${JSON.stringify(o.lockName)} is not a valid Lease name: lowercase letters, digits, '-' and '.', at most 253 characters`);
    if (o.lockNamespace !== undefined && !NAMESPACE_NAME.test(o.lockNamespace))
      throw new RangeError(
        `lockNamespace ${JSON.stringify(o.lockNamespace)} is not a valid namespace: lowercase letters, digits and '-', at most 63 characters`,
      );
    const timing: Timing = {
      leaseDurationMs: o.leaseDurationMs ?? DEFAULT_TIMING.leaseDurationMs,
      renewDeadlineMs: o.renewDeadlineMs ?? DEFAULT_TIMING.renewDeadlineMs,
      retryPeriodMs: o.retryPeriodMs ?? DEFAULT_TIMING.retryPeriodMs,
      fenceGraceMs: 0, // no child to stop: the whole remaining D − R is the work's
    };
    const problem = checkTiming(timing);
    if (problem)
      throw new RangeError(
        timingMessage(
          problem,
          (f) => TIMING_OPTIONS[f],
          (f) => TIMING_OPTIONS[f],
          ['leaseDurationMs', 'renewDeadlineMs', 'retryPeriodMs'],
        ),
      );
    const identity = o.identity ?? defaultIdentity();
    let conn: Awaited<ReturnType<typeof connectLease>>;
    try {
      conn = await connectLease({ name: o.lockName, namespace: o.lockNamespace }, { kubeconfig: o.kubeconfig, context: o.context }, 'leader-run-library');
    } catch (e) {
      if (e instanceof ConfigError)
        throw new ConfigError(
          e.describe((f) => `option ${f}`),
          e.field,
        );
      throw e;
    }
    const { client, lock, lease, namespace, target } = conn;
    const le = new LeaderElection(identity, lease, client, o.stopTimeoutMs ?? 20_000, o.startupTimeoutMs ?? 30_000);
    le.#ctx = {
      namespace,
      source: target.source,
      namespaceFrom: o.lockNamespace === undefined ? ` (the kubeconfig context's namespace in ${target.source})` : ' (option lockNamespace)',
      namespaceOption: 'option lockNamespace',
    };
    le.#startup = new StartupWindow(systemClock, le.#startupTimeoutMs, 'option startupTimeoutMs', client.server.origin);
    le.#elector = new Elector({ identity, timing }, lock, systemClock, {
      newLeader: (holder) => le.#emit('new-leader', { holder }),
      startedLeading: (term) => le.#startedLeading(term),
      stoppedLeading: (reason) => void le.#endTerm(reason),
      stepDownRequested: (to) => void le.#stepDown(to),
      renewFailed: (e) => le.#error(e),
      campaignError: (e) => le.#campaignError(e),
      answered: () => le.#startup.answered(),
    });
    return le;
  }

  /** Whether this process leads and its work may run (not during the new-Lease hold). */
  get leading(): boolean {
    return this.#term !== null && !this.#term.ac.signal.aborted;
  }

  on<E extends keyof LeaderElectionEvents>(event: E, listener: (...args: LeaderElectionEvents[E]) => unknown): this {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never[]>);
    return this;
  }

  once<E extends keyof LeaderElectionEvents>(event: E, listener: (...args: LeaderElectionEvents[E]) => unknown): this {
    const once = (...args: LeaderElectionEvents[E]): unknown => {
      this.off(event, once);
      return listener(...args);
    };
    return this.on(event, once);
  }

  off<E extends keyof LeaderElectionEvents>(event: E, listener: (...args: LeaderElectionEvents[E]) => unknown): this {
    this.#listeners.get(event)?.delete(listener as Listener<never[]>);
    return this;
  }

  listenerCount(event: keyof LeaderElectionEvents): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** Campaigns; resolves once this election is over (its term ended, or stop()), rejects
   *  with LeaderElectionError when a failure that retrying cannot fix ends it (401, 403, a
   *  namespace that does not exist, an unreachable API server). An election campaigns once:
   *  after a term, create a new one. */
  start(): Promise<void> {
    if (!this.#started) {
      this.#started = true;
      this.#watchStartup();
      void this.#elector.run().then(() => {
        if (!this.#leaving && !this.#term && !this.#cancelHold && !this.#ending) this.#finish();
      });
    }
    return this.#done;
  }

  /** Stops campaigning; if leading, ends the term: its signal aborts, the Lease is kept
   *  renewed while the work settles (at most stopTimeoutMs), then released. Resolves when the
   *  election is over. */
  async stop(): Promise<void> {
    if (this.#over) return;
    this.#leaving = true;
    await this.#elector.stopCampaigning();
    this.#cancelHold?.();
    this.#cancelHold = null;
    if (this.#term || this.#elector.leading) await this.#endTerm('stopped');
    else this.#finish();
    await this.#done.catch(() => {});
  }

  /** `leader-run step-down`: as stop(), but handing the Lease to `to` when it names one. */
  async #stepDown(to: string | undefined): Promise<void> {
    if (this.#over || this.#leaving) return;
    this.#leaving = true;
    await this.#endTerm('step-down', to);
  }

  #watchStartup(): void {
    const timer = setTimeout(() => {
      const fatal = this.#startup.expired();
      if (fatal) void this.#fail(new LeaderElectionError('unreachable', fatal.status, fatal.message));
    }, this.#startupTimeoutMs);
    timer.unref();
  }

  #startedLeading(term: Term): void {
    const begin = (): void => {
      this.#cancelHold = null;
      // The time left, not a state flag: a process frozen through the hold must not start.
      if (this.#over || this.#elector.validForMs() <= 0) return;
      const ac = new AbortController();
      const leading: LeadingTerm = { ...term, validForMs: () => (ac.signal.aborted ? 0 : this.#elector.validForMs()) };
      const results = this.#emit('started-leading', { term: leading, signal: ac.signal });
      const work = Promise.allSettled(results.filter(isThenable)).then(() => undefined);
      this.#term = { ac, work };
    };
    if (term.holdMs <= 0) return begin();
    // A term on a Lease object new to us may still have an unaware leader: wait it out.
    const t = setTimeout(begin, term.holdMs);
    t.unref();
    this.#cancelHold = () => clearTimeout(t);
  }

  /** Ends the term: the work is told to stop, given time to settle, then the Lease is
   *  released — or, if the work did not settle, left to expire. */
  #endTerm(reason: StopReason, handoverTo?: string): Promise<void> {
    this.#ending ??= (async () => {
      this.#cancelHold?.();
      this.#cancelHold = null;
      const term = this.#term;
      term?.ac.abort(new Error(`leadership ended: ${reason}`));
      const settled = term
        ? await Promise.race([term.work.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), this.#stopTimeoutMs).unref())])
        : true;
      let released = false;
      if (settled) released = await this.#elector.release({ handoverTo });
      else {
        this.#elector.abandon();
        this.#emit('warning', {
          message: `the term's work did not settle within ${this.#stopTimeoutMs}ms (stopTimeoutMs): the Lease is not released; it expires on its own`,
        });
      }
      this.#term = null;
      this.#emit('stopped-leading', { reason, released });
      this.#finish();
    })();
    return this.#ending;
  }

  #campaignError(e: ApiError): void {
    if (this.#over || this.#elector.leading) return;
    this.#error(e);
    this.#decide(this.#startup.failed(e, verdictFor(e, 'lease', this.#ctx)), e);
  }

  #decide(d: StartupDecision, e: ApiError): void {
    if (d.do === 'retry') return;
    if (d.do === 'end') return void this.#fail(new LeaderElectionError(d.fatal.event, d.fatal.status, d.fatal.message));
    void this.#client.starting(AbortSignal.timeout(2000)).then((starting) => {
      if (!this.#over) this.#decide(this.#startup.starting(starting, e, verdictFor(e, 'lease', this.#ctx)), e);
    });
  }

  async #fail(e: LeaderElectionError): Promise<void> {
    if (this.#over || this.#leaving) return;
    this.#leaving = true;
    await this.#elector.stopCampaigning();
    if (this.#elector.leading) await this.#endTerm('stopped');
    this.#finish(e);
  }

  #finish(error?: LeaderElectionError): void {
    if (this.#over) return;
    this.#over = true;
    this.#client.close();
    this.#settle(error);
  }

  #error(e: ApiError): void {
    if (this.listenerCount('error') > 0) this.#emit('error', e);
  }

  #emit<E extends keyof LeaderElectionEvents>(event: E, ...args: LeaderElectionEvents[E]): unknown[] {
    return [...(this.#listeners.get(event) ?? [])].map((l) => (l as Listener<LeaderElectionEvents[E]>)(...args));
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}
