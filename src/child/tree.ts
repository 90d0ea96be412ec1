/**
 * The child's process tree: everything in the session the child leads, and everything that
 * carries the term's mark in its environment.
 *
 * The child is started with setsid(), so its session id is its pid. Grandchildren stay in
 * that session even when they make process groups of their own (shells with job control
 * do), so the session — not just the process group — is what we signal and what we wait to
 * see empty. A process that calls setsid() itself (a daemon) leaves the session; we also
 * take the descendants of the child we can still see by parent pid, and every process whose
 * environment holds the term's mark (LEADER_RUN_TERM), which a daemon inherits unless it
 * clears its environment. Linux /proc is required for this; elsewhere only the process
 * group is signalled.
 *
 * In a terminal the child instead shares leader-run's session and process group (its job,
 * as under a shell); that session and group are not the tree's, so the tree is then the
 * processes that carry the mark and their descendants (sid null).
 *
 * Dead means every task dead: a thread-group leader whose main thread exited reads "Z" in
 * its own stat while its other threads run on, so a "Z" process is looked at task by task.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The environment variable that marks every process of one term. */
export const TERM_MARK = 'LEADER_RUN_TERM';

export interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** When it started, in clock ticks since boot. */
  start: number;
}

/** A tree in a terminal's job (see above): the job's process group, and the child's start. */
export interface Job {
  readonly pgrp: number;
  readonly since: number;
}

interface ProcInfo extends ProcStat {
  pid: number;
}

/** The fields of a /proc/<pid>/stat line that the tree needs. The command name may contain
 *  spaces and parentheses: the fields start after the last ')'. */
export function parseStat(line: string): ProcStat {
  const f = line.slice(line.lastIndexOf(')') + 2).split(' ');
  return { state: f[0] ?? '', ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), start: Number(f[19]) };
}

/** The process's stat fields, or undefined if it is gone (or there is no /proc). */
export function statOf(pid: number | 'self'): ProcStat | undefined {
  return readStat(`/proc/${pid}/stat`);
}

/** Whether /proc can be read: without it only a session's process group can be found. */
export const hasProc = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

function readStat(path: string): ProcStat | undefined {
  try {
    return parseStat(readFileSync(path, 'latin1'));
  } catch {
    return undefined; // gone meanwhile
  }
}

const exited = (state: string): boolean => state === 'Z' || state === 'X';

/** Whether any task of the process still runs. */
function running(p: ProcInfo): boolean {
  if (!exited(p.state)) return true;
  try {
    for (const tid of readdirSync(`/proc/${p.pid}/task`)) {
      const s = readStat(`/proc/${p.pid}/task/${tid}/stat`);
      if (s && !exited(s.state)) return true;
    }
  } catch {
    // gone meanwhile
  }
  return false;
}

function readProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const s = readStat(`/proc/${pid}/stat`);
    if (s) out.push({ pid, ...s });
  }
  return out;
}

function marked(pid: number, mark: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(mark);
  } catch {
    return false; // gone, or not ours to read
  }
}

/** Every process of the tree of session leader `sid` (or, without one, of the processes
 *  that carry `mark`), in any state. In a terminal's `job`, also each process of the job's
 *  group that started no earlier than the child and whose parent is outside the group: an
 *  orphan of the tree (leader-run and the shell's other commands in the group started
 *  before the child; anything else started since in the group has a parent in it, unless
 *  that parent is gone), found even if it cleared its environment. */
function members(sid: number | null, mark: string | undefined, job: Job | undefined, since: number): ProcInfo[] {
  if (!hasProc) return sid !== null && groupAlive(sid) ? [{ pid: sid, ppid: 0, pgrp: sid, session: sid, state: 'R', start: 0 }] : [];
  const procs = readProcs();
  const groupOf = new Map(procs.map((p) => [p.pid, p.pgrp]));
  const orphan = (p: ProcInfo): boolean => !!job && p.pgrp === job.pgrp && p.start >= job.since && groupOf.get(p.ppid) !== job.pgrp;
  const ids = new Set<number>();
  // Only a process started since the child can carry the term's mark, which the child's
  // environment was the first to hold: older ones' environments need not be read.
  const mayCarry = (p: ProcInfo): boolean => !!mark && p.pid !== process.pid && p.start >= since;
  for (const p of procs) if ((sid !== null && p.session === sid) || orphan(p) || (mayCarry(p) && marked(p.pid, mark!))) ids.add(p.pid);
  // Descendants that left the session but still hang below a member.
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!ids.has(p.pid) && ids.has(p.ppid)) {
        ids.add(p.pid);
        grew = true;
      }
    }
  }
  return procs.filter((p) => ids.has(p.pid));
}

/** One process tree: the session the child leads, and the processes marked with its term. */
export class ProcessTree {
  /** The child's pid, which is its session and process group id; null while unknown, or
   *  when the child does not lead a session (a terminal's job). */
  readonly sid: number | null;
  readonly #mark: string | undefined;
  readonly #job: Job | undefined;
  readonly #since: number;

  /** `mark` is `LEADER_RUN_TERM=<nonce>` as it stands in the child's environment; `job`, in a
   *  terminal's job (sid null), where the orphans of the tree are found; `since`, the child's
   *  start (clock ticks since boot, as in its stat), if known: no process that started
   *  before it is looked at for the mark. */
  constructor(sid: number | null, mark?: string, { job, since = 0 }: { job?: Job | undefined; since?: number | undefined } = {}) {
    if (sid !== null && !(sid > 1)) throw new RangeError(`not a child's pid: ${sid}`);
    this.sid = sid;
    this.#mark = mark;
    this.#job = job;
    this.#since = since;
  }

  #members(): ProcInfo[] {
    return members(this.sid, this.#mark, this.#job, this.#since);
  }

  /** The processes of the tree that still run (any of their tasks). */
  running(): number[] {
    return this.#members()
      .filter(running)
      .map((p) => p.pid);
  }

  /** Sends each of `signals`, in order, once to every process of the tree: the child's
   *  process group in one call, then each member outside that group, whatever its state;
   *  one look at /proc for all of them. `except`: a process group whose members got the
   *  signals already (leader-run's job in a terminal), left out. */
  signal(signals: NodeJS.Signals | readonly NodeJS.Signals[], except?: number): void {
    const all = typeof signals === 'string' ? [signals] : signals;
    if (this.sid !== null) for (const s of all) trySignal(-this.sid, s, []);
    for (const p of this.#members()) if (p.pgrp !== this.sid && p.pgrp !== except) for (const s of all) trySignal(p.pid, s, []);
  }

  /** Sends `signal` to the members of the tree in process group `pgrp`, one by one (the
   *  group itself may hold processes outside the tree: leader-run's job in a terminal). */
  signalGroup(pgrp: number, signal: NodeJS.Signals): void {
    for (const p of this.#members()) if (p.pgrp === pgrp) trySignal(p.pid, signal, []);
  }

  /** SIGKILL to the group and to every member one by one (a repeated SIGKILL changes
   *  nothing); returns the members that refused it (EPERM: a descendant that became another
   *  user through a setuid program). */
  #killRound(): Set<number> {
    const denied: number[] = [];
    if (this.sid !== null) trySignal(-this.sid, 'SIGKILL', []);
    for (const p of this.#members()) trySignal(p.pid, 'SIGKILL', denied);
    return new Set(denied);
  }

  /** SIGKILL rounds until no process of the tree runs — always at least one round, so an
   *  empty-looking tree is never taken on trust. Gives up when only processes that refuse
   *  the signal are left and `budgetMs` has passed since they first refused: those are
   *  returned (the caller must not release the Lease while they may run). */
  async kill(budgetMs: number, pollMs = 10): Promise<{ unkillable: number[] }> {
    let deniedSince: number | undefined;
    for (;;) {
      const denied = this.#killRound();
      const left = this.running();
      if (left.length === 0) return { unkillable: [] };
      if (left.every((pid) => denied.has(pid))) {
        const now = performance.now();
        deniedSince ??= now;
        if (now - deniedSince >= budgetMs) return { unkillable: left };
      } else deniedSince = undefined;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}

function trySignal(pid: number, signal: NodeJS.Signals, denied: number[]): void {
  try {
    process.kill(pid, signal);
  } catch (e) {
    // ESRCH: already gone. EPERM: a descendant that became another user (setuid).
    if ((e as NodeJS.ErrnoException).code === 'EPERM') denied.push(pid);
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
