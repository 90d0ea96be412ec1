/**
 * The watchdog's decision, as a pure function of its state and the clocks: what to do to the
 * child's tree next. watchdog.ts carries it out; tests drive it with tables of instants.
 */
import { elapsedMs, type Instant } from '../core/time.ts';
import type { LeaseDeadlines } from './protocol.ts';

export interface FenceState {
  /** The anchor of the last renewal the watchdog heard of, and the deadlines it carries. */
  readonly anchor: Instant | null;
  readonly deadlines: LeaseDeadlines | null;
  /** SIGKILL time (monotonic) imposed by a stop or fence; Infinity if none. */
  readonly imposedKillAt: number;
  /** The tree has been asked to stop (SIGTERM, or the stop signal, sent). */
  readonly termSent: boolean;
  /** The direct child has exited. */
  readonly childExited: boolean;
  /** Whether any process of the tree still runs: asked only when it matters (a /proc scan). */
  readonly treeRunning: () => boolean;
}

export type FenceAction =
  /** Nothing to do until `ms` from now (at most the check interval). */
  | { readonly do: 'wait'; readonly ms: number }
  /** The lease deadline (anchor + R) has passed: SIGTERM the tree, then decide again. */
  | { readonly do: 'term' }
  /** SIGKILL the tree and confirm it gone; `forced`: the kill instant had come. */
  | { readonly do: 'kill'; readonly forced: boolean };

export function decide(s: FenceState, now: Instant, checkMs: number): FenceAction {
  let termAt = Infinity;
  let deadlineKillAt = Infinity;
  if (s.anchor && s.deadlines) {
    const el = elapsedMs(s.anchor, now);
    if (!s.termSent && el >= s.deadlines.termAfterMs) return { do: 'term' };
    termAt = now.mono + (s.deadlines.termAfterMs - el);
    deadlineKillAt = now.mono + (s.deadlines.killAfterMs - el);
  }
  const killAt = Math.min(s.imposedKillAt, deadlineKillAt);
  if (killAt <= now.mono) return { do: 'kill', forced: true };
  // Once asked to stop and the child has exited, a tree with nothing running is killed (one
  // SIGKILL round at least) and confirmed at once, rather than at the kill instant.
  if (s.termSent && s.childExited && !s.treeRunning()) return { do: 'kill', forced: false };
  const next = Math.min(killAt, s.termSent ? Infinity : termAt) - now.mono;
  return { do: 'wait', ms: Math.max(1, Math.min(next, checkMs)) };
}
