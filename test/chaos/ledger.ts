/**
 * Follows the shared ledger as the workers append to it (reading only what is new, since a
 * long run writes tens of thousands of beats), and keeps each child's life: first and last
 * sign of life on the host's monotonic clock, whether it stopped, its grandchildren.
 */
import fs from 'node:fs';
import type { LedgerLine } from '../support/leader-run.ts';
import { procStart } from '../support/procs.ts';

export interface Life {
  pid: number;
  /** The worker's --name: `c<slot>.<generation>`; a grandchild that writes to the ledger
   *  itself adds `/<what>` to its worker's name. */
  name: string;
  /** The name of the child (the worker) whose tree this life belongs to. */
  tree: string;
  /** LEADER_RUN_SLOT of a --slots child (from its start line). */
  slot: string | undefined;
  from: number;
  to: number;
  started: boolean;
  stopped: boolean;
  /** Grandchildren pids with their start time, so a reused pid is not mistaken for them. */
  grandchildren: Array<{ pid: number; start: string | undefined }>;
  /** The worker's own start time in /proc, read when its start line was seen (undefined:
   *  it was already gone then). */
  procStart: string | undefined;
  /** The worker and its grandchildren were all seen dead: no need to look again. */
  gone: boolean;
  /** Evidence: every line but beats, plus the first few beats... */
  lines: LedgerLine[];
  /** ...and the last few lines of any kind. */
  recent: LedgerLine[];
}

export interface Overlap {
  a: Life;
  b: Life;
  /** When the later of the two started, and for how long both showed signs of life. */
  at: number;
  ms: number;
}

/** Beats kept per child for evidence: the first few, and the last few lines. */
const KEEP_HEAD = 3;
const KEEP_TAIL = 8;

export class LedgerTail {
  readonly file: string;
  /** By pid and name: a pid reused by a later child is another life. */
  readonly lives = new Map<string, Life>();
  /** Children (not their grandchildren) in the order their start lines were seen. */
  readonly starts: Life[] = [];
  #fd: number;
  #offset = 0;
  #rest = '';
  #buf = Buffer.alloc(1 << 16);

  constructor(file: string) {
    this.file = file;
    fs.writeFileSync(file, '');
    this.#fd = fs.openSync(file, 'r');
  }

  close(): void {
    fs.closeSync(this.#fd);
  }

  poll(): void {
    for (;;) {
      const n = fs.readSync(this.#fd, this.#buf, 0, this.#buf.length, this.#offset);
      if (n <= 0) break;
      this.#offset += n;
      this.#rest += this.#buf.toString('utf8', 0, n);
    }
    let nl: number;
    while ((nl = this.#rest.indexOf('\n')) >= 0) {
      const text = this.#rest.slice(0, nl);
      this.#rest = this.#rest.slice(nl + 1);
      if (!text) continue;
      let line: LedgerLine;
      try {
        line = JSON.parse(text) as LedgerLine;
      } catch {
        continue; // appends are atomic; a torn line would mean a bug in the fixture, not here
      }
      this.#add(line);
    }
  }

  #add(l: LedgerLine): void {
    const key = `${l.pid} ${l.name}`;
    let life = this.lives.get(key);
    if (!life) {
      life = {
        pid: l.pid,
        name: l.name,
        tree: l.name.split('/')[0]!,
        slot: undefined,
        from: l.mono,
        to: l.mono,
        started: false,
        stopped: false,
        grandchildren: [],
        procStart: undefined,
        gone: false,
        lines: [],
        recent: [],
      };
      this.lives.set(key, life);
    }
    life.from = Math.min(life.from, l.mono);
    life.to = Math.max(life.to, l.mono);
    if (l.ev === 'start') {
      life.started = true;
      life.slot = (l['env'] as { slot?: string } | undefined)?.slot;
      life.procStart = procStart(l.pid);
      const kids = Array.isArray(l['grandchildren']) ? (l['grandchildren'] as number[]) : [];
      life.grandchildren = kids.map((pid) => ({ pid, start: procStart(pid) }));
      if (life.name === life.tree) this.starts.push(life);
    }
    if (l.ev === 'stop') life.stopped = true;
    if (l.ev !== 'beat' || life.lines.length < KEEP_HEAD) life.lines.push(l);
    life.recent.push(l);
    if (life.recent.length > KEEP_TAIL) life.recent.shift();
  }

  /** A child's kept lines in time order. */
  evidence(life: Life): LedgerLine[] {
    const all = new Set([...life.lines, ...life.recent]);
    return [...all].sort((x, y) => x.mono - y.mono);
  }

  /** Children (not their grandchildren) showing signs of life within the last `withinMs`
   *  and not stopped. */
  running(nowMono: number, withinMs: number): Life[] {
    const out: Life[] = [];
    for (const l of this.lives.values()) if (l.name === l.tree && !l.stopped && nowMono - l.to <= withinMs) out.push(l);
    return out;
  }

  /** Every pair of lives of different trees whose [first, last] sign of life intersect. */
  overlaps(): Overlap[] {
    const iv = [...this.lives.values()].sort((x, y) => x.from - y.from);
    const out: Overlap[] = [];
    for (let i = 0; i < iv.length; i++) {
      for (let j = i + 1; j < iv.length; j++) {
        const a = iv[i]!,
          b = iv[j]!;
        if (b.from >= a.to) break; // sorted by start: no later child can intersect a
        if (a.tree === b.tree) continue;
        out.push({ a, b, at: b.from, ms: Math.min(a.to, b.to) - b.from });
      }
    }
    return out;
  }
}
