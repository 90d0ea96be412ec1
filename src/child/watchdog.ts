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
 * What to do when is decided by fence-policy.ts; this file holds the IPC and the signals.
 *
 * leader-run guards it in turn: it pings it, and kills the tree itself if the watchdog
 * stops answering or does not report the tree gone by the deadline. Where util-linux's
 * setpriv is present, the direct child also gets PR_SET_PDEATHSIG(SIGKILL): it dies with
 * the watchdog even when leader-run died first.
 */
import { type ChildProcess, execFile, spawn as spawnProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { ExitStatus, execFailureStatus } from '../core/exit-status.ts';
import { collectStartupGarbage } from '../core/heap.ts';
import { elapsedMs, type Instant, instantNow } from '../core/time.ts';
import { decide } from './fence-policy.ts';
import type { FromWatchdog, LeaseDeadlines, StopCause, ToWatchdog } from './protocol.ts';
import { ProcessTree, statOf, TERM_MARK } from './tree.ts';

const now = instantNow;

/** Settles once the direct child is reaped (or could not be spawned). */
let reaped: Promise<void> = Promise.resolve();
let tree: ProcessTree | null = null;
/** The child's pid (its session's id unless it is in a terminal's job). */
let childPid = 0;
/** In a terminal's job: the process group the child shares with leader-run and this process. */
let job: number | null = null;
let exited = false;
let gone = false;
let deadlines: LeaseDeadlines | null = null;
let anchor: Instant | null = null;
/** SIGKILL time imposed by a stop or fence (monotonic; only ever moves earlier). The lease
 *  deadline is separate: it is re-derived from the latest anchor, so renewals push it out. */
let imposedKillAt = Infinity;
let termSent = false;
let killing = false;
let timer: NodeJS.Timeout | null = null;
let parentGone = false;
let fenceSignal: NodeJS.Signals = 'SIGTERM';
/** `setpriv --pdeathsig KILL --` where util-linux's setpriv can do it, else nothing; asked
 *  once, before the watchdog says it is ready. */
let pdeathsig: string[] = [];

/**
 * The gate: the child is started as `/bin/sh -c GATE` that waits for one line on fd 3 before
 * it execs the command (same pid, same environment), so leader-run can log child-started,
 * with the pid, before the child can write a byte of its own. If the pipe closes unread (the
 * watchdog died) it exits without running the command. Without /bin/sh (a distroless image)
 * the command is started directly, and its first output may come before the log line.
 */
const GATE = 'IFS= read -r _ <&3 || exit 125; exec 3<&-; exec "$@"';
const gate: string[] = (() => {
  try {
    accessSync('/bin/sh', constants.X_OK);
    return ['/bin/sh', '-c', GATE, 'leader-run-gate'];
  } catch {
    return [];
  }
})();
let gated: ChildProcess | null = null;

function send(m: FromWatchdog): void {
  // The channel can close between the check and the write (leader-run died): that is
  // handled by 'disconnect', not an error worth a stack trace on the child's stderr.
  if (process.connected) process.send?.(m, undefined, undefined, () => {});
}

function onMessage(m: ToWatchdog): void {
  switch (m.t) {
    case 'ping':
      return send({ t: 'pong' });
    case 'go':
      return open();
    case 'spawn':
      return spawn(m);
    case 'anchor':
      anchor = m.anchor;
      return check();
    case 'signal':
      return passOn(m.signal, m.target);
    case 'stop':
      send({ t: 'stopping', cause: 'requested' });
      passOn(m.signal, 'session', { stop: true });
      termSent = true;
      imposedKillAt = Math.min(imposedKillAt, now().mono + m.graceMs);
      return check();
    case 'fence':
      startFence('lost');
      return check();
  }
}

/**
 * Passes on a signal leader-run got, to the child, its process group or its whole tree.
 *
 * In a terminal's job a signal sent to the job (Ctrl-C, Ctrl-\, a shell's `kill %1`, a
 * hang-up) reached the child and this process with leader-run: it is not sent again to
 * the job, only to the tree's processes outside it. This process's own handler tells: the
 * kernel marks the signal pending on the whole job in one pass, so the handler has run by
 * the second turn after leader-run's message about it.
 */
function passOn(signal: NodeJS.Signals, target: 'child' | 'group' | 'session', { stop = false } = {}): void {
  const deliver = (jobHadIt: boolean): void => {
    if (!tree || gone) return;
    if (target === 'session') {
      const except = jobHadIt ? (job ?? undefined) : undefined;
      // A stopped process acts on a stop signal only once continued (systemd does the same).
      tree.signal(stop ? [signal, 'SIGCONT'] : signal, except);
    } else if (jobHadIt) {
      // The child and its group are in the job: they have it.
    } else if (target === 'group') {
      if (job === null) signalOne(-childPid, signal);
      else tree.signalGroup(job, signal);
    } else if (!exited) signalOne(childPid, signal); // once reaped, its pid may be another's
  };
  if (job === null) return deliver(false);
  setImmediate(() => setImmediate(() => deliver(heardByJob(signal))));
}

/** When this process last got each signal (monotonic ms). */
const heard = new Map<NodeJS.Signals, number>();

/** Whether `signal` reached this process — so the whole job — just now (within a second:
 *  an older one was not the one leader-run is passing on); each hearing answers once. */
function heardByJob(signal: NodeJS.Signals): boolean {
  const at = heard.get(signal);
  heard.delete(signal);
  return at !== undefined && now().mono - at < 1000;
}

function spawn(m: Extract<ToWatchdog, { t: 'spawn' }>): void {
  deadlines = m.deadlines;
  anchor = m.anchor;
  fenceSignal = m.fenceSignal;
  // Checked here, in the process that spawns, right before it does: a leader-run that was
  // frozen may ask for a spawn on a lease that has already expired.
  const late = elapsedMs(m.anchor, now());
  if (late >= m.deadlines.termAfterMs) {
    const message = `the lease expired ${Math.round(late - m.deadlines.termAfterMs)}ms before the child could start`;
    return send({ t: 'spawn-failed', status: ExitStatus.tempfail, message });
  }
  const [file, ...args] = [...pdeathsig, ...gate, m.file, ...m.args];
  // node:child_process, not execa: with every execa feature off (no buffering, no cleanup
  // hook, inherited stdio) what is left is this call, and execa's modules cost the watchdog
  // about 6 MiB in every Pod (issue 13 measured it).
  const sub = spawnProcess(file!, args, {
    // setsid: the child leads a session and process group of its own; in a terminal's job it
    // stays in ours, which is leader-run's (see passOn).
    detached: !m.inJob,
    stdio: gate.length > 0 ? ['inherit', 'inherit', 'inherit', 'pipe'] : 'inherit',
    env: { ...process.env, ...m.env },
  });
  if (gate.length > 0) {
    gated = sub;
    // A child killed before it was let go closes its end: nothing to report.
    sub.stdio[3]?.on('error', () => {});
  }
  let ended = false;
  let settle = (): void => {};
  reaped = new Promise((r) => (settle = r));
  const end = (report: FromWatchdog): void => {
    if (ended) return;
    ended = true;
    exited = true;
    settle();
    send(report);
    check();
  };
  // A spawn that fails (ENOENT, EACCES) emits only 'error', and there is no tree.
  sub.once('error', (e: NodeJS.ErrnoException) => {
    if (!tree) end({ t: 'spawn-failed', status: execFailureStatus(e.code), message: `${m.file}: ${e.message}` });
  });
  sub.once('exit', (code, signal) => end({ t: 'exit', code, signal }));
  if (sub.pid) {
    const mark = m.env[TERM_MARK];
    const marked = mark === undefined ? undefined : `${TERM_MARK}=${mark}`;
    childPid = sub.pid;
    // Not reaped before this turn ends: its stat is there to read.
    const child = statOf(sub.pid);
    const self = m.inJob ? statOf('self') : undefined;
    job = self?.pgrp ?? null;
    const inJob = self && child ? { pgrp: self.pgrp, since: child.start } : undefined;
    tree = new ProcessTree(m.inJob ? null : sub.pid, marked, { job: inJob, since: child?.start });
    send({ t: 'spawned', pid: sub.pid, job: inJob, since: child?.start });
  }
  check();
}

/** Lets the gated child exec its command. */
function open(): void {
  const pipe = gated?.stdio[3] as NodeJS.WritableStream | null | undefined;
  gated = null;
  pipe?.end('\n');
}

/** Involuntary stop: SIGTERM now, SIGKILL after G but never later than the deadline. */
function startFence(cause: StopCause): void {
  if (!tree || gone) return;
  if (!termSent) {
    send({ t: 'stopping', cause });
    tree.signal([fenceSignal, 'SIGCONT']); // a stopped child (Ctrl-Z in a terminal) acts on it only once continued
    termSent = true;
  }
  if (deadlines) imposedKillAt = Math.min(imposedKillAt, now().mono + deadlines.fenceGraceMs);
}

/** Asks the fence policy what to do next, and does it. */
function check(): void {
  if (timer) clearTimeout(timer);
  timer = null;
  if (!tree || killing || gone) return;
  const t = tree;
  const state = () => ({ anchor, deadlines, imposedKillAt, termSent, childExited: exited, treeRunning: () => t.running().length > 0 });
  let action = decide(state(), now(), deadlines?.checkMs ?? 100);
  if (action.do === 'term') {
    startFence('deadline');
    action = decide(state(), now(), deadlines?.checkMs ?? 100);
  }
  if (action.do === 'kill') {
    killing = true;
    void killTree(t, action.forced);
  } else if (action.do === 'wait') timer = setTimeout(check, action.ms);
}

/** SIGKILL until nothing of the tree runs and the child is reaped; then report. */
async function killTree(t: ProcessTree, forced: boolean): Promise<void> {
  const start = now().mono;
  if (forced && t.running().length > 0) send({ t: 'killing' });
  const { unkillable } = await t.kill(deadlines?.confirmBudgetMs ?? 500);
  // Its exit status follows its reaping at once; never wait on it unboundedly.
  if (unkillable.length === 0) await Promise.race([reaped, new Promise((r) => setTimeout(r, 100))]);
  gone = true;
  tree = null; // its pid may be reused from now on: nothing more is sent to it
  send({ t: 'gone', killed: forced, elapsedMs: Math.round(now().mono - start), unkillable });
  if (parentGone) process.exit(0);
}

function signalOne(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone, or not ours to signal: nothing to forward to
  }
}

process.title = 'leader-run-watchdog';
collectStartupGarbage();
process.on('message', (m: ToWatchdog) => onMessage(m));
// leader-run died (SIGKILL, OOM, crash): nobody renews the lease any more. The channel's
// disconnect is the only sign of that: signals to this process are not.
process.on('disconnect', () => {
  parentGone = true;
  if (!tree || gone || (exited && tree.running().length === 0)) process.exit(0);
  startFence('parent-gone');
  check();
});
// Signals meant for the whole unit (systemd's KillMode=control-group, a `kill` of every
// leader-run process) reach us too. leader-run, which got them as well, drives the stop and
// forwards what the child should get; the lease deadline binds either way.
// In a terminal's job they also tell which signals the child got with leader-run (passOn).
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => heard.set(sig, now().mono));
// Ctrl-Z stops leader-run's job, the child with it, as under a shell: not this process, which
// keeps the lease deadline on the stopped child.
for (const sig of ['SIGTSTP', 'SIGTTIN', 'SIGTTOU'] as const) process.on(sig, () => {});
// leader-run may have died before these handlers existed: then no 'disconnect' will come.
if (!process.connected) process.exit(0);
execFile('setpriv', ['--help'], { timeout: 2000 }, (err, stdout) => {
  if (!err && stdout.includes('--pdeathsig')) pdeathsig = ['setpriv', '--pdeathsig', 'KILL', '--'];
  send({ t: 'ready' });
});
