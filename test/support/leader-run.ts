/** Runs the real leader-run CLI as a process and reads its JSON log; reads ledgers. */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnGuarded } from '../control-plane/cluster.ts';
import { nativeFixture } from './native.ts';
import { type KnownProcess, known, running, signalKnown } from './procs.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(repo, 'bin', 'leader-run.js');
export const WORKER = path.join(repo, 'test', 'fixtures', 'worker.ts');

/** Short timings that still satisfy R + G + K + ε ≤ D, so tests run in seconds. */
export const FAST = ['--lease-duration', '4s', '--renew-deadline', '2s', '--retry-period', '500ms', '--fence-grace', '500ms'];
export const FAST_D_MS = 4000;

export interface LogRecord {
  time: string;
  level: string;
  msg: string;
  event?: string;
  [k: string]: unknown;
}

let seq = 0;
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${seq++}`;
}

export function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'leader-run-e2e-'));
}

export interface LeaderRunOptions {
  env?: NodeJS.ProcessEnv;
  /** Run as this user (and group), not as the test's. */
  uid?: number;
  gid?: number;
  /** Run as the foreground job of a terminal of its own (test/fixtures/native/ptyjob.c):
   *  `type()` types at it, `screen` is what it shows, `pid` is leader-run's. */
  terminal?: boolean;
}

export class LeaderRun {
  readonly proc: ChildProcess;
  readonly records: LogRecord[] = [];
  readonly stderrLines: string[] = [];
  /** What leader-run's stdout (its terminal, with `terminal`) has shown so far. */
  screen = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: Array<{ pred: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }> = [];

  constructor(args: string[], opts: LeaderRunOptions = {}) {
    // Guarded: killed if the test process dies, so no candidate outlives a failed run.
    this.#terminal = opts.terminal === true;
    const argv = [process.execPath, BIN, '--log-format', 'json', ...args];
    const [file, ...rest] = this.#terminal ? [nativeFixture('ptyjob'), ...argv] : argv;
    this.proc = spawnGuarded(file!, rest, {
      stdio: [this.#terminal ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
    });
    let buf = '';
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stderr?.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.stderrLines.push(line);
        const job = /^ptyjob: job (\d+)$/.exec(line);
        if (job) this.#job = known(Number(job[1]));
        let rec: LogRecord | undefined;
        try {
          rec = JSON.parse(line) as LogRecord;
        } catch {
          continue;
        }
        this.records.push(rec);
        for (const w of [...this.#waiters]) {
          if (w.pred(rec)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(rec);
          }
        }
      }
    });
    this.proc.stdout?.setEncoding('utf8');
    this.proc.stdout?.on('data', (chunk: string) => (this.screen += chunk));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  readonly #terminal: boolean;
  /** leader-run under ptyjob: known by pid and start time, as it is not our child. */
  #job: KnownProcess | undefined;

  /** leader-run's pid (with `terminal`: once ptyjob has said it, else 0). */
  get pid(): number {
    return this.#terminal ? (this.#job?.pid ?? 0) : (this.proc.pid ?? 0);
  }

  /** Types at leader-run's terminal (`terminal` only): "\x03" is Ctrl-C, "\x1a" Ctrl-Z. */
  type(keys: string): void {
    this.proc.stdin?.write(keys);
  }

  /** `fg` after a Ctrl-Z: the terminal back to leader-run's job, and SIGCONT to it. */
  foreground(): void {
    this.proc.kill('SIGUSR1');
  }

  /** Resolves with the first record (past or future) with this event; rejects after timeoutMs. */
  waitFor(event: string, timeoutMs = 30_000): Promise<LogRecord> {
    const have = this.records.find((r) => r.event === event);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(t);
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`no "${event}" from leader-run ${this.pid}: ${why}; log:\n${this.stderrLines.slice(-20).join('\n')}`));
      };
      const w = {
        pred: (r: LogRecord) => r.event === event,
        resolve: (r: LogRecord) => {
          clearTimeout(t);
          resolve(r);
        },
      };
      const t = setTimeout(() => fail(`nothing within ${timeoutMs}ms`), timeoutMs);
      this.#waiters.push(w);
      // An exit ends the wait at once, with the status, instead of a silent timeout.
      void this.exited.then((e) => setImmediate(() => this.#waiters.includes(w) && fail(`it exited (${e.signal ?? `status ${e.code}`})`)));
    });
  }

  has(event: string): boolean {
    return this.records.some((r) => r.event === event);
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.#terminal) return void this.proc.kill(sig);
    signalKnown(this.#job, sig);
    if (sig === 'SIGKILL') this.proc.kill(sig);
  }

  async exitCode(timeoutMs = 60_000): Promise<number | null> {
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const e = await this.exited;
    clearTimeout(t);
    return e.code;
  }
}

/** Starts candidates and, when the test is over, kills whatever is left of them (thawing the
 *  frozen first): `const lr = candidates(t); lr.start([...])`. */
export function candidates(t: { after(fn: () => unknown): void }): { start(args: string[], opts?: LeaderRunOptions): LeaderRun } {
  const started: LeaderRun[] = [];
  t.after(() => {
    for (const lr of started) {
      lr.signal('SIGCONT');
      lr.signal('SIGKILL');
    }
  });
  return {
    start(args, opts) {
      const lr = new LeaderRun(args, opts);
      started.push(lr);
      return lr;
    },
  };
}

export interface LedgerLine {
  ev: 'start' | 'beat' | 'stop' | 'sigterm' | 'signal';
  name: string;
  pid: number;
  mono: number;
  wall: number;
  [k: string]: unknown;
}

export function readLedger(file: string): LedgerLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LedgerLine);
}

/** Each child's life as [first, last] sign of life, by pid. */
export function intervals(lines: LedgerLine[]): Array<{ pid: number; name: string; from: number; to: number }> {
  const by = new Map<number, { pid: number; name: string; from: number; to: number }>();
  for (const l of lines) {
    const i = by.get(l.pid) ?? { pid: l.pid, name: l.name, from: l.mono, to: l.mono };
    i.from = Math.min(i.from, l.mono);
    i.to = Math.max(i.to, l.mono);
    by.set(l.pid, i);
  }
  return [...by.values()].sort((a, b) => a.from - b.from);
}

/** Pairs of children whose lives overlap, with the overlap in ms. */
export function overlaps(lines: LedgerLine[]): Array<{ a: number; b: number; ms: number }> {
  const iv = intervals(lines);
  const out: Array<{ a: number; b: number; ms: number }> = [];
  for (let i = 0; i < iv.length; i++)
    for (let j = i + 1; j < iv.length; j++) {
      const a = iv[i]!,
        b = iv[j]!;
      const ms = Math.min(a.to, b.to) - Math.max(a.from, b.from);
      if (ms > 0) out.push({ a: a.pid, b: b.pid, ms });
    }
  return out;
}

/** Whether the process still runs: any of its threads (a thread-group leader whose main
 *  thread exited reads "Z" while its other threads go on; a real zombie does not run). */
export function alive(pid: number): boolean {
  return running(pid);
}

export async function until(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function workerCmd(ledger: string, ...extra: string[]): string[] {
  return ['--', process.execPath, WORKER, '--ledger', ledger, ...extra];
}

/** Waits until the ledger shows `n` children started (leader-run logs child-started before the
 *  child's runtime has written anything). */
export async function started(ledger: string, n: number, timeoutMs = 30_000): Promise<LedgerLine[]> {
  await until(() => readLedger(ledger).filter((l) => l.ev === 'start').length >= n, timeoutMs, `${n} children to start`);
  return readLedger(ledger).filter((l) => l.ev === 'start');
}
