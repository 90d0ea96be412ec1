/** Messages between leader-run and its watchdog process (JSON over the IPC channel). */
import type { Instant, Timing } from '../election/timing.ts';

export type ToWatchdog =
  /** Start the command, fenced by the lease anchored at `anchor`. */
  | { t: 'spawn'; file: string; args: string[]; env: Record<string, string>; anchor: Instant; timing: Timing }
  /** A renewal succeeded: the lease is now anchored at `anchor`. */
  | { t: 'anchor'; anchor: Instant }
  /** Forward a signal (SIGHUP, SIGUSR1, SIGUSR2) to the child's tree. */
  | { t: 'signal'; signal: NodeJS.Signals }
  /** Voluntary stop: send `signal`, SIGKILL after `graceMs`, report 'gone'. The deadline still applies. */
  | { t: 'stop'; signal: NodeJS.Signals; graceMs: number }
  /** Leadership lost: SIGTERM now, SIGKILL after the fence grace (never later than the deadline). */
  | { t: 'fence' };

export type FromWatchdog =
  | { t: 'ready' }
  | { t: 'spawned'; pid: number }
  | { t: 'spawn-failed'; status: number; message: string }
  /** The direct child exited (code) or was killed (signal). */
  | { t: 'exit'; code: number | null; signal: NodeJS.Signals | null }
  /** The watchdog started stopping the tree, and why. */
  | { t: 'fencing'; why: 'deadline' | 'fence' | 'stop' | 'parent-gone' }
  /** The whole tree is confirmed gone. */
  | { t: 'gone'; killed: boolean; elapsedMs: number };
