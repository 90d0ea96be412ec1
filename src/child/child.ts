/**
 * leader-run's handle on the child, which runs under the watchdog process (watchdog.ts).
 *
 * Two independent guards keep the child tree from outliving the lease: the watchdog's own
 * deadline timers, and — should the watchdog itself die — this process killing the tree
 * directly. signal-exit adds a last resort for any exit path of leader-run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { onExit } from 'signal-exit';
import type { Instant, Timing } from '../election/timing.ts';
import type { FromWatchdog, ToWatchdog } from './protocol.ts';
import { signalTree, treeMembers } from './tree.ts';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type SpawnResult = { ok: true; pid: number } | { ok: false; status: number; message: string };

const watchdogPath = new URL(import.meta.url.endsWith('.ts') ? './watchdog.ts' : './watchdog.js', import.meta.url);

export class Child {
  readonly #proc: ChildProcess;
  #pid = 0;
  #exit: ChildExit | null = null;
  #gone = false;
  #waiters: Array<{ want: FromWatchdog['t']; resolve: (m: FromWatchdog) => void }> = [];
  readonly exited: Promise<ChildExit>;
  readonly gone: Promise<void>;
  #resolveExit!: (e: ChildExit) => void;
  #resolveGone!: () => void;
  /** Called when the watchdog starts fencing on its own (deadline) — leader-run is late. */
  onFencing: ((why: string) => void) | null = null;

  private constructor(proc: ChildProcess) {
    this.#proc = proc;
    this.exited = new Promise((r) => (this.#resolveExit = r));
    this.gone = new Promise((r) => (this.#resolveGone = r));
    proc.on('message', (m: FromWatchdog) => this.#onMessage(m));
    proc.on('exit', () => this.#onWatchdogExit());
    // Whatever way leader-run exits, a child it started must not survive it.
    onExit(() => {
      if (this.#pid && !this.#gone) signalTree(this.#pid, 'SIGKILL');
    });
  }

  /** Starts the watchdog ahead of need, so becoming leader does not wait for it. */
  static async prepare(): Promise<Child> {
    const proc = fork(watchdogPath, [], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
      detached: true,
      serialization: 'json',
      execArgv: [],
    });
    const c = new Child(proc);
    const died = new Promise<never>((_, reject) =>
      proc.once('exit', (code, signal) => reject(new Error(`the watchdog process exited at start (${signal ?? `status ${code}`})`))),
    );
    await Promise.race([c.#next('ready'), died]);
    return c;
  }

  get pid(): number {
    return this.#pid;
  }
  get watchdogPid(): number {
    return this.#proc.pid ?? 0;
  }

  async spawn(file: string, args: string[], env: Record<string, string>, anchor: Instant, timing: Timing): Promise<SpawnResult> {
    const answer = this.#next(['spawned', 'spawn-failed']);
    this.#send({ t: 'spawn', file, args, env, anchor, timing });
    const m = await answer;
    if (m.t === 'spawned') return { ok: true, pid: m.pid };
    if (m.t === 'spawn-failed') return { ok: false, status: m.status, message: m.message };
    throw new Error(`unexpected watchdog answer ${m.t}`);
  }

  anchor(anchor: Instant): void {
    this.#send({ t: 'anchor', anchor });
  }

  forward(signal: NodeJS.Signals): void {
    this.#send({ t: 'signal', signal });
  }

  /** Voluntary stop; resolves once the whole tree is confirmed gone. */
  stop(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    this.#send({ t: 'stop', signal, graceMs });
    return this.gone;
  }

  /** Involuntary stop; resolves once the whole tree is confirmed gone. */
  fence(): Promise<void> {
    this.#send({ t: 'fence' });
    return this.gone;
  }

  /** Lets the watchdog exit (it does once its channel closes and no child is left). */
  close(): void {
    if (this.#proc.connected) this.#proc.disconnect();
  }

  #send(m: ToWatchdog): void {
    if (this.#proc.connected) this.#proc.send(m);
  }

  #next(want: FromWatchdog['t'] | FromWatchdog['t'][]): Promise<FromWatchdog> {
    const wants = Array.isArray(want) ? want : [want];
    return new Promise((resolve) => {
      for (const w of wants) this.#waiters.push({ want: w, resolve });
    });
  }

  #onMessage(m: FromWatchdog): void {
    switch (m.t) {
      case 'spawned':
        this.#pid = m.pid;
        break;
      case 'exit':
        this.#exit = { code: m.code, signal: m.signal };
        this.#resolveExit(this.#exit);
        break;
      case 'spawn-failed':
        this.#gone = true;
        this.#resolveGone();
        break;
      case 'gone':
        this.#gone = true;
        // Should the exit status never have come, the stop must not wait for it.
        if (!this.#exit) this.#resolveExit({ code: null, signal: 'SIGKILL' });
        this.#resolveGone();
        break;
      case 'fencing':
        this.onFencing?.(m.why);
        break;
    }
    const matched = this.#waiters.filter((w) => w.want === m.t);
    if (matched.length) {
      const resolvers = new Set(matched.map((w) => w.resolve));
      this.#waiters = this.#waiters.filter((w) => !resolvers.has(w.resolve));
      for (const r of resolvers) r(m);
    }
  }

  /** The watchdog died (someone killed it): kill the tree ourselves and confirm. */
  async #onWatchdogExit(): Promise<void> {
    if (!this.#pid || this.#gone) return;
    while (treeMembers(this.#pid).length > 0) {
      signalTree(this.#pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 10));
    }
    if (!this.#exit) this.#resolveExit({ code: null, signal: 'SIGKILL' });
    this.#gone = true;
    this.#resolveGone();
  }
}
