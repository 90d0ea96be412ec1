/** What one run is asked to do, validated: built by the CLI (cli/options.ts), carried out by
 *  run.ts. Types only. */
import type { Level, LogFormat } from './core/log.ts';
import type { Timing } from './election/timing.ts';
import type { KubeRef } from './kube/config.ts';
import type { LeaseRef } from './lease/connect.ts';

/** The child's process group (as tini -g and dumb-init), the child alone, or its whole session. */
export type ForwardTarget = 'group' | 'child' | 'session';

/** --http-addr: where to serve /healthz, /readyz, /metrics and /leader. */
export interface HttpAddr {
  /** Undefined: every interface. */
  readonly host: string | undefined;
  readonly port: number;
}

/** --leader-service: the Service to point at the leader's Pod, with that Pod's name and
 *  namespace (undefined namespace: the Lease's), and where the name came from. */
export interface RoutingConfig {
  readonly service: string;
  readonly pod: string;
  readonly podNamespace: string | undefined;
  readonly podFrom: string;
}

export interface RunConfig {
  readonly lease: LeaseRef;
  readonly identity: string;
  readonly timing: Timing;
  /** Which timing flags were derived from --lease-duration, for the log; undefined: none. */
  readonly timingDerived: string | undefined;
  readonly shutdownGraceMs: number;
  /** --min-hold: after the child exits by itself, keep the Lease until this long after it was won. */
  readonly minHoldMs: number | undefined;
  /** --once-per: at most one successful run per window of this length, recorded on the Lease. */
  readonly oncePerMs: number | undefined;
  /** --coordinated: register a LeaseCandidate and lead only when the API server's
   *  coordinated-election controller names us; undefined versions: the API server's. */
  readonly coordinated: { readonly binaryVersion: string | undefined; readonly emulationVersion: string | undefined } | undefined;
  /** --slots N: hold one of the Leases NAME-0 … NAME-(N-1); undefined: the one Lease NAME. */
  readonly slots: number | undefined;
  /** The signal that asks the child to stop; undefined: the one leader-run got (SIGTERM on a loss). */
  readonly stopSignal: NodeJS.Signals | undefined;
  /** Where SIGHUP, SIGUSR1 and SIGUSR2 go. */
  readonly forwardTo: ForwardTarget;
  readonly kube: KubeRef;
  readonly waitTimeoutMs: number | undefined;
  readonly waitTimeoutExitCode: number;
  readonly startupTimeoutMs: number;
  readonly shell: boolean;
  /** The child joins leader-run's job (session and process group) so it can use the terminal
   *  and job control stops it with leader-run; else it leads a session of its own. */
  readonly terminal: boolean;
  readonly log: { readonly format: LogFormat; readonly level: Level };
  readonly http: HttpAddr | undefined;
  /** --http-step-down: POST /step-down on the HTTP endpoints asks this leader to hand over. */
  readonly httpStepDown: boolean;
  readonly routing: RoutingConfig | undefined;
  /** Record Kubernetes Events on the Lease when leadership changes. */
  readonly events: boolean;
  /** The command and its arguments, exactly as given. */
  readonly command: readonly string[];
}
