/**
 * leader-run as a library: the same election and Lease lock the CLI uses, for programs that
 * want to campaign without a child process.
 *
 * Mind what the CLI adds and a library cannot: the CLI's child runs under a watchdog that
 * kills it by the lease deadline even if leader-run itself is frozen. In-process work can
 * only be told to stop (the term's AbortSignal); it is your code's job to actually stop
 * before the lease runs out.
 */
export { LeaderElection, type LeaderElectionOptions, type LeaderElectionEvents, type LeadingEvent } from './library.ts';
export type { LossReason, Term } from './election/elector.ts';
export { ApiError, type ApiErrorKind } from './kube/errors.ts';
export { ConfigError } from './kube/config.ts';
