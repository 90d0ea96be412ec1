/** What can happen to a run, and what the supervisor can ask for: the vocabulary between the
 *  pure supervisor and run.ts, which turns callbacks into events and carries out effects. */
import type { ProcessEnd } from '../core/exit-status.ts';
import type { Level, LogEvent } from '../core/log.ts';
import type { Instant } from '../core/time.ts';
import type { LossReason, Term } from '../election/elector.ts';

/** A failure that ends the run: its exit status, the log event, and the whole message. */
export interface Fatal {
  readonly status: number;
  readonly event: LogEvent;
  readonly message: string;
}

export type RunEvent =
  /** SIGTERM, SIGINT or SIGQUIT to leader-run. */
  | { readonly type: 'stop-signal'; readonly signal: NodeJS.Signals }
  /** SIGHUP, SIGUSR1 or SIGUSR2: for the child. */
  | { readonly type: 'forward-signal'; readonly signal: NodeJS.Signals }
  /** `leader-run step-down` (or POST /step-down) asked this term's leader to hand over;
   *  `to`: to this identity. */
  | { readonly type: 'step-down'; readonly to?: string | undefined }
  /** The elector won the Lease; `anchor` is the send time of the write that won;
   *  `lastSuccess`: the run --once-per recorded on it, if any. */
  | { readonly type: 'leading'; readonly term: Term; readonly anchor: Instant; readonly lastSuccess?: LastRun | undefined }
  | { readonly type: 'renewed'; readonly anchor: Instant }
  | { readonly type: 'hold-elapsed' }
  | { readonly type: 'min-hold-elapsed' }
  | { readonly type: 'routed' }
  | { readonly type: 'routing-failed'; readonly fatal: Fatal }
  | { readonly type: 'spawned'; readonly pid: number }
  | { readonly type: 'spawn-failed'; readonly status: number; readonly message: string }
  | { readonly type: 'child-exited'; readonly exit: ProcessEnd }
  /** The tree is confirmed gone — unless `unkillable` names processes that refused SIGKILL. */
  | { readonly type: 'tree-gone'; readonly unkillable: readonly number[] }
  /** The elector lost the Lease. */
  | { readonly type: 'lost'; readonly reason: LossReason; readonly detail: string }
  /** The watchdog reached the lease deadline by its own clocks: the term ends as a loss. */
  | { readonly type: 'watchdog-deadline' }
  /** The watchdog died or stopped answering; the tree, if any, is being killed without it. */
  | { readonly type: 'watchdog-failed'; readonly why: string }
  /** A failure before leading that retrying will not fix (see failures.ts). */
  | { readonly type: 'fatal'; readonly fatal: Fatal }
  /** --wait-timeout passed; with --wait-timeout 0, the one try found the Lease held by `holder`. */
  | { readonly type: 'wait-timeout'; readonly holder?: string }
  /** Campaigning has stopped. `leading`: an acquire in flight won meanwhile; `releasedLost`:
   *  a write of ours whose answer was lost had landed, and was released. */
  | { readonly type: 'campaign-stopped'; readonly leading: boolean; readonly releasedLost: boolean }
  /** `recorded`: the release carried --once-per's record; `handedTo`: it handed the Lease to
   *  that identity. */
  | { readonly type: 'released'; readonly released: boolean; readonly recorded?: boolean; readonly handedTo?: string | undefined };

/** --once-per: a successful run, as recorded on the Lease (wall clock, Unix ms). */
export interface LastRun {
  readonly startedWall: number;
  readonly holder: string;
}

export type Effect =
  | { readonly type: 'start-hold'; readonly ms: number }
  /** Keep the Lease (renewing) for `ms`, then min-hold-elapsed. */
  | { readonly type: 'start-min-hold'; readonly ms: number }
  | { readonly type: 'route-here' }
  | { readonly type: 'spawn'; readonly term: Term; readonly anchor: Instant }
  /** Voluntary: pass `signal` to the tree, SIGKILL after `graceMs`; renewals go on. */
  | { readonly type: 'stop-tree'; readonly signal: NodeJS.Signals; readonly graceMs: number }
  /** Involuntary: SIGTERM, SIGKILL after G. */
  | { readonly type: 'fence' }
  /** Pass a signal on: a forwarded one (HUP, USR1, USR2) where --forward-to says, a repeated
   *  stop signal to the whole tree. */
  | { readonly type: 'forward'; readonly signal: NodeJS.Signals; readonly to: 'forward-target' | 'session' }
  | { readonly type: 'stop-campaigning' }
  /** Give the Lease back. Only ever asked for once no child's tree can run. `record`: the
   *  child of this term exited 0 by itself under --once-per; record it in the same write. */
  | {
      readonly type: 'release';
      readonly record?: { readonly startedWall: number; readonly finishedWall: number; readonly fencingToken: number };
      /** step-down --to: hand the Lease to this identity instead of freeing it. */
      readonly handoverTo?: string;
    }
  /** End the term without releasing: the Lease is left to expire. */
  | { readonly type: 'abandon' }
  | { readonly type: 'log'; readonly level: Level; readonly event: LogEvent; readonly message: string; readonly fields?: Record<string, unknown> }
  | { readonly type: 'exit'; readonly status: number; readonly cause: string };
