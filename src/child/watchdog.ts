/**
 * The watchdog: a small process of its own that starts the child and enforces the lease
 * deadline on it, so the child tree never outlives the lease even when leader-run is
 * SIGKILLed, OOM-killed, frozen with SIGSTOP or stuck in its event loop.
 *
 * leader-run forks it at start-up (so exec → child is not slowed by its start) in a
 * session of its own (so a terminal's signals to leader-run's group do not reach it).
 * leader-run feeds it the anchor of every successful renewal; on its own timers it
 * SIGTERMs the tree at anchor + R and SIGKILLs it at anchor + R + G — exactly when
 * leader-run would — and if the IPC channel closes (leader-run died) it fences at once.
 * Time since the anchor is the larger of monotonic and wall-clock elapsed time, checked
 * at least every CHECK_MS, so a host that wakes from suspend fences immediately.
 */
import { execa, type ResultPromise } from 'execa';
import { elapsedMs, instantNow, leaderDeadlines, type Instant, type Timing } from '../election/timing.ts';
import type { FromWatchdog, ToWatchdog } from './protocol.ts';
import { signalTree, treeMembers } from './tree.ts';

const CHECK_MS = 100;
const CONFIRM_POLL_MS = 10;

const now = instantNow;

let child: ResultPromise | null = null;
let pid = 0;
let exited = false;
let timing: Timing | null = null;
let anchor: Instant | null = null;
/** SIGKILL time imposed by a stop or fence (monotonic; only ever moves earlier). The lease
 *  deadline is separate: it is re-derived from the latest anchor, so renewals push it out. */
let imposedKillAt = Infinity;
let termSent = false;
let killing: Promise<void> | null = null;
let timer: NodeJS.Timeout | null = null;
let parentGone = false;

function send(m: FromWatchdog): void {
  // The channel can close between the check and the write (leader-run died): that is
  // handled by 'disconnect', not an error worth a stack trace on the child's stderr.
  if (process.connected) process.send?.(m, undefined, undefined, () => {});
}

function onMessage(m: ToWatchdog): void {
  switch (m.t) {
    case 'spawn':
      return spawn(m);
    case 'anchor':
      anchor = m.anchor;
      return check();
    case 'signal':
      if (pid) signalTree(pid, m.signal);
      return;
    case 'stop':
      send({ t: 'fencing', why: 'stop' });
      if (pid) signalTree(pid, m.signal);
      termSent = true;
      imposedKillAt = Math.min(imposedKillAt, now().mono + m.graceMs);
      return check();
    case 'fence':
      return fence('fence');
  }
}

function spawn(m: Extract<ToWatchdog, { t: 'spawn' }>): void {
  timing = m.timing;
  anchor = m.anchor;
  const sub = execa(m.file, m.args, {
    detached: true, // setsid: the child leads a session and process group of its own
    stdio: 'inherit',
    env: m.env,
    extendEnv: true,
    reject: false,
    cleanup: false, // we decide when the tree dies, not execa's exit hook
    buffer: false,
  });
  child = sub;
  sub.then((r) => {
    exited = true;
    if (!pid) {
      const code = (r as { code?: string }).code;
      send({ t: 'spawn-failed', status: code === 'ENOENT' ? 127 : 126, message: r.shortMessage ?? String(r.message) });
    } else {
      send({ t: 'exit', code: r.exitCode ?? null, signal: (r.signal as NodeJS.Signals | undefined) ?? null });
    }
    check();
  });
  if (sub.pid) {
    pid = sub.pid;
    send({ t: 'spawned', pid });
  }
  check();
}

/** Involuntary stop: SIGTERM now, SIGKILL after G but never later than the deadline. */
function fence(why: 'fence' | 'deadline' | 'parent-gone'): void {
  startFence(why);
  check();
}

function startFence(why: 'fence' | 'deadline' | 'parent-gone'): void {
  if (!pid) return;
  if (!termSent) {
    send({ t: 'fencing', why });
    signalTree(pid, 'SIGTERM');
    termSent = true;
  }
  if (timing) imposedKillAt = Math.min(imposedKillAt, now().mono + timing.fenceGraceMs);
}

/** The one place that decides, from the clocks, what to do to the tree next. */
function check(): void {
  if (timer) clearTimeout(timer);
  timer = null;
  if (!pid || killing) return;
  const t = now();
  let deadlineTerm = Infinity;
  let deadlineKill = Infinity;
  if (anchor && timing) {
    const d = leaderDeadlines(timing);
    const el = elapsedMs(anchor, t);
    if (!termSent && el >= d.termAfterMs) startFence('deadline');
    deadlineTerm = t.mono + (d.termAfterMs - el);
    deadlineKill = t.mono + (d.killAfterMs - el);
  }
  const killAt = Math.min(imposedKillAt, deadlineKill);
  if (killAt <= t.mono || (termSent && exited && treeMembers(pid).length === 0)) {
    killing = killTree(killAt <= t.mono);
    return;
  }
  const next = Math.min(killAt, termSent ? Infinity : deadlineTerm) - t.mono;
  timer = setTimeout(check, Math.max(1, Math.min(next, CHECK_MS)));
}

/** SIGKILL until nothing of the tree is left and the child is reaped; then report. */
async function killTree(forced: boolean): Promise<void> {
  const start = now().mono;
  // Gone means no live process of the tree is left (a zombie is not alive): that is what
  // the lease needs, and it does not depend on how soon the child's exit is reported.
  for (let left = treeMembers(pid); left.length > 0; left = treeMembers(pid)) {
    signalTree(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, CONFIRM_POLL_MS));
  }
  // Its exit status follows its reaping at once; never wait on it unboundedly.
  await Promise.race([child, new Promise((r) => setTimeout(r, 1000))]);
  send({ t: 'gone', killed: forced, elapsedMs: Math.round(now().mono - start) });
  if (parentGone) process.exit(0);
}

process.on('message', (m: ToWatchdog) => onMessage(m));
// leader-run died (SIGKILL, OOM, crash): nobody renews the lease any more.
process.on('disconnect', () => {
  parentGone = true;
  if (!pid || (exited && treeMembers(pid).length === 0)) process.exit(0);
  fence('parent-gone');
});
// Someone signals the watchdog itself: never leave the child orphaned.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(sig, () => {
    parentGone = true;
    if (!pid) process.exit(0);
    fence('parent-gone');
  });
}
// leader-run may have died before these handlers existed: then no 'disconnect' will come.
if (!process.connected) process.exit(0);
send({ t: 'ready' });
