/**
 * leader-run's handle on its watchdog process (watchdog.ts), under which the child runs.
 *
 * Every guard has a guard. The watchdog kills the tree by the lease deadline even when
 * leader-run is frozen or dead; and this process watches the watchdog: it pings it, and
 * when the watchdog dies, stops answering, or has not reported the tree gone shortly after
 * the kill instant of a stop or fence, this process kills the tree itself (and the
 * watchdog) and confirms it gone. signal-exit adds a last resort for any exit path of
 * leader-run. Each term's processes carry a mark in their environment, so a child whose
 * spawn was never answered can still be found.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { onExit } from 'signal-exit';
import type { ProcessEnd } from '../core/exit-status.ts';
import { elapsedMs, type Instant, instantNow } from '../core/time.ts';
import type { FromWatchdog, LeaseDeadlines, StopCause, ToWatchdog } from './protocol.ts';
import { ProcessTree, TERM_MARK } from './tree.ts';

export type SpawnResult = { ok: true; pid: number } | { ok: false; status: number; message: string };

/** The tree is confirmed gone — unless `unkillable` names processes that refused SIGKILL. */
export interface Gone {
  unkillable: number[];
}

export interface WatchdogGuard {
  /** How often to ping the watchdog. */
  readonly pingMs: number;
  /** A ping unanswered for this long: the watchdog is frozen or stuck (R/2). */
  readonly silenceMs: number;
  /** K: how long to confirm a killed tree gone; half of it is the watchdog's to report in. */
  readonly confirmBudgetMs: number;
}

const watchdogPath = new URL(import.meta.url.endsWith('.ts') ? './watchdog.ts' : './watchdog.js', import.meta.url);

export class WatchdogHandle {
  readonly #proc: ChildProcess;
  readonly #guard: WatchdogGuard;
  /** The child joins leader-run's job in a terminal (session and process group). */
  readonly #inJob: boolean;
  #childPid = 0;
  /** The term's mark, as it stands in the child's environment. */
  readonly #mark = `${TERM_MARK}=${randomBytes(12).toString('hex')}`;
  #tree: ProcessTree | null = null;
  /** The child's start, once the watchdog has said (see ProcessTree). */
  #since: number | undefined;
  #exit: ProcessEnd | null = null;
  #gone: Gone | null = null;
  #spawning: ((r: SpawnResult) => void) | null = null;
  #spawned = false;
  #closing = false;
  /** Why the watchdog failed, once it has. */
  #failure: string | null = null;
  /** When the oldest ping not yet answered was sent (performance.now()), or null. */
  #unanswered: number | null = null;
  #pinger: NodeJS.Timeout | null = null;
  #anchor: Instant | null = null;
  #deadlines: LeaseDeadlines | null = null;
  /** The kill instant (monotonic) of a stop or fence under way, before the lease deadline. */
  #imposedKillAt = Infinity;
  #backstop: NodeJS.Timeout | null = null;
  #waiters: Array<{ want: FromWatchdog['t']; resolve: (m: FromWatchdog) => void }> = [];
  /** What was sent before the watchdog was ready (it would not have heard it); null once ready. */
  #queue: ToWatchdog[] | null = [];
  readonly exited: Promise<ProcessEnd>;
  readonly gone: Promise<Gone>;
  #resolveExit!: (e: ProcessEnd) => void;
  #resolveGone!: (g: Gone) => void;
  /** Called when the watchdog starts stopping the tree, with why ('deadline': by its own
   *  clock the lease was lost — leader-run is late). */
  onStopping: ((cause: StopCause) => void) | null = null;
  /** Called when the grace or the deadline ran out and SIGKILL goes to the tree. */
  onKilling: (() => void) | null = null;
  /** Called once if the watchdog dies or stops answering; the tree, if any, is then killed
   *  by this process. Called before `exited` and `gone` resolve. */
  set onFailed(fn: ((why: string) => void) | null) {
    this.#onFailed = fn;
    // It may have failed while leader-run was still loading its client: say so now.
    const failure = this.#failure;
    if (fn && failure) queueMicrotask(() => fn(failure));
  }
  #onFailed: ((why: string) => void) | null = null;

  private constructor(proc: ChildProcess, guard: WatchdogGuard, inJob: boolean) {
    this.#proc = proc;
    this.#guard = guard;
    this.#inJob = inJob;
    this.exited = new Promise((r) => (this.#resolveExit = r));
    this.gone = new Promise((r) => (this.#resolveGone = r));
    proc.on('message', (m: FromWatchdog) => this.#onMessage(m));
    proc.on('exit', (code, signal) => void this.#onWatchdogExit(signal ?? `status ${code}`));
    // Whatever way leader-run exits, a child it started must not survive it.
    onExit(() => {
      if (!this.#gone) this.#markedTree()?.signal('SIGKILL');
    });
  }

  /**
   * Forks the watchdog and returns at once: leader-run loads its client and campaigns while
   * the watchdog starts. What is sent meanwhile (a spawn, then perhaps a stop) waits in
   * order until it is ready. A watchdog that exits or is not ready within `startMs` fails
   * (onFailed), and a spawn waiting for it ends as the watchdog failing.
   *
   * `inJob` (in a terminal): the watchdog and the child stay in leader-run's session and
   * process group, so the child has the terminal and Ctrl-Z stops it with leader-run; else
   * the watchdog and the child each lead a session of their own.
   */
  static start(guard: WatchdogGuard, startMs: number, { inJob = false } = {}): WatchdogHandle {
    const proc = fork(watchdogPath, [], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
      detached: !inJob,
      serialization: 'json',
      execArgv: [],
    });
    const c = new WatchdogHandle(proc, guard, inJob);
    const late = setTimeout(() => c.#fail(`it was not ready within ${startMs}ms of its start`), startMs);
    late.unref();
    void c.#next('ready').then(() => {
      clearTimeout(late);
      // In the order they were sent: a stop that followed a spawn still follows it.
      const queued = c.#queue ?? [];
      c.#queue = null;
      for (const m of queued) c.#send(m);
      c.#startPinging();
    });
    return c;
  }

  get pid(): number {
    return this.#tree ? this.#childPid : 0;
  }
  get watchdogPid(): number {
    return this.#proc.pid ?? 0;
  }
  /** Why the watchdog failed, or null. */
  get failure(): string | null {
    return this.#failure;
  }

  async spawn(
    file: string,
    args: string[],
    env: Record<string, string>,
    anchor: Instant,
    deadlines: LeaseDeadlines,
    fenceSignal: NodeJS.Signals,
  ): Promise<SpawnResult> {
    if (this.#failure) return this.#noWatchdog();
    this.#anchor = anchor;
    this.#deadlines = deadlines;
    this.#spawned = true;
    const [k, v] = this.#mark.split('=') as [string, string];
    const answer = new Promise<SpawnResult>((resolve) => (this.#spawning = resolve));
    this.#send({ t: 'spawn', file, args, env: { ...env, [k]: v }, anchor, deadlines, fenceSignal, inJob: this.#inJob });
    return answer;
  }

  /** The child may run: call once child-started is logged (the watchdog's gate holds it until then). */
  go(): void {
    this.#send({ t: 'go' });
  }

  /** A renewal succeeded: the lease is now anchored at `anchor`. */
  renewAnchor(anchor: Instant): void {
    this.#anchor = anchor;
    this.#send({ t: 'anchor', anchor });
    if (this.#imposedKillAt < Infinity) this.#armBackstop();
  }

  forward(signal: NodeJS.Signals, target: 'child' | 'group' | 'session'): void {
    this.#send({ t: 'signal', signal, target });
  }

  /** Voluntary stop; resolves once the whole tree is confirmed gone (at once if none ran). */
  stop(signal: NodeJS.Signals, graceMs: number): Promise<Gone> {
    this.#send({ t: 'stop', signal, graceMs });
    return this.#ending(graceMs);
  }

  /** Involuntary stop; resolves once the whole tree is confirmed gone (at once if none ran). */
  fence(): Promise<Gone> {
    this.#send({ t: 'fence' });
    return this.#ending(this.#deadlines?.fenceGraceMs ?? 0);
  }

  /** Lets the watchdog exit (it does once its channel closes and no child is left). */
  disconnect(): void {
    this.#closing = true;
    if (this.#pinger) clearInterval(this.#pinger);
    if (this.#backstop) clearTimeout(this.#backstop);
    if (this.#proc.connected) this.#proc.disconnect();
  }

  #ending(graceMs: number): Promise<Gone> {
    if (!this.#spawned) this.#confirmGone({ unkillable: [] });
    else if (!this.#gone) {
      this.#imposedKillAt = Math.min(this.#imposedKillAt, instantNow().mono + graceMs);
      this.#armBackstop();
    }
    return this.gone;
  }

  /** Our own kill instant: the stop's or fence's, never later than the lease deadline. At it
   *  we SIGKILL the tree too (harmless if the watchdog does the same); if the watchdog has
   *  not reported the tree gone half the confirm budget later, it has failed. */
  #armBackstop(): void {
    if (this.#backstop) clearTimeout(this.#backstop);
    if (this.#gone) return;
    const t = instantNow();
    let killAt = this.#imposedKillAt;
    if (this.#anchor && this.#deadlines) killAt = Math.min(killAt, t.mono + this.#deadlines.killAfterMs - elapsedMs(this.#anchor, t));
    this.#backstop = setTimeout(
      () => {
        const tree = this.#markedTree();
        if (tree && tree.running().length > 0) this.#killing();
        tree?.signal('SIGKILL');
        this.#backstop = setTimeout(() => {
          if (!this.#gone) this.#fail(`it did not report the child's tree gone ${this.#guard.confirmBudgetMs / 2}ms after the kill deadline`);
        }, this.#guard.confirmBudgetMs / 2);
      },
      Math.max(0, killAt - t.mono),
    );
  }

  #startPinging(): void {
    this.#pinger = setInterval(() => {
      this.#unanswered ??= performance.now();
      this.#send({ t: 'ping' });
      // Judged after this turn's I/O, so that answers waiting in the channel (this process
      // may itself have been stalled) are read first; and only pings we sent count.
      setImmediate(() => {
        const silent = this.#unanswered === null ? 0 : performance.now() - this.#unanswered;
        if (silent >= this.#guard.silenceMs) this.#fail(`it has not answered a ping for ${Math.round(silent)}ms`);
      });
    }, this.#guard.pingMs);
    this.#pinger.unref();
  }

  /** The watchdog is frozen, stuck or late: kill it; its exit does the rest. */
  #fail(why: string): void {
    if (this.#failure || this.#closing) return;
    this.#failure = why;
    this.#onFailed?.(why);
    this.#proc.kill('SIGKILL');
  }

  #send(m: ToWatchdog): void {
    if (this.#queue) this.#queue.push(m);
    else if (this.#proc.connected) this.#proc.send(m);
  }

  #next(want: FromWatchdog['t']): Promise<FromWatchdog> {
    return new Promise((resolve) => this.#waiters.push({ want, resolve }));
  }

  #onMessage(m: FromWatchdog): void {
    switch (m.t) {
      case 'pong':
        this.#unanswered = null;
        break;
      case 'spawned':
        this.#childPid = m.pid;
        // In a terminal's job the session is the terminal's, not the tree's: the mark finds it.
        this.#since = m.since;
        this.#tree = new ProcessTree(this.#inJob ? null : m.pid, this.#mark, { job: m.job, since: m.since });
        this.#spawning?.({ ok: true, pid: m.pid });
        this.#spawning = null;
        break;
      case 'exit':
        this.#exit = { code: m.code, signal: m.signal };
        this.#resolveExit(this.#exit);
        break;
      case 'spawn-failed':
        this.#spawning?.({ ok: false, status: m.status, message: m.message });
        this.#spawning = null;
        this.#spawned = false;
        // Nothing ran: a stop that was waiting for this child ends with the spawn's status.
        this.#resolveExit({ code: m.status, signal: null });
        this.#confirmGone({ unkillable: [] });
        break;
      case 'gone':
        // Should the exit status never have come, the stop must not wait for it.
        if (!this.#exit) this.#resolveExit({ code: null, signal: 'SIGKILL' });
        this.#confirmGone({ unkillable: m.unkillable });
        break;
      case 'stopping':
        this.onStopping?.(m.cause);
        break;
      case 'killing':
        this.#killing();
        break;
    }
    const matched = this.#waiters.filter((w) => w.want === m.t);
    this.#waiters = this.#waiters.filter((w) => w.want !== m.t);
    for (const w of matched) w.resolve(m);
  }

  #killed = false;
  /** SIGKILL goes to the tree (the grace or the deadline ran out): said once, by whichever
   *  of the two processes gets there first. */
  #killing(): void {
    if (this.#killed) return;
    this.#killed = true;
    this.onKilling?.();
  }

  #confirmGone(g: Gone): void {
    if (this.#gone) return;
    this.#gone = g;
    if (this.#backstop) clearTimeout(this.#backstop);
    this.#tree = null; // its pid may be reused from now on
    this.#resolveGone(g);
  }

  /** The tree as far as we know it: the child's session, or — while a spawn is unanswered —
   *  just the processes that carry the term's mark. */
  #markedTree(): ProcessTree | null {
    if (this.#tree) return this.#tree;
    return this.#spawned ? new ProcessTree(null, this.#mark, { since: this.#since }) : null;
  }

  /** The watchdog died (killed, crashed, or killed by us): kill the tree ourselves and confirm. */
  async #onWatchdogExit(how: string): Promise<void> {
    if (this.#pinger) clearInterval(this.#pinger);
    if (this.#gone || this.#closing) return;
    if (!this.#failure) {
      this.#failure = `it exited (${how})`;
      this.#onFailed?.(this.#failure);
    }
    const tree = this.#markedTree();
    const { unkillable } = tree ? await tree.kill(this.#guard.confirmBudgetMs) : { unkillable: [] };
    if (this.#spawning) {
      this.#spawning(this.#noWatchdog());
      this.#spawning = null;
    }
    if (!this.#exit) this.#resolveExit({ code: null, signal: 'SIGKILL' });
    this.#confirmGone({ unkillable });
  }

  #noWatchdog(): SpawnResult {
    return { ok: false, status: 70, message: `the watchdog process failed: ${this.#failure ?? 'gone'}` };
  }
}
