/**
 * leader-run as a library: the same election and Lease lock the CLI uses, for programs that
 * want to campaign without a child process.
 *
 * Mind what the CLI adds and a library cannot: the CLI's child runs under a watchdog that
 * kills it by the lease deadline even if leader-run itself is frozen. In-process work can
 * only be told to stop (stoppedLeading, or an AbortSignal you derive from it); it is your
 * code's job to actually stop before `anchor + D`.
 */
export { Elector, systemClock } from './election/elector.ts';
export type { Clock, ElectorConfig, ElectorEvents, LossReason, Term } from './election/elector.ts';
export { timingProblem, elapsedMs, leaderDeadlines, type Instant, type Timing } from './election/timing.ts';
export { KubeLeaseLock, type LeaseLock } from './lease/lock.ts';
export type { LeaseSnapshot, LeaseSpec } from './lease/record.ts';
export { KubeClient } from './kube/client.ts';
export { loadTarget, ConfigError, type Target } from './kube/config.ts';
export { ApiError, ExitStatus, type ApiErrorKind } from './kube/errors.ts';
export { LeaderElection, type LeaderElectionOptions, type LeaderElectionEvents, type LeadingEvent } from './library.ts';
