// Memory as the kubelet sees it: a process tree in a memory cgroup — one the bench makes
// for each candidate (cgroup v1's memory controller or v2, whichever this machine has;
// needs root), or a Pod's on the real node — read as usage, working set (usage − inactive
// file pages: what `kubectl top` shows and the kubelet evicts on), anonymous memory and file
// pages, plus PSS per process.
import fs from 'node:fs';
import path from 'node:path';

export interface CgroupMemory {
  usageKiB: number;
  workingSetKiB: number;
  anonKiB: number;
  /** File pages charged here: the working set counts the active ones. */
  activeFileKiB: number;
  inactiveFileKiB: number;
  /** Each process in the cgroup (and the cgroups below it), by its command name: its PSS
   *  and the anonymous part of it. */
  pss: Array<{ pid: number; comm: string; pssKiB: number | undefined; anonKiB: number | undefined }>;
}

interface Layout {
  version: 1 | 2;
  /** Where our own process sits; new cgroups go beneath it. */
  home: string;
}

function layout(): Layout {
  const own = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  if (fs.existsSync('/sys/fs/cgroup/memory/memory.stat')) {
    const rel = own.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l))?.split(':')[2] ?? '/';
    const home = path.join('/sys/fs/cgroup/memory', rel);
    return { version: 1, home: fs.existsSync(home) ? home : '/sys/fs/cgroup/memory' };
  }
  if (fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    // v2 lets processes live only in leaf cgroups: ours go beside the root's children.
    const root = '/sys/fs/cgroup';
    if (!fs.readFileSync(path.join(root, 'cgroup.subtree_control'), 'utf8').includes('memory'))
      fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '+memory');
    return { version: 2, home: root };
  }
  throw new Error('no memory cgroup controller is mounted under /sys/fs/cgroup');
}

/** Why memory cannot be measured here, or undefined when it can. */
export function cgroupProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'the memory figures need root (to create memory cgroups and drop the page cache)';
  try {
    layout();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Drops clean page cache, so a tree started next is charged for the file pages it touches. */
export function dropPageCache(): void {
  fs.writeFileSync('/proc/sys/vm/drop_caches', '1');
}

export class MemoryCgroup {
  readonly dir: string;
  readonly #version: 1 | 2;
  readonly #home: string;

  private constructor(dir: string, version: 1 | 2, home: string) {
    this.dir = dir;
    this.#version = version;
    this.#home = home;
  }

  /** A cgroup that exists already (a Pod's), to read. */
  static at(dir: string): MemoryCgroup {
    return new MemoryCgroup(dir, dir.startsWith('/sys/fs/cgroup/memory/') ? 1 : 2, dir);
  }

  static create(name: string): MemoryCgroup {
    const { version, home } = layout();
    const dir = path.join(home, name);
    fs.mkdirSync(dir, { recursive: true });
    return new MemoryCgroup(dir, version, home);
  }

  /** Runs `spawn` with this process inside the cgroup, so what it forks starts (and is
   *  charged) there; then moves back. Charges never follow a moving process, so nothing of
   *  this process's own memory is counted. */
  spawnInside<T>(spawn: () => T): T {
    const back = this.#version === 1 ? this.#home : this.#ownV2();
    fs.writeFileSync(path.join(this.dir, 'cgroup.procs'), String(process.pid));
    try {
      return spawn();
    } finally {
      fs.writeFileSync(path.join(back, 'cgroup.procs'), String(process.pid));
    }
  }

  read(): CgroupMemory {
    const stat = new Map(
      fs
        .readFileSync(path.join(this.dir, 'memory.stat'), 'utf8')
        .split('\n')
        .map((l) => l.split(' '))
        .map(([k, v]) => [k ?? '', Number(v)]),
    );
    const kib = (bytes: number | undefined): number => Math.round((bytes ?? NaN) / 1024);
    const usage = Number(fs.readFileSync(path.join(this.dir, this.#version === 1 ? 'memory.usage_in_bytes' : 'memory.current'), 'utf8'));
    const inactiveFile = this.#version === 1 ? stat.get('total_inactive_file') : stat.get('inactive_file');
    const anon = this.#version === 1 ? stat.get('total_rss') : stat.get('anon');
    const activeFile = this.#version === 1 ? stat.get('total_active_file') : stat.get('active_file');
    return {
      usageKiB: kib(usage),
      workingSetKiB: kib(usage - (inactiveFile ?? 0)),
      anonKiB: kib(anon),
      activeFileKiB: kib(activeFile),
      inactiveFileKiB: kib(inactiveFile),
      pss: this.pids().map((pid) => ({ pid, comm: comm(pid), ...smaps(pid) })),
    };
  }

  /** The processes in this cgroup and in the cgroups below it. */
  pids(dir = this.dir): number[] {
    const own = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    const below = fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory());
    return [...own, ...below.flatMap((d) => this.pids(path.join(dir, d.name)))];
  }

  /** Removes the cgroup once its processes are gone (waits up to `ms` for them). */
  async remove(ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (this.pids().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    try {
      fs.rmdirSync(this.dir);
    } catch (e) {
      console.error(`bench: could not remove ${this.dir}: ${(e as Error).message}`);
    }
  }

  #ownV2(): string {
    const rel = fs.readFileSync('/proc/self/cgroup', 'utf8').match(/^0::(.*)$/m)?.[1] ?? '/';
    return path.join('/sys/fs/cgroup', rel);
  }
}

function comm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

function smaps(pid: number): { pssKiB: number | undefined; anonKiB: number | undefined } {
  try {
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string): number | undefined => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup);
      return m ? Number(m[1]) : undefined;
    };
    return { pssKiB: field('Pss'), anonKiB: field('Anonymous') };
  } catch {
    return { pssKiB: undefined, anonKiB: undefined };
  }
}
