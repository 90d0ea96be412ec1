/**
 * The decisions of one run, as a state machine: `handle(event, now)` moves the phase and
 * returns the effects to carry out. It does no I/O and keeps no timers; run.ts feeds it
 * events and carries out its effects, and tests drive it with a table.
 *
 *   campaigning ──leading──▶ holding ─▶ routing ─▶ spawning ──spawned──▶ running
 *        │                      │          │           │                    │
 *     leaving ◀─(stop, fatal,  └──────────┴───────────┤ (stop, lost,       │ child exit, stop: stopping
 *        │      wait-timeout)   (no tree yet)          │  watchdog failed)  │ lost, watchdog: fencing
 *        ▼                            │                ▼                    ▼
 *      done ◀── releasing ◀───────────┘        stopping / fencing ──tree-gone──▶ [min-hold ──▶] releasing
 *
 * The order "the tree is confirmed gone, then the Lease is released, then we exit" is the
 * structure, as consul lock's RELEASE label makes it: `release` is asked for only from
 * `#release`, which is reached only from a phase that never had a tree or on `tree-gone`.
 */

import { formatDuration } from '../core/duration.ts';
import { ExitStatus, signalNumber, statusOfChild } from '../core/exit-status.ts';
import type { Level, LogEvent } from '../core/log.ts';
import { elapsedMs, type Instant } from '../core/time.ts';
import type { Term } from '../election/elector.ts';
import { windowStart } from '../lease/record.ts';
import type { Effect, LastRun, RunEvent } from './events.ts';

export type Phase =
  | 'campaigning'
  /** Stopping campaigning before leading; an acquire in flight may still win. */
  | 'leaving'
  /** Leading, the child waits: the new-Lease hold. */
  | 'holding'
  /** Leading, pointing the Service at this Pod before the child starts. */
  | 'routing'
  /** The spawn is asked for, not yet answered. */
  | 'spawning'
  | 'running'
  /** The child is done and its tree gone; the Lease is kept, renewed, until --min-hold after
   *  it was won, so a slightly late candidate does not run the same tick again. */
  | 'min-hold'
  /** Voluntary: the tree is being stopped while the Lease is still renewed. */
  | 'stopping'
  /** Involuntary: the lease is lost (or the watchdog failed); the tree is being killed. */
  | 'fencing'
  | 'releasing'
  | 'done';

/** Why the run ends; with whether the lease was lost and the watchdog failed, it decides the
 *  exit status (exitStatusFor). */
export type StopCause =
  | { readonly kind: 'child-exit'; readonly status: number }
  /** A stop signal; `childStatus` once the child's end is known (undefined: no child ran). */
  | { readonly kind: 'signal'; readonly signal: NodeJS.Signals; readonly childStatus: number | undefined }
  | { readonly kind: 'lost' }
  /** `leader-run step-down`: a voluntary stop; `childStatus` once the child's end is known. */
  | { readonly kind: 'step-down'; readonly childStatus: number | undefined; readonly stopSignal: NodeJS.Signals }
  | { readonly kind: 'wait-timeout'; readonly status: number }
  /** --once-per: this window's run already succeeded; the skip status. */
  | { readonly kind: 'once-per'; readonly status: number }
  | { readonly kind: 'fatal'; readonly status: number }
  | { readonly kind: 'watchdog-failed' }
  | { readonly kind: 'unkillable' };

/** The README's exit-status table, as one function. */
export function exitStatusFor(cause: StopCause, lost: boolean, watchdogFailed: boolean): number {
  if (cause.kind === 'unkillable') return ExitStatus.software;
  if (lost || cause.kind === 'lost') return ExitStatus.tempfail;
  if (watchdogFailed || cause.kind === 'watchdog-failed') return ExitStatus.software;
  switch (cause.kind) {
    case 'child-exit':
    case 'wait-timeout':
    case 'once-per':
    case 'fatal':
      return cause.status;
    case 'signal':
      return cause.childStatus ?? 128 + signalNumber(cause.signal);
    case 'step-down':
      // A planned handover is a success: unless the child failed on its own account.
      return cause.childStatus === undefined || cause.childStatus === 128 + signalNumber(cause.stopSignal) ? ExitStatus.ok : cause.childStatus;
  }
}

export interface SupervisorConfig {
  readonly renewDeadlineMs: number;
  readonly shutdownGraceMs: number;
  /** --leader-service: point the Service here before the child starts. */
  readonly routing: boolean;
  readonly waitTimeoutMs: number | undefined;
  readonly waitTimeoutExitCode: number;
  /** The command as the user gave it, for the log. */
  readonly commandText: string;
  /** --stop-signal: sent to the child on every stop; undefined: the stop signal received. */
  readonly stopSignal?: NodeJS.Signals | undefined;
  /** --min-hold: after the child exits by itself, keep the Lease until this long after it was won. */
  readonly minHoldMs?: number | undefined;
  /** --once-per: a child that exits 0 by itself is recorded in the release; a term won in a
   *  window whose run is recorded skips, with the wait-timeout status. */
  readonly oncePerMs?: number | undefined;
}

const TREE_PHASES: ReadonlySet<Phase> = new Set(['spawning', 'running', 'stopping', 'fencing']);
const STEP_DOWN_PHASES: ReadonlySet<Phase> = new Set(['holding', 'routing', 'spawning', 'running']);

export class Supervisor {
  readonly #cfg: SupervisorConfig;
  #phase: Phase = 'campaigning';
  #cause: StopCause | null = null;
  #lost = false;
  #watchdogFailed = false;
  #term: Term | null = null;
  #anchor: Instant | null = null;
  /** When this term's Lease was won (the anchor of the winning write). */
  #wonAt: Instant | null = null;
  /** When the child exited (wall clock), for --once-per's record. */
  #childEndedAt: number | null = null;
  #recordAsked = false;
  /** step-down --to: the identity the release hands the Lease to. */
  #handoverTo: string | undefined;
  #stopSignalled = false;
  /** When the tree was asked to stop, and how (for child-gone / child-fenced). */
  #stopAsked: { at: number; fenced: boolean } | null = null;
  /** Ctrl-C presses during a stop: the third kills at once, as docker compose does. */
  #interrupts = 0;
  #effects: Effect[] = [];

  constructor(cfg: SupervisorConfig) {
    this.#cfg = cfg;
  }

  get phase(): Phase {
    return this.#phase;
  }
  /** A stop sequence has begun: /readyz says so. */
  get stopping(): boolean {
    return this.#cause !== null || this.#lost || this.#phase === 'done';
  }
  /** Whether a child's tree may exist now (spawn asked for, and not confirmed gone). */
  get hasTree(): boolean {
    return TREE_PHASES.has(this.#phase);
  }

  handle(e: RunEvent, now: Instant): Effect[] {
    this.#effects = [];
    this.#on(e, now);
    return this.#effects;
  }

  #on(e: RunEvent, now: Instant): void {
    const p = this.#phase;
    if (p === 'done') return;
    switch (e.type) {
      case 'renewed':
        this.#anchor = e.anchor;
        return;
      case 'forward-signal':
        if (this.hasTree) this.#do({ type: 'forward', signal: e.signal, to: 'forward-target' });
        return;
      case 'stop-signal':
        return this.#onStopSignal(e.signal, now);
      case 'step-down':
        return this.#onStepDown(e.to, now);
      case 'leading':
        this.#term = e.term;
        this.#anchor = e.anchor;
        this.#wonAt = e.anchor;
        if (p !== 'campaigning') return; // won while leaving: campaign-stopped says so
        if (this.#doneThisWindow(e.lastSuccess, e.anchor)) return;
        if (e.term.holdMs > 0) {
          this.#phase = 'holding';
          this.#log(
            'info',
            'new-lease-hold',
            `the Lease is new, or was freed by no release: holding it ${formatDuration(e.term.holdMs)} before starting the child, in case a leader of the Lease it replaced has not noticed yet`,
            { holdMs: e.term.holdMs },
          );
          this.#do({ type: 'start-hold', ms: Math.max(0, e.anchor.mono + e.term.holdMs - now.mono) });
          return;
        }
        return this.#afterHold(now);
      case 'hold-elapsed':
        if (p === 'holding') this.#afterHold(now);
        return;
      case 'min-hold-elapsed':
        if (p === 'min-hold') this.#release();
        return;
      case 'routed':
        if (p === 'routing') this.#spawn(now);
        return;
      case 'routing-failed':
        if (p !== 'routing') return;
        this.#log('error', e.fatal.event, e.fatal.message);
        return this.#end({ kind: 'fatal', status: e.fatal.status });
      case 'spawned':
        if (p === 'spawning') {
          this.#phase = 'running';
          this.#log('info', 'child-started', `child started: ${this.#cfg.commandText}`, { pid: e.pid });
        }
        return;
      case 'spawn-failed':
        if (!this.hasTree) return;
        if (e.status === ExitStatus.tempfail) {
          // The watchdog refused: by its clocks, the lease had expired.
          this.#lost = true;
          this.#log('warn', 'stopped-leading', `not starting the child: ${e.message}`, { reason: 'renew-deadline' });
        } else if (this.#phase === 'spawning') this.#log('error', 'child-failed', e.message);
        this.#cause ??= e.status === ExitStatus.tempfail ? { kind: 'lost' } : { kind: 'fatal', status: e.status };
        return this.#release();
      case 'child-exited':
        return this.#onChildExit(statusOfChild(e.exit), e.exit, now);
      case 'tree-gone':
        if (p !== 'stopping' && p !== 'fencing') return;
        return this.#onTreeGone(e.unkillable, now);
      case 'lost':
        return this.#onLost(e.reason, e.detail, now);
      case 'watchdog-deadline':
        if (!this.hasTree) return;
        this.#log('warn', 'watchdog-fence', 'the watchdog reached the lease deadline and is stopping the child');
        if (this.#lost) return;
        this.#lost = true;
        if (p === 'running' || p === 'spawning' || p === 'stopping') this.#fence(now);
        return;
      case 'watchdog-failed':
        return this.#onWatchdogFailed(e.why, now);
      case 'fatal':
        if (p !== 'campaigning') return;
        this.#log('error', e.fatal.event, e.fatal.message);
        return this.#leave({ kind: 'fatal', status: e.fatal.status });
      case 'wait-timeout':
        if (p !== 'campaigning') return;
        // Trying once (cron): a skip is expected, and says nothing under -q.
        if (this.#cfg.waitTimeoutMs === 0)
          this.#log('info', 'wait-timeout', `the Lease is held by ${e.holder ?? 'another candidate'}: not waiting (--wait-timeout 0)`, { holder: e.holder });
        else this.#log('warn', 'wait-timeout', `not leading after ${formatDuration(this.#cfg.waitTimeoutMs ?? 0)} (--wait-timeout): giving up`);
        return this.#leave({ kind: 'wait-timeout', status: this.#cfg.waitTimeoutExitCode });
      case 'campaign-stopped':
        if (p !== 'leaving') return;
        if (e.releasedLost) this.#log('info', 'released', 'released the Lease (a write of ours whose answer was lost had landed)');
        // An acquire in flight won meanwhile: no child ran, so give it back at once.
        if (e.leading) return this.#release();
        return this.#exit();
      case 'released':
        if (p !== 'releasing') return;
        if (e.released)
          this.#log(
            'info',
            'released',
            `${e.handedTo ? `handed the Lease to ${e.handedTo}` : 'released the Lease'}${e.recorded ? ", recording this window's run as done (--once-per)" : ''}`,
            e.handedTo ? { to: e.handedTo } : undefined,
          );
        else if (this.#recordAsked)
          this.#log(
            'warn',
            'released',
            'could not release the Lease, so this run is not recorded (--once-per): another candidate may run this window again once it expires',
          );
        return this.#exit();
    }
  }

  // ---- leading, up to the child ------------------------------------------------------

  /** --once-per: whether the window of the winning write already has a successful run; if
   *  so, the term ends here — no child, the Lease given back at once. */
  #doneThisWindow(last: LastRun | undefined, anchor: Instant): boolean {
    const windowMs = this.#cfg.oncePerMs;
    if (!windowMs || !last) return false;
    const start = windowStart(anchor.wall, windowMs);
    if (windowStart(last.startedWall, windowMs) !== start) return false;
    // A skip is expected (cron): info, so -q says nothing.
    this.#log(
      'info',
      'once-per-skip',
      `this window's run already succeeded (${last.holder}, won ${new Date(last.startedWall).toISOString()}): not running until ${new Date(start + windowMs).toISOString()} (--once-per ${formatDuration(windowMs)})`,
      { holder: last.holder, nextWindow: new Date(start + windowMs).toISOString() },
    );
    this.#cause = { kind: 'once-per', status: this.#cfg.waitTimeoutExitCode };
    this.#release();
    return true;
  }

  #afterHold(now: Instant): void {
    if (this.#cfg.routing) {
      this.#phase = 'routing';
      this.#do({ type: 'route-here' });
      return;
    }
    this.#spawn(now);
  }

  /** Spawns only with time left on the lease — the time left, not a state flag: a process
   *  frozen through the hold wakes with the hold's timer due before the elector's guard. */
  #spawn(now: Instant): void {
    if (!this.#term || !this.#anchor) return;
    const left = this.#cfg.renewDeadlineMs - elapsedMs(this.#anchor, now);
    if (left <= 0) {
      this.#lost = true;
      this.#log('warn', 'stopped-leading', `lost leadership: no successful renewal for ${Math.round(elapsedMs(this.#anchor, now))}ms; not starting the child`, {
        reason: 'renew-deadline',
      });
      this.#cause = { kind: 'lost' };
      return this.#release();
    }
    this.#phase = 'spawning';
    this.#do({ type: 'spawn', term: this.#term, anchor: this.#anchor });
  }

  // ---- ending ------------------------------------------------------------------------

  #onStopSignal(signal: NodeJS.Signals, now: Instant): void {
    const p = this.#phase;
    if (p === 'min-hold') {
      // The child is done: a stop only cuts the hold short; the child's status stands.
      this.#log('info', 'signal', `received ${signal}: releasing the Lease before --min-hold ends`, { signal });
      return this.#release();
    }
    if (this.#cause || this.#lost || p === 'leaving' || p === 'releasing') {
      this.#stopSignalled = true; // a stop asked for while the tree goes: no --min-hold after
      if (!this.hasTree) return;
      if (signal === 'SIGINT' && ++this.#interrupts >= 2) {
        // The third Ctrl-C (the first began the stop): no more grace.
        this.#log('warn', 'child-killed', 'interrupted three times: killing the child now');
        this.#do({ type: 'stop-tree', signal: 'SIGKILL', graceMs: 0 });
        return;
      }
      // Asked again while stopping: pass it on, the child may want it.
      this.#do({ type: 'forward', signal, to: 'session' });
      return;
    }
    this.#log('info', 'signal', `received ${signal}: stopping`, { signal });
    const cause: StopCause = { kind: 'signal', signal, childStatus: undefined };
    if (p === 'campaigning') return this.#leave(cause);
    this.#end(cause, signal, now);
  }

  /** Whether a step-down would be acted on now (POST /step-down answers by it). */
  get canStepDown(): boolean {
    return this.#phase === 'min-hold' || (!this.#cause && !this.#lost && STEP_DOWN_PHASES.has(this.#phase));
  }

  #onStepDown(to: string | undefined, now: Instant): void {
    if (!this.canStepDown) return;
    this.#handoverTo = to;
    const then = to ? `handing the Lease to ${to}` : 'releasing the Lease';
    if (this.#phase === 'min-hold') {
      // The child is done: the hold ends early; the child's status stands.
      this.#log('info', 'step-down', `asked to step down: ${then} before --min-hold ends`, { to });
      return this.#release();
    }
    this.#log('info', 'step-down', `asked to step down: stopping the child, then ${then}`, { to });
    const stopSignal = this.#cfg.stopSignal ?? 'SIGTERM';
    this.#cause = { kind: 'step-down', childStatus: undefined, stopSignal };
    this.#end(this.#cause, stopSignal, now);
  }

  #onChildExit(status: number, exit: { code: number | null; signal: NodeJS.Signals | null }, now: Instant): void {
    const p = this.#phase;
    this.#childEndedAt = now.wall;
    if (this.#cause?.kind === 'signal' || this.#cause?.kind === 'step-down') this.#cause = { ...this.#cause, childStatus: status };
    if (p !== 'running') return; // stopping or fencing: the tree is going anyway
    const how = exit.code !== null ? `status ${exit.code}` : `signal ${exit.signal}`;
    this.#log(status === 0 ? 'info' : 'warn', 'child-exited', `child exited by itself (${how})`, {
      code: exit.code ?? undefined,
      signal: exit.signal ?? undefined,
      status,
    });
    this.#end({ kind: 'child-exit', status }, 'SIGTERM', now);
  }

  #onLost(reason: string, detail: string, now: Instant): void {
    const p = this.#phase;
    if (p === 'min-hold') {
      // Nothing runs any more: the child's status stands, but another may now run the tick.
      this.#log('warn', 'stopped-leading', `lost leadership during --min-hold: ${detail}; the child had finished`, { reason });
      return this.#release();
    }
    const known = this.#lost; // the watchdog's deadline may have said so first
    this.#lost = true;
    if (p === 'leaving' || p === 'releasing' || p === 'campaigning') return;
    this.#log('warn', 'stopped-leading', `lost leadership: ${detail}; stopping the child`, { reason });
    this.#cause ??= { kind: 'lost' };
    if (p === 'holding' || p === 'routing') return this.#release();
    // A voluntary stop under way now has only the fence grace left.
    if (!known || p !== 'fencing') this.#fence(now);
  }

  #onWatchdogFailed(why: string, now: Instant): void {
    if (this.#watchdogFailed) return;
    this.#watchdogFailed = true;
    this.#log('error', 'watchdog-failed', `the watchdog process failed: ${why}; stopping`);
    const p = this.#phase;
    if (p === 'campaigning') return this.#leave({ kind: 'watchdog-failed' });
    this.#cause ??= { kind: 'watchdog-failed' };
    if (p === 'holding' || p === 'routing') return this.#release();
    // The watchdog handle kills the tree itself; the fence waits for it to be gone.
    if (p === 'spawning' || p === 'running') this.#fence(now);
  }

  /** Ends the term from a phase that may have a tree: stop it first (voluntary) or, if
   *  there is none yet, release. */
  #end(cause: StopCause, signal: NodeJS.Signals = 'SIGTERM', now?: Instant): void {
    this.#cause ??= cause;
    const p = this.#phase;
    if (p === 'spawning' || p === 'running') {
      this.#phase = 'stopping';
      this.#stopAsked = { at: now?.mono ?? 0, fenced: false };
      this.#do({ type: 'stop-tree', signal: this.#cfg.stopSignal ?? signal, graceMs: this.#cfg.shutdownGraceMs });
      return;
    }
    this.#release();
  }

  #fence(now: Instant): void {
    this.#phase = 'fencing';
    this.#stopAsked = { at: this.#stopAsked?.at ?? now.mono, fenced: true };
    this.#do({ type: 'fence' });
  }

  /** Before leading: stop campaigning; an acquire in flight may still win (campaign-stopped). */
  #leave(cause: StopCause): void {
    this.#cause ??= cause;
    this.#phase = 'leaving';
    this.#do({ type: 'stop-campaigning' });
  }

  #onTreeGone(unkillable: readonly number[], now: Instant): void {
    const asked = this.#stopAsked;
    const ms = asked ? Math.round(now.mono - asked.at) : 0;
    if (unkillable.length > 0) {
      this.#log(
        'error',
        'unkillable',
        `processes ${unkillable.join(', ')} of the child's tree refuse SIGKILL (EPERM: they became another user through a setuid program); ` +
          `not releasing the Lease: it expires on its own. Run leader-run as that user, or as root`,
        { pids: [...unkillable] },
      );
      this.#cause = { kind: 'unkillable' };
      this.#do({ type: 'abandon' });
      return this.#exit();
    }
    if (asked?.fenced) this.#log('info', 'child-fenced', `child tree fenced in ${ms}ms`, { ms });
    else this.#log('info', 'child-gone', `child tree gone after ${ms}ms`, { ms });
    const minHold = this.#cfg.minHoldMs ?? 0;
    const holdLeft = Math.ceil(this.#wonAt ? minHold - elapsedMs(this.#wonAt, now) : 0);
    if (this.#cause?.kind === 'child-exit' && !this.#stopSignalled && !this.#lost && !this.#watchdogFailed && holdLeft > 0) {
      this.#phase = 'min-hold';
      this.#log('info', 'min-hold', `keeping the Lease until --min-hold ${formatDuration(minHold)} after it was won (${formatDuration(holdLeft)} more)`, {
        ms: holdLeft,
      });
      this.#do({ type: 'start-min-hold', ms: holdLeft });
      return;
    }
    this.#release();
  }

  /** The only way to a release: reached from a phase that never had a tree, or on tree-gone. */
  #release(): void {
    this.#phase = 'releasing';
    const c = this.#cause;
    const succeeded = c?.kind === 'child-exit' && c.status === 0 && !this.#lost && !this.#watchdogFailed;
    const ended = this.#childEndedAt;
    const record =
      this.#cfg.oncePerMs && succeeded && this.#wonAt && this.#term && ended !== null
        ? { startedWall: this.#wonAt.wall, finishedWall: ended, fencingToken: this.#term.fencingToken }
        : undefined;
    this.#recordAsked = !!record;
    const handoverTo = this.#lost || this.#watchdogFailed ? undefined : this.#handoverTo;
    this.#do({ type: 'release', ...(record && { record }), ...(handoverTo && { handoverTo }) });
  }

  #exit(): void {
    this.#phase = 'done';
    const cause = this.#cause ?? { kind: 'fatal', status: ExitStatus.software };
    // Says why, so that a child's own 75 can be told from a lost Lease.
    const why = cause.kind === 'unkillable' ? cause.kind : this.#lost ? 'lost' : this.#watchdogFailed ? 'watchdog-failed' : cause.kind;
    this.#do({ type: 'exit', status: exitStatusFor(cause, this.#lost, this.#watchdogFailed), cause: why });
  }

  #do(effect: Effect): void {
    this.#effects.push(effect);
  }

  #log(level: Level, event: LogEvent, message: string, fields?: Record<string, unknown>): void {
    this.#effects.push(fields ? { type: 'log', level, event, message, fields } : { type: 'log', level, event, message });
  }
}
