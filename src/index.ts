/**
 * leader-run as a library: `LeaderElection`, the same election, Lease record and failure
 * policy the CLI uses, for programs that lead in-process. See src/library.ts for exactly what
 * it guarantees, and what only the CLI's watchdog can.
 */

export type { LossReason, Term } from './election/term.ts';
export { ConfigError, type ConfigField } from './kube/config-error.ts';
export { ApiError, type ApiErrorKind, type Call, type Verb } from './kube/errors.ts';
export {
  LeaderElection,
  LeaderElectionError,
  type LeaderElectionEvents,
  type LeaderElectionOptions,
  type LeadingEvent,
  type LeadingTerm,
  type StopReason,
  type TermSignal,
} from './library.ts';
