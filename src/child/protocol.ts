/** Messages between leader-run and its watchdog process (JSON over the IPC channel). */
import type { Instant } from '../election/timing.ts';

/** The lease deadlines the watchdog enforces, relative to the anchor of the last renewal. */
export interface LeaseDeadlines {
  /** R: the lease is lost; SIGTERM the tree. A spawn this late is refused. */
  termAfterMs: number;
  /** R + G: SIGKILL the tree. */
  killAfterMs: number;
  /** G: SIGTERM → SIGKILL budget of an involuntary stop. */
  fenceGraceMs: number;
}

export type ToWatchdog =
  /** Start the command, fenced by the lease anchored at `anchor`. `env` carries the term's mark. */
  | { t: 'spawn'; file: string; args: string[]; env: Record<string, string>; anchor: Instant; deadlines: LeaseDeadlines }
  /** A renewal succeeded: the lease is now anchored at `anchor`. */
  | { t: 'anchor'; anchor: Instant }
  /** Forward a signal (SIGHUP, SIGUSR1, SIGUSR2, a repeated stop signal) to the child's tree. */
  | { t: 'signal'; signal: NodeJS.Signals }
  /** Voluntary stop: send `signal`, SIGKILL after `graceMs`, report 'gone'. The deadline still applies. */
  | { t: 'stop'; signal: NodeJS.Signals; graceMs: number }
  /** Leadership lost: SIGTERM now, SIGKILL after the fence grace (never later than the deadline). */
  | { t: 'fence' }
  /** Are you there? Answered with 'pong': a watchdog that stops answering is frozen or stuck. */
  | { t: 'ping' };

export type FromWatchdog =
  | { t: 'ready' }
  | { t: 'pong' }
  | { t: 'spawned'; pid: number }
  /** Nothing runs: the command could not start (126, 127), or the lease had expired (75). */
  | { t: 'spawn-failed'; status: number; message: string }
  /** The direct child exited (code) or was killed (signal). */
  | { t: 'exit'; code: number | null; signal: NodeJS.Signals | null }
  /** The watchdog started stopping the tree, and why. */
  | { t: 'fencing'; why: 'deadline' | 'fence' | 'stop' | 'parent-gone' }
  /** No process of the tree runs any more — or, if `unkillable` is not empty, those
   *  processes refused SIGKILL (EPERM) and may still run. */
  | { t: 'gone'; killed: boolean; elapsedMs: number; unkillable: number[] };
