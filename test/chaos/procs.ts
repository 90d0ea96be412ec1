/** What the chaos run needs from /proc (Linux): process start times, to tell a process we
 *  started from a later one that reused its pid, and the children of a process. */
import fs from 'node:fs';

function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The process's start time in clock ticks since boot (field 22), or undefined if it is gone. */
export function procStart(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** Alive (not a zombie) and still the process that had `start`. */
export function stillAlive(pid: number, start: string | undefined): boolean {
  const f = statFields(pid);
  if (!f || f[0] === 'Z' || f[0] === 'X') return false;
  return start === undefined || f[19] === start;
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

/** Every live process whose command line contains `needle`. */
export function processesMatching(needle: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    if (cmdline(pid).includes(needle) && stillAlive(pid, undefined)) out.push(pid);
  }
  return out;
}

export const monoNow = (): number => Number(process.hrtime.bigint()) / 1e6;
