/**
 * The child's process tree: everything in the session the child leads.
 *
 * The child is started with setsid(), so its session id is its pid. Grandchildren stay in
 * that session even when they make process groups of their own (shells with job control
 * do), so the session — not just the process group — is what we signal and what we wait to
 * see empty. A process that calls setsid() itself (a daemon) leaves the session; we also
 * take the descendants of the child we can still see by parent pid, but a daemon whose
 * parent has already exited cannot be found. Linux /proc is required for this; elsewhere
 * only the process group is signalled.
 */
import { readdirSync, readFileSync } from 'node:fs';

interface ProcInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
  state: string;
}

const hasProc = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

function readProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.push({ pid, state: f[0] ?? '', ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]) });
  }
  return out;
}

/** Live (not zombie) processes of the tree rooted at the session leader `sid`. */
export function treeMembers(sid: number): number[] {
  return liveTree(sid).map((p) => p.pid);
}

function liveTree(sid: number): ProcInfo[] {
  if (!hasProc) return groupAlive(sid) ? [{ pid: sid, ppid: 0, pgrp: sid, session: sid, state: 'R' }] : [];
  const procs = readProcs();
  const members = new Set<number>();
  for (const p of procs) if (p.session === sid) members.add(p.pid);
  // Descendants that left the session but still hang below a member.
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!members.has(p.pid) && members.has(p.ppid)) {
        members.add(p.pid);
        grew = true;
      }
    }
  }
  return procs.filter((p) => members.has(p.pid) && p.state !== 'Z' && p.state !== 'X');
}

/** Sends `signal` once to every process of the tree: the child's process group in one call,
 *  then each member outside that group. */
export function signalTree(sid: number, signal: NodeJS.Signals): void {
  trySignal(-sid, signal);
  for (const p of liveTree(sid)) if (p.pgrp !== sid) trySignal(p.pid, signal);
}

function trySignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // ESRCH: already gone. EPERM cannot happen for our own descendants.
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
