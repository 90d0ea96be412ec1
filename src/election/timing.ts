/**
 * Every timing rule of leader-run, in one place: the election's, and those of the processes
 * and endpoints that enforce or report it.
 *
 * Names follow the README's "How it stays safe": D lease duration, R renew deadline, P retry
 * period, G fence grace (SIGTERM → SIGKILL when leadership is lost), K the budget to confirm
 * the killed tree is gone, ε a margin for clock-rate differences and scheduling delays.
 *
 * The guarantee rests on one inequality. A leader's lease is anchored at t_send, the moment
 * just before it sent its last successful write: nobody can have observed that write
 * earlier, so nobody may lawfully take over before t_send + D. The leader gives up at
 * t_send + R at the latest, spends at most G on a graceful stop and K confirming the kill,
 * so with R + G + K + ε ≤ D its child is gone before anyone else can lead.
 */
import { formatDuration } from '../core/duration.ts';

export interface Timing {
  /** D: how long a lease is valid after the write that anchors it. */
  readonly leaseDurationMs: number;
  /** R: a leader that has not renewed for this long since its anchor gives up. */
  readonly renewDeadlineMs: number;
  /** P: how often the leader renews and a follower retries. */
  readonly retryPeriodMs: number;
  /** G: SIGTERM → SIGKILL budget when leadership is lost. */
  readonly fenceGraceMs: number;
}

/** kube-controller-manager's defaults, and a fence grace that fits them. */
export const DEFAULT_TIMING: Timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, fenceGraceMs: 2_000 };

/** K: time allowed to confirm, after SIGKILL, that no process of the tree is left. */
export const CONFIRM_BUDGET_MS = 500;

/** client-go's JitterFactor: R must exceed P by this factor, and followers spread retries over it. */
export const JITTER_FACTOR = 1.2;

/** ε: margin for clock-rate differences between hosts and scheduling delays on a busy machine. */
export function clockMarginMs(leaseDurationMs: number): number {
  return Math.max(200, Math.round(leaseDurationMs * 0.05));
}

/** The timing of everything that acts on the lease, derived from one Timing. */
export interface Deadlines {
  /** A follower's request: half of R, so a write whose answer was lost is recognised on the
   *  next read while its anchor still leaves time to lead. */
  readonly followerRequestMs: number;
  /** After a failed renewal: retry sooner than P, the renew deadline is running. */
  readonly renewRetryMs: number;
  /** How often the leader re-checks its deadline against the wall clock, which can jump
   *  (suspend, clock step) without a monotonic timer noticing. The watchdog enforces the same
   *  deadline with its own, finer check, so this one can be coarse. */
  readonly guardTickMs: number;
  /** A request of leader routing (label the Pod, point the Service): half of R. */
  readonly routingRequestMs: number;
  /** An event-loop stall this long puts renewals at risk: /healthz reports it (R/2), for R. */
  readonly stallThresholdMs: number;
  readonly stallRememberMs: number;
  /** The watchdog: SIGTERM the tree at anchor + R (no spawn from then on), SIGKILL it at
   *  anchor + R + G; G for a fence that starts earlier; K to confirm; a check at least this
   *  often, so a host that wakes from suspend fences at once. */
  readonly termAfterMs: number;
  readonly killAfterMs: number;
  readonly fenceGraceMs: number;
  readonly confirmBudgetMs: number;
  readonly watchdogCheckMs: number;
  /** leader-run pings its watchdog every R/8; one that leaves a ping unanswered for R/2 is
   *  frozen or stuck, and the main process fences by itself, well within the R + G it would
   *  have had anyway. */
  readonly watchdogPingMs: number;
  readonly watchdogSilenceMs: number;
}

export function deadlines(t: Timing): Deadlines {
  return {
    followerRequestMs: t.renewDeadlineMs / 2,
    renewRetryMs: Math.min(t.retryPeriodMs, Math.max(100, t.retryPeriodMs / 4)),
    guardTickMs: 1000,
    routingRequestMs: t.renewDeadlineMs / 2,
    stallThresholdMs: t.renewDeadlineMs / 2,
    stallRememberMs: t.renewDeadlineMs,
    termAfterMs: t.renewDeadlineMs,
    killAfterMs: t.renewDeadlineMs + t.fenceGraceMs,
    fenceGraceMs: t.fenceGraceMs,
    confirmBudgetMs: CONFIRM_BUDGET_MS,
    watchdogCheckMs: 100,
    watchdogPingMs: Math.max(25, Math.round(t.renewDeadlineMs / 8)),
    watchdogSilenceMs: t.renewDeadlineMs / 2,
  };
}

/** Deadline of one renewal attempt: at most the time left before R, and short enough that a
 *  request stuck on a dead connection is abandoned in time to retry on a fresh one. */
export function renewAttemptMs(t: Timing, leftMs: number): number {
  return Math.min(leftMs, Math.max(t.retryPeriodMs, t.renewDeadlineMs / 3));
}

/** How long a new holder holds the Lease before its child may start, when the Lease is an
 *  object it had to create (or one that replaced an object it had seen), or a free record
 *  that no release wrote. The object may have been deleted, or the record cleared, under a
 *  leader that has not noticed yet; that leader's child is gone by its t_send + its D, and
 *  its last write came before the deletion or the clearing, so before our write: its D after
 *  our write is later. Its D is the largest leaseDurationSeconds we saw (`seenDurationMs`),
 *  or our own if that is longer. */
export function holdMs(t: Timing, seenDurationMs: number): number {
  return Math.max(t.leaseDurationMs, seenDurationMs);
}

/** The record's leaseDurationSeconds: rounded up, so that others never wait less than D. */
export function recordDurationSeconds(t: Timing): number {
  return Math.ceil(t.leaseDurationMs / 1000);
}

/** How long after observing a record unchanged a follower may treat it as expired. It honours
 *  the longer of the holder's duration and its own. */
export function expiryAfterMs(recordSeconds: number | undefined, t: Timing): number {
  return Math.max((recordSeconds ?? 0) * 1000, t.leaseDurationMs);
}

/** A follower's wait before its next attempt: P stretched by up to the jitter factor, so
 *  candidates do not retry in lockstep. */
export function followerRetryMs(t: Timing, random: () => number): number {
  return Math.round(t.retryPeriodMs * (1 + random() * (JITTER_FACTOR - 1)));
}

export type TimingField = keyof Timing;

/** A whole timing set from the fields given, the others derived as kube-controller-manager's
 *  defaults scale (R = 2/3 D, P = R/5, G = 2/15 D), kept safe (R + G + K + ε ≤ D) where the
 *  given fields allow it. Durations are whole 100 ms. */
export function deriveTiming(given: Partial<Timing>): Timing {
  const down = (ms: number) => Math.max(100, Math.floor(ms / 100) * 100);
  const d = given.leaseDurationMs ?? DEFAULT_TIMING.leaseDurationMs;
  const g = given.fenceGraceMs ?? (given.leaseDurationMs === undefined ? DEFAULT_TIMING.fenceGraceMs : down((d * 2) / 15));
  const r =
    given.renewDeadlineMs ??
    (given.leaseDurationMs === undefined ? DEFAULT_TIMING.renewDeadlineMs : down(Math.min((d * 2) / 3, d - g - CONFIRM_BUDGET_MS - clockMarginMs(d))));
  const p = given.retryPeriodMs ?? (given.leaseDurationMs === undefined && given.renewDeadlineMs === undefined ? DEFAULT_TIMING.retryPeriodMs : down(r / 5));
  return { leaseDurationMs: d, renewDeadlineMs: r, retryPeriodMs: p, fenceGraceMs: g };
}

/** Why a timing set is unsafe, as data: the rule broken, the fields involved, and a safe
 *  combination near it. Each caller words it with its own names (timingMessage). */
export type TimingProblem =
  | { readonly rule: 'duration-below-1s'; readonly timing: Timing; readonly suggestion: Timing }
  | { readonly rule: 'deadline-not-below-duration'; readonly timing: Timing; readonly suggestion: Timing }
  | { readonly rule: 'deadline-not-above-retry'; readonly timing: Timing; readonly suggestion: Timing }
  | { readonly rule: 'budget-exceeds-duration'; readonly timing: Timing; readonly suggestion: Timing; readonly needMs: number };

/** The problem with a timing set, or undefined when it is safe. */
export function checkTiming(t: Timing): TimingProblem | undefined {
  const suggestion = suggest(t);
  if (!(t.leaseDurationMs >= 1000)) return { rule: 'duration-below-1s', timing: t, suggestion };
  if (!(t.renewDeadlineMs < t.leaseDurationMs)) return { rule: 'deadline-not-below-duration', timing: t, suggestion };
  if (!(t.renewDeadlineMs > JITTER_FACTOR * t.retryPeriodMs)) return { rule: 'deadline-not-above-retry', timing: t, suggestion };
  const needMs = t.renewDeadlineMs + t.fenceGraceMs + CONFIRM_BUDGET_MS + clockMarginMs(t.leaseDurationMs);
  if (!(needMs <= t.leaseDurationMs) || !(t.fenceGraceMs >= 0)) return { rule: 'budget-exceeds-duration', timing: t, suggestion, needMs };
  return undefined;
}

/** The problem in words. `name` names a field where the rule is stated (a flag, with its
 *  variable if that is how it was given; a library option); `example` where the suggestion
 *  is, which shows `shown` (the caller's settable fields). */
export function timingMessage(
  p: TimingProblem,
  name: (f: TimingField) => string,
  example: (f: TimingField) => string = name,
  shown: readonly TimingField[] = ['leaseDurationMs', 'renewDeadlineMs', 'retryPeriodMs', 'fenceGraceMs'],
): string {
  const t = p.timing;
  const v = (f: TimingField) => `${name(f)} ${formatDuration(t[f])}`;
  const hint = `; for example ${shown.map((f) => `${example(f)} ${formatDuration(p.suggestion[f])}`).join(' ')}`;
  switch (p.rule) {
    case 'duration-below-1s':
      return `${v('leaseDurationMs')} is below 1s (the Lease records whole seconds)${hint}`;
    case 'deadline-not-below-duration':
      return `${v('leaseDurationMs')} must be greater than ${v('renewDeadlineMs')}${hint}`;
    case 'deadline-not-above-retry':
      return `${v('renewDeadlineMs')} must be greater than ${JITTER_FACTOR} × ${v('retryPeriodMs')}${hint}`;
    case 'budget-exceeds-duration': {
      // A caller without a fence grace (the library) has no child to kill, only work to stop.
      const child = shown.includes('fenceGraceMs');
      return (
        `${v('renewDeadlineMs')} + ${child ? `${v('fenceGraceMs')} + ` : ''}${formatDuration(CONFIRM_BUDGET_MS)} to confirm ${child ? 'the kill' : 'the stop'} + ` +
        `${formatDuration(clockMarginMs(t.leaseDurationMs))} margin = ${formatDuration(p.needMs)} exceeds ${v('leaseDurationMs')}: ` +
        `${child ? 'the child' : 'the work'} could outlive the lease${hint}`
      );
    }
  }
}

/** The CLI's names of the timing fields. */
export const TIMING_FLAGS: Record<TimingField, string> = {
  leaseDurationMs: '--lease-duration',
  renewDeadlineMs: '--renew-deadline',
  retryPeriodMs: '--retry-period',
  fenceGraceMs: '--fence-grace',
};

/** A timing set the elector refuses: the problem as data, worded with the CLI's flags. */
export class TimingError extends RangeError {
  override name = 'TimingError';
  readonly problem: TimingProblem;
  constructor(problem: TimingProblem) {
    super(timingMessage(problem, (f) => TIMING_FLAGS[f]));
    this.problem = problem;
  }
}

/** A safe combination near the given one, for error messages. */
function suggest(t: Timing): Timing {
  const d = Math.max(t.leaseDurationMs, 4000);
  const g = Math.min(Math.max(0, t.fenceGraceMs), Math.round(d * 0.15));
  const r = Math.floor(Math.min((d * 2) / 3, d - g - CONFIRM_BUDGET_MS - clockMarginMs(d)) / 100) * 100;
  const p = Math.max(100, Math.floor(r / 5 / 100) * 100);
  const s: Timing = { leaseDurationMs: d, renewDeadlineMs: r, retryPeriodMs: p, fenceGraceMs: g };
  const ok = r > 0 && r < d && r > JITTER_FACTOR * p && r + g + CONFIRM_BUDGET_MS + clockMarginMs(d) <= d;
  return ok ? s : DEFAULT_TIMING;
}
