/**
 * Every timing rule of leader-run's election, in one place.
 *
 * Names follow DESIGN §3: D lease duration, R renew deadline, P retry period,
 * G fence grace (SIGTERM → SIGKILL when leadership is lost), K the budget to
 * confirm the killed tree is gone, ε a margin for clock-rate differences and
 * scheduling delays.
 *
 * The guarantee rests on one inequality. A leader's lease is anchored at
 * t_send, the moment just before it sent its last successful write: nobody
 * can have observed that write earlier, so nobody may lawfully take over
 * before t_send + D. The leader gives up at t_send + R at the latest, spends
 * at most G on a graceful stop and K confirming the kill, so with
 * R + G + K + ε ≤ D its child is gone before anyone else can lead.
 */

/** A point in time on both clocks: monotonic (shared by the processes of one host) and wall. */
export interface Instant {
  readonly mono: number;
  readonly wall: number;
}

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

/** Both clocks now. The monotonic one is CLOCK_MONOTONIC, the same in every process of the
 *  host, so leader-run and its watchdog can hand each other instants. */
export function instantNow(): Instant {
  return { mono: Number(process.hrtime.bigint()) / 1e6, wall: Date.now() };
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

/** Time since `since`, as the larger of monotonic and wall-clock elapsed time, so a host that
 *  slept (monotonic clocks stop during suspend) never believes it still leads. */
export function elapsedMs(since: Instant, now: Instant): number {
  return Math.max(now.mono - since.mono, now.wall - since.wall);
}

/** The leader's deadlines, relative to its anchor: SIGTERM the tree at R (no spawn from
 *  then on), SIGKILL it at R + G; and G, the grace of a fence that starts earlier. */
export function leaderDeadlines(t: Timing): { termAfterMs: number; killAfterMs: number; fenceGraceMs: number } {
  return {
    termAfterMs: t.renewDeadlineMs,
    killAfterMs: t.renewDeadlineMs + t.fenceGraceMs,
    fenceGraceMs: t.fenceGraceMs,
  };
}

/** How leader-run watches its watchdog: a ping every R/8, and a watchdog that has left one
 *  unanswered for R/2 is frozen or stuck. Then the main process fences by itself, well
 *  within the R + G it would have had anyway. */
export function watchdogGuard(t: Timing): { pingMs: number; silenceMs: number } {
  return { pingMs: Math.max(25, Math.round(t.renewDeadlineMs / 8)), silenceMs: t.renewDeadlineMs / 2 };
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
 *  the longer of the holder's duration and its own, as DESIGN §2 requires. */
export function expiryAfterMs(recordSeconds: number | undefined, t: Timing): number {
  return Math.max((recordSeconds ?? 0) * 1000, t.leaseDurationMs);
}

/** A follower's wait before its next attempt: P stretched by up to the jitter factor, so
 *  candidates do not retry in lockstep. */
export function followerRetryMs(t: Timing, random: () => number): number {
  return Math.round(t.retryPeriodMs * (1 + random() * (JITTER_FACTOR - 1)));
}

/** Why a timing set is unsafe, naming the flags; undefined when it is safe. */
export function timingProblem(t: Timing): string | undefined {
  const d = fmt(t.leaseDurationMs), r = fmt(t.renewDeadlineMs), p = fmt(t.retryPeriodMs), g = fmt(t.fenceGraceMs);
  const hint = `; for example ${suggest(t)}`;
  if (t.leaseDurationMs < 1000) return `--lease-duration ${d} is below 1s (the Lease records whole seconds)${hint}`;
  if (t.renewDeadlineMs >= t.leaseDurationMs)
    return `--lease-duration ${d} must be greater than --renew-deadline ${r}${hint}`;
  if (t.renewDeadlineMs <= JITTER_FACTOR * t.retryPeriodMs)
    return `--renew-deadline ${r} must be greater than ${JITTER_FACTOR} × --retry-period ${p}${hint}`;
  const need = t.renewDeadlineMs + t.fenceGraceMs + CONFIRM_BUDGET_MS + clockMarginMs(t.leaseDurationMs);
  if (need > t.leaseDurationMs)
    return (
      `--renew-deadline ${r} + --fence-grace ${g} + ${fmt(CONFIRM_BUDGET_MS)} to confirm the kill + ` +
      `${fmt(clockMarginMs(t.leaseDurationMs))} margin = ${fmt(need)} exceeds --lease-duration ${d}: ` +
      `the child could outlive the lease${hint}`
    );
  return undefined;
}

/** A safe combination near the given one, for error messages. */
function suggest(t: Timing): string {
  const d = Math.max(t.leaseDurationMs, 4000);
  const g = Math.min(t.fenceGraceMs, Math.round(d * 0.15));
  const r = Math.floor(Math.min((d * 2) / 3, d - g - CONFIRM_BUDGET_MS - clockMarginMs(d)) / 100) * 100;
  const p = Math.max(100, Math.floor(r / 5 / 100) * 100);
  const s: Timing = { leaseDurationMs: d, renewDeadlineMs: r, retryPeriodMs: p, fenceGraceMs: g };
  const ok = r > 0 && r < d && r > JITTER_FACTOR * p && r + g + CONFIRM_BUDGET_MS + clockMarginMs(d) <= d;
  const use = ok ? s : DEFAULT_TIMING;
  return (
    `--lease-duration ${fmt(use.leaseDurationMs)} --renew-deadline ${fmt(use.renewDeadlineMs)} ` +
    `--retry-period ${fmt(use.retryPeriodMs)} --fence-grace ${fmt(use.fenceGraceMs)}`
  );
}

/** Formats milliseconds the way the flags accept them. */
export function fmt(ms: number): string {
  if (ms % 60000 === 0 && ms >= 60000) return `${ms / 60000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
