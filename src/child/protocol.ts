/** Messages between leader-run and its watchdog process (JSON over the IPC channel). */
import type { Instant } from '../core/time.ts';
import type { Job } from './tree.ts';

/** The lease deadlines the watchdog enforces, relative to the anchor of the last renewal
 *  (see election/timing.ts deadlines), and the budgets of its own work. */
export interface LeaseDeadlines {
  /** R: the lease is lost; SIGTERM the tree. A spawn this late is refused. */
  readonly termAfterMs: number;
  /** R + G: SIGKILL the tree. */
  readonly killAfterMs: number;
  /** G: SIGTERM → SIGKILL budget of an involuntary stop. */
  readonly fenceGraceMs: number;
  /** K: how long SIGKILL rounds may be refused (EPERM) before the tree is given up on. */
  readonly confirmBudgetMs: number;
  /** Check the clocks at least this often (a host that wakes from suspend fences at once). */
  readonly checkMs: number;
}

/** Why the watchdog started stopping the tree: asked to (a voluntary stop), told the lease was
 *  lost (a fence), its own deadline passed, or leader-run is gone. */
export type StopCause = 'requested' | 'lost' | 'deadline' | 'parent-gone';

export type ToWatchdog =
  /** Start the command, fenced by the lease anchored at `anchor`. `env` carries the term's mark.
   *  `inJob`: the child joins leader-run's session and process group (a terminal's job)
   *  instead of leading a session of its own. */
  | {
      t: 'spawn';
      file: string;
      args: string[];
      env: Record<string, string>;
      anchor: Instant;
      deadlines: LeaseDeadlines;
      fenceSignal: NodeJS.Signals;
      inJob: boolean;
    }
  /** A renewal succeeded: the lease is now anchored at `anchor`. */
  | { t: 'anchor'; anchor: Instant }
  /** Forward a signal (SIGHUP, SIGUSR1, SIGUSR2, a repeated stop signal): to the child, its
   *  process group, or every process of its tree (the session). */
  | { t: 'signal'; signal: NodeJS.Signals; target: 'child' | 'group' | 'session' }
  /** Voluntary stop: send `signal`, SIGKILL after `graceMs`, report 'gone'. The deadline still applies. */
  | { t: 'stop'; signal: NodeJS.Signals; graceMs: number }
  /** Leadership lost: SIGTERM now, SIGKILL after the fence grace (never later than the deadline). */
  | { t: 'fence' }
  /** Are you there? Answered with 'pong': a watchdog that stops answering is frozen or stuck. */
  | { t: 'ping' }
  /** The child may run now: leader-run has logged child-started (see watchdog.ts, the gate). */
  | { t: 'go' };

export type FromWatchdog =
  | { t: 'ready' }
  | { t: 'pong' }
  /** `job`: in a terminal's job, where the tree's orphans are (see tree.ts); `since`: the
   *  child's start (clock ticks since boot), when its stat could be read. */
  | { t: 'spawned'; pid: number; job: Job | undefined; since: number | undefined }
  /** Nothing runs: the command could not start (126, 127), or the lease had expired (75). */
  | { t: 'spawn-failed'; status: number; message: string }
  /** The direct child exited (code) or was killed (signal). */
  | { t: 'exit'; code: number | null; signal: NodeJS.Signals | null }
  /** The watchdog started stopping the tree, and why. */
  | { t: 'stopping'; cause: StopCause }
  /** The grace (or the lease deadline) ran out: SIGKILL is being sent to the tree. */
  | { t: 'killing' }
  /** No process of the tree runs any more — or, if `unkillable` is not empty, those
   *  processes refused SIGKILL (EPERM) and may still run. */
  | { t: 'gone'; killed: boolean; elapsedMs: number; unkillable: number[] };
