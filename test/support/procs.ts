/** What the tests, the chaos run and the benchmark read from /proc (Linux): process state,
 *  start times (to tell a process we started from a later one that reused its pid), parents,
 *  children, and leader-run's watchdog. */
import fs from 'node:fs';
import os from 'node:os';

/** The fields of /proc/<pid>/stat after the command name, which may hold spaces and
 *  parentheses: they start after the last ')'. f[0] is the state, f[1] the ppid. */
export function statFields(pid: number | string, task?: number | string): string[] | undefined {
  try {
    const stat = fs.readFileSync(task === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${task}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The process's start time in clock ticks since boot (field 22), or undefined if it is gone. */
export function procStart(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** Whether any task (thread) of the process still runs. A thread-group leader whose main
 *  thread exited reads "Z" in its own stat while its other threads go on. */
export function running(pid: number): boolean {
  const own = statFields(pid);
  if (!own || !isProcess(pid)) return false;
  if (own[0] !== 'Z' && own[0] !== 'X') return true;
  try {
    return fs.readdirSync(`/proc/${pid}/task`).some((t) => {
      const s = statFields(pid, t)?.[0];
      return s !== undefined && s !== 'Z' && s !== 'X';
    });
  } catch {
    return false;
  }
}

/** A process known by its pid and its start time, taken while it was known to run. */
export interface KnownProcess {
  pid: number;
  start: string | undefined;
}

/** Knows `pid` from now on by its start time too; a process already gone is never signalled. */
export function known(pid: number): KnownProcess {
  return { pid, start: procStart(pid) };
}

/**
 * Sends `signal` only while `p` is still the process that had its start time; returns whether
 * it was sent. A pid is reused once its process has been reaped (pid_max is 32768 here, and a
 * CI run wraps it), and on Linux kill(2) of a *thread's* id signals that thread's whole
 * process: a stale SIGKILL can take down the test runner through a thread it started later.
 * Every signal to a process that is not our own child goes through here.
 */
export function signalKnown(p: KnownProcess | undefined, signal: NodeJS.Signals): boolean {
  if (!p || p.start === undefined || procStart(p.pid) !== p.start) return false;
  try {
    process.kill(p.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** /proc/<id> answers for a thread's id too (unlisted): a pid reused by a thread is no process. */
function isProcess(pid: number): boolean {
  try {
    return new RegExp(`^Tgid:\\s+${pid}$`, 'm').test(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
  } catch {
    return false;
  }
}

/** Running (see `running`) and still the process that had `start`. */
export function stillAlive(pid: number, start: string | undefined): boolean {
  if (!running(pid)) return false;
  return start === undefined || procStart(pid) === start;
}

export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

export function parentOf(pid: number): number {
  return Number(statFields(pid)?.[1] ?? 0);
}

export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (Number(statFields(pid)?.[1]) === ppid) out.push(pid);
  }
  return out;
}

/** Every running process whose command line contains `needle`. */
export function processesMatching(needle: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    if (cmdline(pid).includes(needle) && running(pid)) out.push(pid);
  }
  return out;
}

/** The watchdog process that the leader-run with pid `main` forked, if any. */
export function watchdogOf(main: number): number | undefined {
  return childrenOf(main).find((p) => /watchdog/.test(cmdline(p)));
}

/** Whether the process has a handler for `signal` installed (SigCgt in /proc/<pid>/status).
 *  Node resets every inherited disposition at start-up. It catches SIGINT and SIGTERM itself
 *  from then on, only to restore the terminal and die of them; a script's own handlers come
 *  later. So ask about a signal Node leaves alone. */
export function catches(pid: number, signal: NodeJS.Signals): boolean {
  try {
    const mask = /^SigCgt:\s+([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1];
    const bit = BigInt(os.constants.signals[signal] - 1);
    return mask !== undefined && ((BigInt(`0x${mask}`) >> bit) & 1n) === 1n;
  } catch {
    return false;
  }
}

export const monoNow = (): number => Number(process.hrtime.bigint()) / 1e6;
