// Candidates of both implementations behind one interface, so every scenario runs the
// same way for leader-run and for the client-go peer.
//
// "Leading" is what the user gets out of an election: for leader-run the moment its child
// is running — stamped by the child itself, as its first act — and for client-go the
// OnStartedLeading callback (the peer's own wall-clock stamp).
import fs from 'node:fs';
import path from 'node:path';
import { LeaderPeer } from '../test/control-plane/cluster.ts';
import { LeaderRun } from '../test/support/leader-run.ts';
import type { ConnCounter } from './conn-counter.ts';
import { watchdogOf } from './procs.ts';

export type Impl = 'leader-run' | 'client-go';

export interface Timing {
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
  leaseDurationMs: number;
}

export interface Slot {
  /** A place for one candidate at a time; a restarted candidate takes its predecessor's slot. */
  name: string;
  kubeconfig: string;
  /** FlowSchema group its requests are counted under (see api-metrics.ts). */
  group: string;
  counter?: ConnCounter;
}

// bash's $EPOCHREALTIME costs no fork, so the stamp is the child's first act; sleep then
// dies at once on the SIGTERM of a graceful stop.
const CHILD = 'echo "$LEADER_RUN_IDENTITY $EPOCHREALTIME" >> "$0"; exec sleep 1000000';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Member {
  readonly impl: Impl;
  readonly id: string;
  readonly slot: Slot;
  /** Wall ms just before the process was spawned. */
  readonly spawnedAt: number;
  readonly exited: Promise<void>;
  exitedAt: number | undefined;
  readonly #lr: LeaderRun | undefined;
  readonly #peer: LeaderPeer | undefined;
  #watchdog: number | undefined;

  constructor(impl: Impl, id: string, slot: Slot, spawnedAt: number, proc: LeaderRun | LeaderPeer) {
    this.impl = impl;
    this.id = id;
    this.slot = slot;
    this.spawnedAt = spawnedAt;
    if (proc instanceof LeaderRun) this.#lr = proc;
    else this.#peer = proc;
    this.exited = proc.exited.then(() => void (this.exitedAt = Date.now()));
  }

  get pid(): number {
    return (this.#lr ? this.#lr.pid : this.#peer!.proc.pid) ?? 0;
  }

  get done(): boolean {
    return this.exitedAt !== undefined;
  }

  /** leader-run's watchdog process (forked before campaigning), if any. */
  get watchdogPid(): number | undefined {
    if (this.#lr && this.#watchdog === undefined && !this.done) this.#watchdog = watchdogOf(this.pid);
    return this.#watchdog;
  }

  /** Wall ms of this member's first `event` (leader-run: log time, ms resolution; client-go: its stamp). */
  eventAt(event: string): number | undefined {
    if (this.#lr) {
      const r = this.#lr.records.find((x) => x.event === event);
      return r ? Date.parse(r.time) : undefined;
    }
    return this.#peer!.events.find((e) => e.event === event)?.ms;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.#lr) this.#lr.signal(signal);
    else this.#peer!.kill(signal);
  }

  /** The last lines of its log, for error messages. */
  tail(): string {
    return this.#lr ? this.#lr.stderrLines.slice(-8).join('\n') : `${JSON.stringify(this.#peer!.events.slice(-5))}\n${this.#peer!.stderr.slice(-800)}`;
  }
}

export interface GroupContext {
  binDir: string;
  dir: string;
  timing: Timing;
  leaderRunBin?: string;
}

/** Candidates of one implementation on one Lease. */
export class Group {
  readonly impl: Impl;
  readonly lease: string;
  readonly slots: Slot[];
  readonly members: Member[] = [];
  readonly stampFile: string;
  readonly #ctx: GroupContext;
  #seq = 0;
  #stamps = new Map<string, number>();
  #stampBytes = 0;

  constructor(ctx: GroupContext, impl: Impl, lease: string, slots: Slot[]) {
    this.#ctx = ctx;
    this.impl = impl;
    this.lease = lease;
    this.slots = slots;
    this.stampFile = path.join(ctx.dir, `stamps-${lease}.txt`);
  }

  spawn(slot: Slot): Member {
    const t = this.#ctx.timing;
    const id = `${slot.name}.${++this.#seq}`;
    const spawnedAt = Date.now();
    const proc =
      this.impl === 'leader-run'
        ? new LeaderRun([
            '--kubeconfig',
            slot.kubeconfig,
            '--lock-name',
            this.lease,
            '--lock-namespace',
            'default',
            '--id',
            id,
            '--lease-duration',
            t.leaseDuration,
            '--renew-deadline',
            t.renewDeadline,
            '--retry-period',
            t.retryPeriod,
            '--',
            '/bin/bash',
            '-c',
            CHILD,
            this.stampFile,
          ])
        : new LeaderPeer(this.#ctx.binDir, {
            id,
            lockName: this.lease,
            kubeconfig: slot.kubeconfig,
            leaseDuration: t.leaseDuration,
            renewDeadline: t.renewDeadline,
            retryPeriod: t.retryPeriod,
            userAgent: `leader-peer/bench (${slot.name})`,
          });
    const m = new Member(this.impl, id, slot, spawnedAt, proc);
    this.members.push(m);
    return m;
  }

  live(): Member[] {
    return this.members.filter((m) => !m.done);
  }

  /** When `m` began leading (wall ms), if it has. */
  leadingAt(m: Member): number | undefined {
    if (this.impl === 'client-go') return m.eventAt('started-leading');
    this.#readStamps();
    return this.#stamps.get(m.id);
  }

  /** The live member that leads now (client-go: started and not yet stopped leading). */
  leader(): Member | undefined {
    return this.live().find((m) => this.leadingAt(m) !== undefined && m.eventAt('stopped-leading') === undefined);
  }

  /** Polls `fn` every few ms until it gives a value. */
  async until<T>(fn: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = fn();
      if (v !== undefined) return v;
      if (Date.now() > end) {
        const logs = this.live()
          .map((m) => `--- ${m.id}:\n${m.tail()}`)
          .join('\n');
        throw new Error(`${this.impl} on ${this.lease}: no ${what} within ${timeoutMs} ms\n${logs}`);
      }
      await sleep(5);
    }
  }

  /** The first member other than `old` that began leading at or after `since`. */
  nextLeader(old: Member | undefined, since: number, timeoutMs: number): Promise<{ member: Member; at: number }> {
    return this.until(
      () => {
        for (const m of this.members) {
          if (m === old) continue;
          const at = this.leadingAt(m);
          if (at !== undefined && at >= since) return { member: m, at };
        }
        return undefined;
      },
      timeoutMs,
      'new leader',
    );
  }

  /** A leader is running and every other live member has seen the Lease for `settleMs`
   *  (its watch or polling set up, its start-up CPU burst over). */
  async settled(settleMs: number, timeoutMs = 60_000): Promise<Member> {
    const leader = await this.until(() => this.leader(), timeoutMs, 'leader');
    await this.until(
      () => {
        const now = Date.now();
        for (const m of this.live()) {
          if (m === leader) continue;
          const seen = m.eventAt('new-leader');
          if (seen === undefined || now - seen < settleMs) return undefined;
        }
        return true;
      },
      timeoutMs,
      'settled followers',
    );
    return leader;
  }

  /** SIGTERM to every live member; SIGKILL to any still there after `timeoutMs`. */
  async stopAll(timeoutMs = 30_000): Promise<void> {
    const live = this.live();
    for (const m of live) m.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const m of live) m.kill('SIGKILL');
    }, timeoutMs);
    await Promise.all(live.map((m) => m.exited));
    clearTimeout(timer);
  }

  /** Child stamps appended by leader-run children ("identity epoch.micros" per line). */
  #readStamps(): void {
    let text: string;
    try {
      const st = fs.statSync(this.stampFile);
      if (st.size === this.#stampBytes) return;
      text = fs.readFileSync(this.stampFile, 'utf8');
    } catch {
      return;
    }
    // Only whole lines: a child may be writing its line right now.
    const end = text.lastIndexOf('\n') + 1;
    this.#stampBytes = end;
    for (const line of text.slice(0, end).split('\n')) {
      const [id, t] = line.split(' ');
      if (id && t && !this.#stamps.has(id)) this.#stamps.set(id, Number(t) * 1000);
    }
  }
}
