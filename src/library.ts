/**
 * The election as a library, for Node programs that lead in-process instead of running a
 * child: the same Lease record, timing rules and kubeconfig handling as the CLI.
 *
 *   const election = await LeaderElection.create({ lockName: 'reports' });
 *   election.on('started-leading', ({ signal }) => work(signal)); // signal aborts on loss
 *   await election.start();
 *   ...
 *   await election.stop(); // stops campaigning; releases the Lease if held
 *
 * What the CLI guarantees and a library cannot: the CLI's child runs under a watchdog that
 * kills it by the lease deadline even if leader-run is frozen. In-process work can only be
 * told to stop — the term's AbortSignal aborts when leadership is lost (at the renew
 * deadline at the latest, which leaves D − R) — and must really stop in that time.
 */
import { EventEmitter } from 'node:events';
import { systemClock } from './core/time.ts';
import { Elector, type ElectorEvents, type LossReason, type Term } from './election/elector.ts';
import { checkTiming, DEFAULT_TIMING, timingMessage, type Timing, type TimingField } from './election/timing.ts';
import type { KubeClient } from './kube/client.ts';
import type { ApiError } from './kube/errors.ts';
import { connectLease } from './lease/connect.ts';
import { defaultIdentity } from './lease/record.ts';

/** The library's names of the timing fields, for its messages. */
const TIMING_OPTIONS: Record<TimingField, string> = {
  leaseDurationMs: 'leaseDurationMs',
  renewDeadlineMs: 'renewDeadlineMs',
  retryPeriodMs: 'retryPeriodMs',
  fenceGraceMs: 'fenceGraceMs',
};

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
}

export interface LeadingEvent {
  term: Term;
  /** Aborts when this term ends: leadership lost, or stop(). */
  signal: AbortSignal;
}

export interface LeaderElectionEvents {
  'started-leading': [LeadingEvent];
  'stopped-leading': [{ reason: LossReason | 'stopped' }];
  'new-leader': [{ holder: string }];
  /** A request failed; the election carries on (or loses by its timers). */
  error: [ApiError];
}

export class LeaderElection extends EventEmitter<LeaderElectionEvents> {
  readonly identity: string;
  readonly lease: string;
  readonly #elector: Elector;
  readonly #client: KubeClient;
  #term: AbortController | null = null;
  #done: Promise<void> | null = null;

  private constructor(identity: string, lease: string, elector: (events: ElectorEvents) => Elector, client: KubeClient) {
    super();
    this.identity = identity;
    this.lease = lease;
    this.#client = client;
    this.#elector = elector({
      newLeader: (holder) => this.emit('new-leader', { holder }),
      startedLeading: (term) => {
        // A term on a Lease object new to us may still have an unaware leader: wait it out.
        const ac = new AbortController();
        this.#term = ac;
        const begin = () => !ac.signal.aborted && this.emit('started-leading', { term, signal: ac.signal });
        if (term.holdMs > 0) setTimeout(begin, term.holdMs).unref();
        else begin();
      },
      stoppedLeading: (reason) => this.#endTerm(reason),
      renewFailed: (e) => this.#error(e),
      campaignError: (e) => this.#error(e),
    });
  }

  /** Loads the kubeconfig (kubectl's rules) and validates the timing; nothing is sent yet. */
  static async create(o: LeaderElectionOptions): Promise<LeaderElection> {
    const timing: Timing = {
      leaseDurationMs: o.leaseDurationMs ?? DEFAULT_TIMING.leaseDurationMs,
      renewDeadlineMs: o.renewDeadlineMs ?? DEFAULT_TIMING.renewDeadlineMs,
      retryPeriodMs: o.retryPeriodMs ?? DEFAULT_TIMING.retryPeriodMs,
      fenceGraceMs: 0, // no child to stop: the whole remaining D − R is the caller's
    };
    const problem = checkTiming(timing);
    if (problem) throw new RangeError(timingMessage(problem, (f) => TIMING_OPTIONS[f]));
    const identity = o.identity ?? defaultIdentity();
    const { client, lock, lease } = await connectLease({ name: o.lockName, namespace: o.lockNamespace }, { kubeconfig: o.kubeconfig, context: o.context }, 'leader-run-library');
    return new LeaderElection(identity, lease, (events) => new Elector({ identity, timing }, lock, systemClock, events), client);
  }

  get leading(): boolean {
    return this.#elector.leading;
  }

  /** Campaigns; resolves once this election is over (leadership lost, or stop()). An
   *  election campaigns once: after a loss, create a new one. */
  start(): Promise<void> {
    this.#done ??= this.#elector.run();
    return this.#done;
  }

  /** Stops campaigning; if leading, ends the term (the signal aborts) and releases the Lease. */
  async stop(): Promise<void> {
    await this.#elector.stopCampaigning();
    if (this.#elector.leading) {
      this.#endTerm('stopped');
      await this.#elector.release();
    }
    await this.#done;
    this.#client.close();
  }

  #error(e: ApiError): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  #endTerm(reason: LossReason | 'stopped'): void {
    const ac = this.#term;
    this.#term = null;
    if (!ac) return;
    ac.abort(new Error(`leadership ended: ${reason}`));
    this.emit('stopped-leading', { reason });
  }
}
