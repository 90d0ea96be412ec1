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
  /** A kernel thread (PF_KTHREAD): no environment, never of the tree. */
  kthread?: boolean;
  /** Where its environment lies in its memory (Linux >= 3.5); both 0 while an exec sets up
   *  the new image, or to a reader without access. */
  envStart?: number;
  envEnd?: number;
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
  const stat: ProcStat = { state: f[0] ?? '', ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), start: Number(f[19]) };
  // Fields 9 (flags) and 50–51 (env_start, env_end), counted from the pid as 1.
  if (f[6] !== undefined) stat.kthread = (Number(f[6]) & 0x00200000) !== 0;
  if (f[48] !== undefined) {
    stat.envStart = Number(f[47]);
    stat.envEnd = Number(f[48]);
  }
  return stat;
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

function listPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 0) out.push(pid);
  }
  return out;
}

/** The file's content; 'gone' if its process is, undefined if it is not ours to read. */
function readEnviron(file: string): string | 'gone' | undefined {
  try {
    return readFileSync(file, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ESRCH' ? 'gone' : undefined;
  }
}

/** Whether a process whose environment just read empty is in the middle of an exec (the new
 *  image's environment not in place yet), by its stat read now: the exec may have begun after
 *  the stat the look read. */
function midExec(pid: number): boolean {
  const now = readStat(`/proc/${pid}/stat`);
  return now?.envStart === 0 && now.envEnd === 0;
}

/** How long a running process whose environment reads empty is looked at again: an exec that
 *  is setting up the new image's environment shows it empty for a moment with its place
 *  already set (longer if the process is kept off the CPU meanwhile); an `env -i` process
 *  shows it empty for good. */
const EMPTY_ENVIRON_MS = 100;

/** The process's environment; 'gone' if it is, undefined if it is not ours to read. A leader
 *  whose main thread exited reads none of its own: its threads that run on still hold it. */
function environOf(p: ProcInfo): string | 'gone' | undefined {
  const env = readEnviron(`/proc/${p.pid}/environ`);
  if ((env === 'gone' || env === '') && exited(p.state)) {
    try {
      for (const tid of readdirSync(`/proc/${p.pid}/task`)) {
        const t = readEnviron(`/proc/${p.pid}/task/${tid}/environ`);
        if (t !== undefined && t !== 'gone' && t !== '') return t;
      }
    } catch {
      // gone meanwhile
    }
  }
  return env;
}

interface Scope {
  readonly sid: number | null;
  readonly mark: string | undefined;
  readonly job: Job | undefined;
  readonly since: number;
  /** For a running process whose environment read empty: whether it may yet show one, by how
   *  long ago this tree first saw it so (kept per process across looks and calls). */
  readonly stillEmpty: (p: ProcInfo) => boolean;
}

/**
 * Looks at /proc for one tree, as often as asked; each look reads only the processes that
 * earlier looks did not list. The members: every process of the tree of session leader
 * `sid` (or, without one, of the processes that carry `mark`), in any state. In a terminal's
 * `job`, also each process of the job's group that started no earlier than the child and
 * whose parent is outside the group: an orphan of the tree (leader-run and the shell's other
 * commands in the group started before the child; anything else started since in the group
 * has a parent in it, unless that parent is gone), found even if it cleared its environment.
 */
class Survey {
  readonly #scope: Scope;
  readonly #seen = new Set<number>();
  readonly #pgrpOf = new Map<number, number>();
  readonly #ids = new Set<number>();

  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /** The members among the processes not listed before; `died`: those of them that had
   *  exited, or were gone, by the time their stat was read — and may have forked first
   *  (only those that started no earlier than the child can have been of the tree);
   *  `unsettled`: those that may carry the mark but have no environment yet (mid-exec),
   *  looked at again by the next look. */
  look(onMember?: (p: ProcInfo) => void): { found: ProcInfo[]; died: number[]; unsettled: number[] } {
    const { sid, mark, job, since } = this.#scope;
    const fresh: ProcInfo[] = [];
    const died: number[] = [];
    const unsettled: number[] = [];
    for (const pid of listPids()) {
      if (this.#seen.has(pid)) continue;
      this.#seen.add(pid);
      const s = readStat(`/proc/${pid}/stat`);
      if (!s) {
        died.push(pid);
        continue;
      }
      if (exited(s.state) && s.start >= since) died.push(pid);
      this.#pgrpOf.set(pid, s.pgrp);
      fresh.push({ pid, ...s });
    }
    const ids = this.#ids;
    const orphan = (p: ProcInfo): boolean => !!job && p.pgrp === job.pgrp && p.start >= job.since && this.#pgrpOf.get(p.ppid) !== job.pgrp;
    // Only a process started since the child can carry the term's mark, which the child's
    // environment was the first to hold: older ones' environments need not be read.
    const mayCarry = (p: ProcInfo): boolean => !!mark && p.pid !== process.pid && p.start >= since && !p.kthread;
    const carries = (p: ProcInfo): boolean => {
      const env = environOf(p);
      if (env === 'gone') {
        died.push(p.pid); // exited since its stat was read: it may have forked first
        return false;
      }
      if (env === '' && !exited(p.state) && (midExec(p.pid) || this.#scope.stillEmpty(p))) {
        this.#seen.delete(p.pid);
        unsettled.push(p.pid);
      }
      return env?.split('\0').includes(mark!) ?? false;
    };
    // In the child's session, an orphan of its job, marked, or in a session a member leads
    // (everything in a session descends from its leader).
    const member = (p: ProcInfo): boolean => (sid !== null && p.session === sid) || orphan(p) || ids.has(p.session) || (mayCarry(p) && carries(p));
    const add = (p: ProcInfo): void => {
      ids.add(p.pid);
      onMember?.(p);
    };
    for (const p of fresh) if (member(p)) add(p);
    // Descendants that left the session but still hang below a member, and the sessions
    // members lead, whatever order /proc listed them in.
    let grew = true;
    while (grew) {
      grew = false;
      for (const p of fresh) {
        if (!ids.has(p.pid) && (ids.has(p.ppid) || ids.has(p.session))) {
          add(p);
          grew = true;
        }
      }
    }
    return { found: fresh.filter((p) => ids.has(p.pid)), died, unsettled };
  }
}

/** Looks after which a /proc that will not hold still (processes exiting as it is read, or
 *  mid-exec, look after look) is reported as a tree that may still run. */
const MAX_LOOKS = 100;

/** One process tree: the session the child leads, and the processes marked with its term. */
export class ProcessTree {
  /** The child's pid, which is its session and process group id; null while unknown, or
   *  when the child does not lead a session (a terminal's job). */
  readonly sid: number | null;
  readonly #mark: string | undefined;
  readonly #job: Job | undefined;
  readonly #since: number;
  /** When each running process (pid:start) was first seen with an empty environment. */
  readonly #emptySince = new Map<string, number>();

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

  #survey(): Survey {
    const stillEmpty = (p: ProcInfo): boolean => {
      const key = `${p.pid}:${p.start}`;
      const now = performance.now();
      const first = this.#emptySince.get(key) ?? now;
      this.#emptySince.set(key, first);
      return now - first < EMPTY_ENVIRON_MS;
    };
    return new Survey({ sid: this.sid, mark: this.#mark, job: this.#job, since: this.#since, stillEmpty });
  }

  #members(): ProcInfo[] {
    if (!hasProc) return this.sid !== null && groupAlive(this.sid) ? [{ pid: this.sid, ppid: 0, pgrp: this.sid, session: this.sid, state: 'R', start: 0 }] : [];
    return this.#survey().look().found;
  }

  /**
   * The processes of the tree that still run (any of their tasks). Empty only once a look at
   * /proc finds none of them running and no process that exited while it was read: one that
   * forked as it exited (a daemon's double fork, a process that keeps hopping to a new pid)
   * has a child that look did not list, so /proc is looked at again for what is new; so is a
   * process that may carry the mark but is in the middle of an exec. If /proc will not hold
   * still, the processes that exited (or were mid-exec) in the last look are returned: the
   * tree may still run.
   */
  running(): number[] {
    return this.#look();
  }

  /** running(), sending each member SIGKILL the moment it is found (`denied` collects those
   *  that refuse it): a process that keeps forking away is caught before it can fork again. */
  #look(denied?: number[]): number[] {
    if (!hasProc) return this.#members().map((p) => p.pid);
    const survey = this.#survey();
    const kill = denied && ((p: ProcInfo) => trySignal(p.pid, 'SIGKILL', denied));
    let pending: number[] = [];
    for (let looks = 0; looks < MAX_LOOKS; looks++) {
      const look = survey.look(kill);
      const live = look.found.filter(running).map((p) => p.pid);
      if (live.length > 0) return live;
      pending = [...look.died, ...look.unsettled];
      if (pending.length === 0) return [];
    }
    return pending;
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

  /** SIGKILL rounds until no process of the tree runs — always at least one round, so an
   *  empty-looking tree is never taken on trust. A round signals the group, then each member
   *  as /proc shows it (see #look). Gives up when only processes that refuse the signal are
   *  left and `budgetMs` has passed since they first refused: those are returned (the caller
   *  must not release the Lease while they may run). Waits `pollMs` between rounds only when
   *  a round leaves the same processes as the one before (slow to die, or refusing). */
  async kill(budgetMs: number, pollMs = 10): Promise<{ unkillable: number[] }> {
    let deniedSince: number | undefined;
    let before = '';
    for (;;) {
      const denied: number[] = [];
      if (this.sid !== null) trySignal(-this.sid, 'SIGKILL', denied);
      const left = this.#look(denied);
      if (left.length === 0) return { unkillable: [] };
      if (left.every((pid) => denied.includes(pid))) {
        const now = performance.now();
        deniedSince ??= now;
        if (now - deniedSince >= budgetMs) return { unkillable: left };
      } else deniedSince = undefined;
      const now = left.join(' ');
      await new Promise((r) => (now === before ? setTimeout(r, pollMs) : setImmediate(r)));
      before = now;
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
