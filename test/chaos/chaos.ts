/**
 * The chaos run: N leader-run candidates (with two timing sets and three kinds of child) and
 * a client-go peer on one Lease of a private cluster, each behind its own FaultProxy, each
 * running the ledger worker (the peer: writing the ledger itself) while it leads. Every round waits for one
 * leader with a running child, injects one fault drawn from a seeded stream, and waits for
 * the next leader's child to start (or for the leader to ride the fault out). Candidates
 * that exit are restarted, as a supervisor would. At the end everything is stopped
 * gracefully and the run checks what must be true afterwards: no process of ours left, the
 * Lease free. Safety itself is read from the ledger: no two children's lives may intersect.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { STEP_DOWN_ANNOTATION, stepDownValue } from '../../src/lease/record.ts';
import type { Cluster, ClusterInfo, PeerEvent } from '../support/cluster.ts';
import { apiRequest, FaultProxy, LeaderPeer, startCluster, target, writeKubeconfig } from '../support/cluster.ts';
import { BIN, FAST, LeaderRun, type LogRecord, workerCmd } from '../support/leader-run.ts';
import { nativeFixture } from '../support/native.ts';
import { childrenOf, cmdline, type KnownProcess, known, monoNow, parentOf, signalKnown, stillAlive } from '../support/procs.ts';
import { formatLeaseEvent, LeaseWatch } from './lease-watch.ts';
import { LedgerTail, type Life, type Overlap } from './ledger.ts';
import { Rng } from './rng.ts';

// FAST is D=4s R=2s P=500ms G=500ms; the chaos reasons with the same numbers. One slot in
// three runs LONG instead, and the peer runs LONG's D, R and P: followers must honour the
// longer lease of whoever leads, and a recreated Lease the longer lease of its old holder.
const D_MS = 4000;
const R_MS = 2000;
const G_MS = 500;
const LONG = ['--lease-duration', '6s', '--renew-deadline', '3s', '--retry-period', '1s', '--fence-grace', '500ms'];
const LONG_R_MS = 3000;
/** Voluntary stops (SIGTERM of a leader) must not wait the 30 s default on a grandchild
 *  that ignores SIGTERM. */
const SHUTDOWN_GRACE = '1s';
const LEASE = 'chaos';
const NAMESPACE = 'default';
/** The worker beats every 20 ms; a child silent for longer than this is not running. */
const RUNNING_WITHIN_MS = 250;
const POLL_MS = 20;
/** How long the leader has to be seen leading again after a fault healed for the round to
 *  count as ridden out: past the longest renew deadline and the fence grace, with a margin. */
const SURVIVE_AFTER_MS = LONG_R_MS + G_MS + 1000;
const STUCK_AFTER_MS = 60_000;
const STEADY_TIMEOUT_MS = 90_000;

export const FAULT_KINDS = [
  'sigterm',
  'sigkill',
  'sigstop',
  'blackhole',
  'reset',
  // Requests reach the server, answers never come back: writes land unanswered (F9's fault),
  // on the connection already open (over HTTP/2, the watch's and the renewals' one).
  'lose-replies',
  // The leader's connection reset, and every redial's TLS handshake hangs, even after the
  // heal: only a dial made since gets through (a stuck dial must be given up, not joined).
  'stall-handshake',
  'apiserver-freeze',
  'apiserver-kill',
  'lease-delete',
  'lease-overwrite',
  // The leader's watchdog alone: frozen, or killed.
  'watchdog-sigstop',
  'watchdog-sigkill',
  // Both processes, as a unit-wide signal sends it (systemd's KillMode=control-group); the
  // freeze of both only for less than D − R − G − K, where the outcome is defined.
  'unit-sigterm',
  'unit-sighup',
  'unit-sigstop',
  // leader-run and its child frozen together, the watchdog not: Ctrl-Z on a terminal's job.
  // Beyond the renew deadline the watchdog must stop the frozen child (continuing it to take
  // its SIGTERM) before the Lease can be taken.
  'job-sigstop',
  // An admin's writes: the holder cleared; deleted and recreated with an empty spec;
  // a label or annotation only (ridden out), and one right before a SIGTERM (released).
  'lease-clear',
  'lease-recreate-empty',
  'lease-annotate',
  'annotate-sigterm',
  // The Lease deleted, and its next holder frozen at the end of its new-Lease hold for
  // longer than D − R: on waking it must not start its child.
  'hold-freeze',
  // `leader-run step-down`'s request for the current term, at any phase of the renewals: a
  // planned handover (leader exits 0); a client-go leader ignores it.
  'step-down',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The faults a client-go leader is given. client-go fences nothing: frozen, it runs on; and
 *  with its requests failing (a cut network, a frozen apiserver, an admin's write) it has been
 *  seen leading 7 s after its last renewal with a 6 s lease (P + R was 4 s). Any other fault
 *  drawn while the peer leads becomes a SIGTERM. */
const PEER_SAFE: ReadonlySet<FaultKind> = new Set(['sigterm', 'sigkill', 'lease-annotate', 'annotate-sigterm', 'step-down']);
/** Admin writes after which the client-go peer, as a follower, takes the Lease at once with
 *  no hold: an overlap it then causes with a leader-run child is client-go's, not ours. */
const LEASE_WRITES: ReadonlySet<FaultKind> = new Set(['lease-delete', 'lease-overwrite', 'lease-clear', 'lease-recreate-empty', 'hold-freeze']);

export interface ChaosOptions {
  rounds: number;
  seed: string;
  /** leader-run candidates (default 3). */
  candidates?: number;
  /** A client-go peer on the Lease too (default true). */
  peer?: boolean;
  /** Progress and findings, one line at a time. */
  out?: (line: string) => void;
  signal?: AbortSignal;
  /** Keep the work dir (ledger, logs) even when the run is clean. */
  keep?: boolean;
  /** The fault kinds to draw from (default: all). */
  kinds?: readonly FaultKind[];
}

export interface RoundResult {
  round: number;
  kind: FaultKind;
  detail: string;
  leader: string;
  outcome: 'takeover' | 'survived' | 'stuck';
  /** From injection to the next child's start line. */
  takeoverMs?: number;
  next?: string;
  t0: number;
  end: number;
}

export interface FoundOverlap {
  a: string;
  b: string;
  aPid: number;
  bPid: number;
  ms: number;
  round: number | undefined;
  kind: FaultKind | undefined;
  evidence: string | undefined;
}

export interface ChaosResult {
  seed: string;
  requested: number;
  results: RoundResult[];
  overlaps: FoundOverlap[];
  overlapMs: number;
  /** Overlaps where the client-go peer took the Lease at once after an admin's write (it
   *  has no new-Lease hold), reported apart: not leader-run's to prevent. */
  peerOverlaps: FoundOverlap[];
  /** Processes of ours alive when they must not be, each described. */
  leftovers: string[];
  /** Older trees' processes alive when a newer child had started. */
  strays: string[];
  leaseHeld: string | undefined;
  exits: Record<string, number>;
  /** Exits other than 75 (lost), 143 (our SIGTERM) or by a signal we sent, by status. */
  unexpectedExits: Record<string, string[]>;
  notes: string[];
  interrupted: boolean;
  failed: string | undefined;
  wallMs: number;
  dir: string;
  kept: boolean;
}

class Interrupted extends Error {
  override name = 'Interrupted';
}

/** What the run needs of a candidate: leader-run, or the client-go peer seen the same way. */
interface Candidate {
  readonly pid: number;
  readonly proc: import('node:child_process').ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly records: LogRecord[];
  readonly stderrLines: string[];
  has(event: string): boolean;
  signal(sig: NodeJS.Signals): void;
  waitFor(event: string, timeoutMs?: number): Promise<unknown>;
}

/** The peer as a Candidate: its started-leading is a child-started. */
class PeerCandidate implements Candidate {
  readonly peer: LeaderPeer;
  constructor(peer: LeaderPeer) {
    this.peer = peer;
  }
  static #event(e: PeerEvent): string {
    return e.event === 'started-leading' ? 'child-started' : e.event;
  }
  get pid(): number {
    return this.peer.proc.pid ?? 0;
  }
  get proc(): import('node:child_process').ChildProcess {
    return this.peer.proc;
  }
  get exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.peer.exited;
  }
  get records(): LogRecord[] {
    return this.peer.events.map((e) => ({ ...e, time: new Date(e.ms).toISOString(), level: 'info', msg: e.event, event: PeerCandidate.#event(e) }));
  }
  get stderrLines(): string[] {
    return this.peer.stderr.split('\n');
  }
  has(event: string): boolean {
    return this.peer.events.some((e) => PeerCandidate.#event(e) === event);
  }
  signal(sig: NodeJS.Signals): void {
    this.peer.proc.kill(sig);
  }
  waitFor(event: string, timeoutMs?: number): Promise<unknown> {
    return this.peer.waitFor((e) => PeerCandidate.#event(e) === event, timeoutMs);
  }
}

interface Incarnation {
  slot: Slot;
  gen: number;
  name: string;
  lr: Candidate;
  log: string;
  watchdog: KnownProcess | undefined;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Signals we sent it, so an exit by our SIGKILL is expected. */
  sent: Set<string>;
  /** Exit statuses the faults we injected make expected (70 after a watchdog fault). */
  expected: Set<number>;
}

interface Slot {
  index: number;
  id: string;
  /** The client-go peer, not leader-run. */
  peer: boolean;
  proxy: FaultProxy;
  kubeconfig: string;
  workerFlags: string[];
  timing: string[];
  gen: number;
  current: Incarnation | undefined;
  restart: NodeJS.Timeout | undefined;
}

/** Per slot, a child that is a little harder to stop than the plain worker. */
function workerFlagsFor(index: number): string[] {
  switch (index % 3) {
    case 1:
      // Grandchildren that ignore SIGTERM (only SIGKILL ends them), one of them a process
      // whose main thread has exited while a thread beats on.
      return ['--grandchildren', '2', '--zthread', nativeFixture('zthread')];
    case 2:
      // A graceful shutdown that takes a while, and a grandchild that keeps forking away
      // into sessions of its own (found by the term's mark only) until it is killed.
      return ['--term-delay', '300', '--hopper', nativeFixture('hopper')];
    default:
      return [];
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

function microTime(wallMs: number): string {
  return new Date(wallMs).toISOString().replace('Z', '000Z');
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const out = opts.out ?? ((line: string) => console.log(line));
  const nCand = opts.candidates ?? 3;
  const withPeer = opts.peer ?? true;
  const kinds = opts.kinds && opts.kinds.length > 0 ? opts.kinds : FAULT_KINDS;
  const faults = new Rng(opts.seed, 'faults');
  const misc = new Rng(opts.seed, 'misc');
  const wall0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leader-run-chaos-'));
  fs.mkdirSync(path.join(dir, 'logs'));
  const eventsFile = path.join(dir, 'events.log');
  // Every process we start carries this in its environment, so whatever is left of them at
  // the end can be found, whoever its parent is by then.
  const marker = `LEADER_RUN_CHAOS=${dir}`;

  const res: ChaosResult = {
    seed: opts.seed,
    requested: opts.rounds,
    results: [],
    overlaps: [],
    overlapMs: 0,
    peerOverlaps: [],
    leftovers: [],
    strays: [],
    leaseHeld: undefined,
    exits: {},
    unexpectedExits: {},
    notes: [],
    interrupted: false,
    failed: undefined,
    wallMs: 0,
    dir,
    kept: false,
  };

  const event = (msg: string): void => {
    fs.appendFileSync(eventsFile, `${monoNow().toFixed(1)} ${new Date().toISOString()} ${msg}\n`);
  };
  const checkAbort = (): void => {
    if (opts.signal?.aborted) throw new Interrupted('interrupted');
  };

  let cluster: Cluster | undefined;
  let info: ClusterInfo | undefined;
  let watch: LeaseWatch | undefined;
  let tail: LedgerTail | undefined;
  const slots: Slot[] = [];
  const incarnations: Incarnation[] = [];
  let stopping = false;
  let apiserverUp = true;
  let apiserverFrozen = false;
  const distDir = path.join(path.dirname(BIN), '..', 'dist');
  const builtAt = newestMtime(distDir);
  let rebuilt = false;
  /** The CLI runs dist/: a rebuild during the run mixes two versions of the product. */
  function checkBuild(round: number): void {
    const now = newestMtime(distDir);
    if (rebuilt || now === undefined || now === builtAt) return;
    rebuilt = true;
    const note = `dist/ was rebuilt during the run (noticed before round ${round}): later candidates run the new build`;
    res.notes.push(note);
    out(`NOTE ${note}`);
    event(`NOTE ${note}`);
  }

  // ---- candidates ------------------------------------------------------------------

  function spawn(slot: Slot): void {
    slot.restart = undefined;
    if (stopping || !tail) return;
    slot.gen++;
    const name = `c${slot.index}.${slot.gen}`;
    const log = path.join(dir, 'logs', `${name}.log`);
    const lr: Candidate = slot.peer
      ? new PeerCandidate(
          new LeaderPeer(info!.binDir, {
            id: slot.id,
            lockName: LEASE,
            namespace: NAMESPACE,
            kubeconfig: slot.kubeconfig,
            leaseDuration: '6s',
            renewDeadline: '3s',
            retryPeriod: '1s',
            ledger: tail.file,
            ledgerName: name,
          }),
        )
      : new LeaderRun(
          [
            '-v',
            '--kubeconfig',
            slot.kubeconfig,
            '--lock-name',
            LEASE,
            '--lock-namespace',
            NAMESPACE,
            // Stable per slot, like a Pod name: a restarted candidate finds the Lease naming an
            // identity it did not write in this process, which it must treat as foreign.
            '--id',
            slot.id,
            ...slot.timing,
            '--shutdown-grace',
            SHUTDOWN_GRACE,
            ...workerCmd(tail.file, '--name', name, ...slot.workerFlags),
          ],
          { env: { LEADER_RUN_CHAOS: dir } },
        );
    // The peer exits 0 once its term is over (client-go's RunOrDie returns).
    const expected = new Set(slot.peer ? [0] : [75, 143]);
    const inc: Incarnation = { slot, gen: slot.gen, name, lr, log, watchdog: undefined, exit: undefined, sent: new Set(), expected };
    slot.current = inc;
    incarnations.push(inc);
    lr.proc.stderr?.on('data', (s: string) => fs.appendFileSync(log, s));
    event(`spawned ${name} pid ${lr.pid}`);
    lr.waitFor('campaigning', 60_000).then(
      () => {
        // The watchdog is forked before leader-run says it is campaigning.
        const wd = slot.peer ? undefined : childrenOf(lr.pid).find((p) => /leader-run-watchdog|watchdog\.[jt]s/.test(cmdline(p)));
        if (wd) inc.watchdog = known(wd);
      },
      () => {},
    );
    void lr.exited.then((e) => {
      inc.exit = e;
      const key = e.code !== null ? String(e.code) : String(e.signal);
      res.exits[key] = (res.exits[key] ?? 0) + 1;
      // On an interruption the spawn guards SIGKILL every candidate: nothing to report.
      const expected = (e.code !== null && inc.expected.has(e.code)) || (e.signal !== null && inc.sent.has(e.signal)) || !!opts.signal?.aborted;
      if (!expected) {
        const last = lr.stderrLines.slice(-3).join('\n      ');
        (res.unexpectedExits[key] ??= []).push(`${name} (pid ${lr.pid}), log ${log}:\n      ${last}`);
      }
      event(`exited ${name} pid ${lr.pid}: ${key}`);
      if (slot.current === inc && !stopping) {
        // A supervisor's restart delay, varied so restarts do not line up with the rounds.
        slot.restart = setTimeout(() => spawn(slot), Math.round(misc.between(100, 400)));
      }
    });
  }

  function signal(inc: Incarnation, sig: NodeJS.Signals): void {
    inc.sent.add(sig);
    event(`${sig} -> ${inc.name} pid ${inc.lr.pid}`);
    if (!inc.exit) inc.lr.signal(sig);
  }

  /** Signals the leader's watchdog, if it is still the process we found. */
  function signalWatchdog(inc: Incarnation, sig: NodeJS.Signals): void {
    const wd = inc.watchdog;
    event(`${sig} -> watchdog of ${inc.name} pid ${wd?.pid}`);
    signalKnown(wd, sig);
  }

  // ---- observing -------------------------------------------------------------------

  async function tick(): Promise<void> {
    checkAbort();
    await sleep(POLL_MS);
    checkAbort();
    tail!.poll();
  }

  interface Steady {
    inc: Incarnation;
    life: Life;
  }

  /** One child running, its leader-run alive and saying so, every slot campaigning. */
  function steadyNow(): Steady | undefined {
    const now = monoNow();
    const running = tail!.running(now, RUNNING_WITHIN_MS);
    if (running.length !== 1) return undefined;
    const life = running[0]!;
    if (!life.started || now - life.from < 100) return undefined;
    const m = /^c(\d+)\.(\d+)$/.exec(life.name);
    const slot = m ? slots[Number(m[1])] : undefined;
    const inc = slot?.current;
    if (!inc || inc.gen !== Number(m![2]) || inc.exit || !inc.lr.has('child-started') || inc.lr.has('stopped-leading')) return undefined;
    for (const s of slots) if (!s.current || s.current.exit || !s.current.lr.has('campaigning')) return undefined;
    return { inc, life };
  }

  async function steady(timeoutMs: number, why: string): Promise<Steady> {
    const end = monoNow() + timeoutMs;
    for (;;) {
      const s = steadyNow();
      if (s) return s;
      if (monoNow() > end) throw new Error(`no steady leader within ${timeoutMs / 1000}s ${why}`);
      await tick();
    }
  }

  const strayPids = new Set<number>();
  /** Older trees' processes alive once a newer child has started. */
  function checkStrays(fresh: Life, round: number): void {
    for (const life of tail!.lives.values()) {
      if (life.tree === fresh.tree || life.gone || life.from > fresh.from || peerLife(life)) continue;
      let anyAlive = false;
      for (const p of treeOf(life)) {
        if (!stillAlive(p.pid, p.start)) continue;
        anyAlive = true;
        if (strayPids.has(p.pid)) continue;
        strayPids.add(p.pid);
        const msg = `round ${round}: ${p.what} ${p.pid} of ${life.name} alive after ${fresh.name} started`;
        res.strays.push(msg);
        out(`STRAY ${msg}`);
        event(`STRAY ${msg}`);
      }
      if (!anyAlive) life.gone = true;
    }
  }

  /** The peer's ledger is written by the peer process itself, which outlives its term by a
   *  moment: its liveness is its beats, not its pid. */
  function peerLife(life: Life): boolean {
    const m = /^c(\d+)\./.exec(life.tree);
    return !!m && !!slots[Number(m[1])]?.peer;
  }

  /** Overlaps found so far, by pair: re-measured on every check, since a child that was
   *  still running at the first sighting has since left more signs of life. */
  const found = new Map<string, { o: Overlap; f: FoundOverlap }>();

  /** Finds overlaps, attributes new ones to their round (the later child's start is the
   *  takeover that went wrong) and writes their evidence. Called once the children of a
   *  round are settled: when the next round is steady, and at the end. */
  function checkOverlaps(): void {
    for (const o of tail!.overlaps()) {
      const key = `${o.a.pid}/${o.a.name}+${o.b.pid}/${o.b.name}`;
      const seen = found.get(key);
      if (seen) {
        seen.f.ms = o.ms;
        continue;
      }
      const r = res.results.find((x) => o.at >= x.t0 && o.at <= (x.end || Infinity)) ?? res.results.at(-1);
      const evidence = writeEvidence(o, r);
      const f: FoundOverlap = { a: o.a.name, b: o.b.name, aPid: o.a.pid, bPid: o.b.pid, ms: o.ms, round: r?.round, kind: r?.kind, evidence };
      found.set(key, { o, f });
      const clientGos = peerLife(o.b) && !peerLife(o.a) && r !== undefined && LEASE_WRITES.has(r.kind);
      (clientGos ? res.peerOverlaps : res.overlaps).push(f);
      const line =
        `${clientGos ? 'PEER OVERLAP (client-go takes a written Lease at once)' : 'OVERLAP'} ${o.ms.toFixed(1)}ms: ${o.a.name} (pid ${o.a.pid}) last seen ${o.a.to.toFixed(1)}, ` +
        `${o.b.name} (pid ${o.b.pid}) started ${o.b.from.toFixed(1)}` +
        (r ? ` — round ${r.round} ${r.kind}${r.detail ? ` ${r.detail}` : ''}, injected at ${r.t0.toFixed(1)}` : '') +
        `; evidence ${evidence}`;
      out(line);
      event(line);
    }
    res.overlapMs = res.overlaps.reduce((sum, f) => sum + f.ms, 0);
  }

  function writeEvidence(o: Overlap, r: RoundResult | undefined): string {
    const file = path.join(dir, `overlap-${o.a.pid}-${o.b.pid}.txt`);
    const from = Math.max(o.a.from, r?.t0 ?? o.a.from) - 3000;
    const to = Math.max(o.a.to, o.b.to) + 1000;
    const lines: string[] = [];
    lines.push(`overlap of ${o.ms.toFixed(1)} ms between ${o.a.name} (pid ${o.a.pid}) and ${o.b.name} (pid ${o.b.pid})`);
    if (r) lines.push(`round ${r.round}: ${r.kind} ${r.detail}; leader ${r.leader}; injected at mono ${r.t0.toFixed(1)}; outcome ${r.outcome}`);
    lines.push('', '--- chaos events ---');
    for (const l of readLines(eventsFile)) {
      const mono = Number(l.slice(0, l.indexOf(' ')));
      if (mono >= from && mono <= to) lines.push(l);
    }
    lines.push('', '--- lease versions (admin watch) ---');
    for (const e of watch?.between(from, to) ?? []) lines.push(formatLeaseEvent(e));
    for (const life of [o.a, o.b]) {
      lines.push('', `--- ledger of ${life.name} (pid ${life.pid}) ---`);
      for (const l of tail!.evidence(life)) lines.push(JSON.stringify(l));
    }
    const wallFrom = Date.now() - (monoNow() - from);
    const wallTo = Date.now() - (monoNow() - to);
    for (const inc of incarnations) {
      const recs = inc.lr.records.filter((x) => {
        const t = Date.parse(x.time);
        return t >= wallFrom && t <= wallTo;
      });
      if (recs.length === 0) continue;
      lines.push('', `--- log of ${inc.name} (leader-run pid ${inc.lr.pid}, full log ${inc.log}) ---`);
      for (const x of recs) lines.push(JSON.stringify(x));
    }
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  }

  // ---- faults ----------------------------------------------------------------------

  interface Drawn {
    kind: FaultKind;
    dwellMs: number;
    pauseMs: number;
    detail: string;
    holder: (leader: Slot) => string;
  }

  let bag: FaultKind[] = [];
  /** Every kind once per len(kinds) rounds, in a seeded order; the parameters are all
   *  drawn every round, so the sequence depends on the seed alone. */
  function draw(): Drawn {
    if (bag.length === 0) bag = faults.shuffle(kinds);
    const kind = bag.shift()!;
    const dwellMs = Math.round(faults.between(200, 1200)); // over two retry periods: faults land at every phase of the renewals
    const bucket = faults.next();
    const r = faults.next();
    const other = faults.next();
    // Pauses: within the renew deadline, between it and the lease duration, beyond it.
    let pauseMs = bucket < 0.35 ? 200 + r * (R_MS - 400) : bucket < 0.65 ? R_MS + r * (D_MS - R_MS) : D_MS + r * 5000;
    if (kind === 'reset' && bucket < 0.25) pauseMs = 0; // a one-off reset of every connection
    if (kind === 'apiserver-kill') pauseMs = r * 2000; // down time before the restart begins
    if (kind === 'unit-sigstop') pauseMs = 100 + r * 800; // < D − R − G − K: both wake in time
    if (kind === 'hold-freeze') pauseMs = D_MS - R_MS + 500 + r * 1500; // longer than D − R
    pauseMs = Math.round(pauseMs);
    const holderOf = (leader: Slot): string => {
      // Sometimes a made-up holder, sometimes another candidate's identity, which that
      // candidate must treat as foreign.
      // Never the peer's: client-go takes a record naming it as its own.
      const others = slots.filter((s) => s !== leader && !s.peer);
      if (other < 0.5 || others.length === 0) return 'admin-override';
      return others[Math.floor(((other - 0.5) / 0.5) * others.length)]!.id;
    };
    const detail =
      kind === 'sigstop' ||
      kind === 'blackhole' ||
      kind === 'reset' ||
      kind === 'lose-replies' ||
      kind === 'stall-handshake' ||
      kind === 'apiserver-freeze' ||
      kind === 'watchdog-sigstop' ||
      kind === 'unit-sigstop' ||
      kind === 'job-sigstop' ||
      kind === 'hold-freeze'
        ? `for ${pauseMs}ms`
        : kind === 'apiserver-kill'
          ? `restart after ${pauseMs}ms`
          : '';
    return { kind, dwellMs, pauseMs, detail, holder: holderOf };
  }

  const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${LEASE}`;

  /** An admin's read-modify-write of the Lease, retried on conflicts; returns when it landed. */
  async function adminWrite(what: string, change: (lease: { metadata: Record<string, unknown>; spec: Record<string, unknown> }) => void): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const got = await apiRequest(target(info!, 'admin'), 'GET', leasePath);
      if (got.status !== 200) throw new Error(`admin GET lease: ${got.status} ${got.text.slice(0, 200)}`);
      const lease = got.body as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
      change(lease);
      const t0 = monoNow();
      const put = await apiRequest(target(info!, 'admin'), 'PUT', leasePath, lease);
      event(`admin PUT lease (${what}): ${put.status}`);
      if (put.status === 200) return t0;
      if (put.status !== 409 || attempt >= 10) throw new Error(`admin PUT lease (${what}): ${put.status} ${put.text.slice(0, 200)}`);
    }
  }

  async function adminDelete(): Promise<number> {
    const t0 = monoNow();
    const r = await apiRequest(target(info!, 'admin'), 'DELETE', leasePath);
    event(`admin DELETE lease: ${r.status}`);
    if (r.status !== 200) res.notes.push(`admin DELETE answered ${r.status}: ${r.text.slice(0, 200)}`);
    return t0;
  }

  /** The hold-freeze fault: after the deletion, the candidate that creates the Lease anew
   *  holds it before its child may start; it is frozen 300 ms before that hold ends. */
  async function freezeAtHoldEnd(t0Wall: number, pauseMs: number): Promise<{ healed: Promise<number>; detail: string }> {
    const end = monoNow() + 10_000;
    for (;;) {
      for (const inc of incarnations) {
        if (inc.exit || inc.slot.peer) continue;
        const hold = inc.lr.records.find((x) => x.event === 'new-lease-hold' && Date.parse(x.time) >= t0Wall);
        if (!hold) continue;
        const holdEndsWall = Date.parse(hold.time) + Number(hold['holdMs'] ?? D_MS);
        await sleep(holdEndsWall - 300 - Date.now());
        signal(inc, 'SIGSTOP');
        return {
          healed: sleep(pauseMs).then(() => {
            signal(inc, 'SIGCONT');
            return monoNow();
          }),
          detail: `${inc.name} frozen at the end of its hold for ${pauseMs}ms`,
        };
      }
      if (monoNow() > end) return { healed: Promise.resolve(monoNow()), detail: 'no new-Lease hold seen (the peer recreated it?)' };
      await tick();
    }
  }

  /** Injects; returns the injection instant and a promise of the instant it was healed. */
  async function inject(d: Drawn, leader: Incarnation, life: Life): Promise<{ t0: number; healed: Promise<number>; detail: string }> {
    const c = cluster!;
    const healAfter = (ms: number, heal: () => void | Promise<void>): Promise<number> =>
      sleep(ms).then(async () => {
        await heal();
        return monoNow();
      });
    let t0 = monoNow();
    switch (d.kind) {
      case 'sigterm':
      case 'sigkill':
        t0 = monoNow();
        signal(leader, d.kind === 'sigterm' ? 'SIGTERM' : 'SIGKILL');
        return { t0, healed: Promise.resolve(t0), detail: d.detail };
      case 'sigstop':
        t0 = monoNow();
        signal(leader, 'SIGSTOP');
        return { t0, healed: healAfter(d.pauseMs, () => signal(leader, 'SIGCONT')), detail: d.detail };
      case 'blackhole':
      case 'reset':
      case 'lose-replies':
      case 'stall-handshake': {
        const proxy = leader.slot.proxy;
        t0 = monoNow();
        proxy.setMode(d.kind);
        event(`proxy of ${leader.slot.id} -> ${d.kind}`);
        return {
          t0,
          healed: healAfter(d.pauseMs, () => {
            proxy.setMode('pass');
            event(`proxy of ${leader.slot.id} -> pass`);
          }),
          detail: d.detail,
        };
      }
      case 'apiserver-freeze':
        t0 = monoNow();
        c.freezeApiserver();
        apiserverFrozen = true;
        event('apiserver SIGSTOP');
        return {
          t0,
          healed: healAfter(d.pauseMs, () => {
            c.thawApiserver();
            apiserverFrozen = false;
            event('apiserver SIGCONT');
          }),
          detail: d.detail,
        };
      case 'apiserver-kill': {
        t0 = monoNow();
        apiserverUp = false;
        event('apiserver SIGKILL');
        const healed = c.stopApiserver({ signal: 'SIGKILL' }).then(async () => {
          await sleep(d.pauseMs);
          const t = monoNow();
          event('apiserver starting');
          await c.startApiserver();
          apiserverUp = true;
          event(`apiserver ready after ${Math.round(monoNow() - t)}ms`);
          return monoNow();
        });
        return { t0, healed, detail: d.detail };
      }
      case 'lease-delete':
        t0 = await adminDelete();
        return { t0, healed: Promise.resolve(t0), detail: d.detail };
      case 'lease-overwrite': {
        const holder = d.holder(leader.slot);
        t0 = await adminWrite(`holder=${holder}`, (lease) => {
          const now = Date.now();
          lease.spec = {
            ...lease.spec,
            holderIdentity: holder,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: Number(lease.spec['leaseTransitions'] ?? 0) + 1,
          };
        });
        return { t0, healed: Promise.resolve(t0), detail: `holder=${holder}` };
      }
      case 'lease-clear':
        t0 = await adminWrite('holder cleared', (lease) => void (lease.spec = { ...lease.spec, holderIdentity: '' }));
        return { t0, healed: Promise.resolve(t0), detail: d.detail };
      case 'lease-recreate-empty': {
        t0 = await adminDelete();
        const r = await apiRequest(target(info!, 'admin'), 'POST', leasePath.slice(0, leasePath.lastIndexOf('/')), {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: LEASE, namespace: NAMESPACE },
          spec: {},
        });
        event(`admin POST lease with an empty spec: ${r.status}`);
        return { t0, healed: Promise.resolve(t0), detail: r.status === 201 ? 'recreated empty' : `POST answered ${r.status} (a candidate was first)` };
      }
      case 'lease-annotate':
      case 'annotate-sigterm': {
        t0 = await adminWrite('annotation', (lease) => {
          const annotations = {
            ...((lease.metadata['annotations'] as Record<string, string> | undefined) ?? {}),
            'chaos.leader-run/poked': String(Date.now()),
          };
          lease.metadata = { ...lease.metadata, annotations };
        });
        if (d.kind === 'annotate-sigterm') signal(leader, 'SIGTERM');
        return { t0, healed: Promise.resolve(t0), detail: d.detail };
      }
      case 'step-down': {
        if (!leader.slot.peer) leader.expected.add(0);
        t0 = await adminWrite('step-down request', (lease) => {
          const term = { holder: String(lease.spec['holderIdentity'] ?? ''), transitions: Number(lease.spec['leaseTransitions'] ?? 0) };
          const annotations = { ...((lease.metadata['annotations'] as Record<string, string> | undefined) ?? {}), [STEP_DOWN_ANNOTATION]: stepDownValue(term) };
          lease.metadata = { ...lease.metadata, annotations };
        });
        return { t0, healed: Promise.resolve(t0), detail: d.detail };
      }
      case 'watchdog-sigkill':
        t0 = monoNow();
        leader.expected.add(70);
        signalWatchdog(leader, 'SIGKILL');
        return { t0, healed: Promise.resolve(t0), detail: d.detail };
      case 'watchdog-sigstop':
        t0 = monoNow();
        leader.expected.add(70);
        signalWatchdog(leader, 'SIGSTOP');
        return { t0, healed: healAfter(d.pauseMs, () => signalWatchdog(leader, 'SIGCONT')), detail: d.detail };
      case 'unit-sigterm':
      case 'unit-sighup': {
        const sig = d.kind === 'unit-sigterm' ? 'SIGTERM' : 'SIGHUP';
        t0 = monoNow();
        signal(leader, sig);
        signalWatchdog(leader, sig);
        return { t0, healed: Promise.resolve(t0), detail: d.detail };
      }
      case 'unit-sigstop':
        t0 = monoNow();
        signalWatchdog(leader, 'SIGSTOP');
        signal(leader, 'SIGSTOP');
        return {
          t0,
          healed: healAfter(d.pauseMs, () => {
            signal(leader, 'SIGCONT');
            signalWatchdog(leader, 'SIGCONT');
          }),
          detail: d.detail,
        };
      case 'job-sigstop': {
        // As the terminal stops a job: every process of the child's tree, and leader-run.
        const job = treeOf(life).map((p) => ({ pid: p.pid, start: p.start }));
        t0 = monoNow();
        for (const p of job) signalKnown(p, 'SIGSTOP');
        signal(leader, 'SIGSTOP');
        event(`SIGSTOP -> the child tree of ${leader.name} (${job.map((p) => p.pid).join(' ')})`);
        const heal = (): void => {
          signal(leader, 'SIGCONT');
          for (const p of job) signalKnown(p, 'SIGCONT');
        };
        return { t0, healed: healAfter(d.pauseMs, heal), detail: d.detail };
      }
      case 'hold-freeze': {
        const wall = Date.now();
        t0 = await adminDelete();
        const f = await freezeAtHoldEnd(wall, d.pauseMs);
        return { t0, healed: f.healed, detail: f.detail };
      }
    }
  }

  // ---- the run ---------------------------------------------------------------------

  try {
    cluster = await startCluster({ dir: path.join(dir, 'cluster') });
    info = cluster.info;
    checkAbort();
    out(
      `chaos: seed ${opts.seed}, ${opts.rounds} rounds, ${nCand} leader-run candidates${withPeer ? ' and a client-go peer' : ''}, private apiserver ${info.server}, work dir ${dir}`,
    );
    watch = new LeaseWatch(target(info, 'admin'), NAMESPACE, LEASE, path.join(dir, 'lease-events.log'));
    tail = new LedgerTail(path.join(dir, 'ledger'));
    for (let i = 0; i < nCand + (withPeer ? 1 : 0); i++) {
      const peer = i === nCand;
      const proxy = await FaultProxy.start({ host: '127.0.0.1', port: info.apiserverPort });
      const kubeconfig = writeKubeconfig(info, `chaos-c${i}`, { user: 'candidate', server: proxy.url });
      slots.push({
        index: i,
        id: peer ? 'client-go-peer' : `cand-${i}`,
        peer,
        proxy,
        kubeconfig,
        workerFlags: workerFlagsFor(i),
        timing: i % 3 === 2 ? LONG : FAST,
        gen: 0,
        current: undefined,
        restart: undefined,
      });
    }
    for (const s of slots) spawn(s);

    for (let round = 1; round <= opts.rounds; round++) {
      const d = draw();
      let st = await steady(STEADY_TIMEOUT_MS, `before round ${round}`);
      checkOverlaps();
      checkBuild(round);
      const dwellEnd = monoNow() + d.dwellMs;
      while (monoNow() < dwellEnd) await tick();
      // The leader should still be leading after the dwell; if it is not, say so.
      const still = tail.running(monoNow(), RUNNING_WITHIN_MS);
      if (!(still.length === 1 && still[0] === st.life && !st.inc.exit && !st.inc.lr.has('stopped-leading'))) {
        const note = `round ${round}: ${st.life.name} stopped leading with no fault injected (running now: ${still.map((l) => l.name).join(', ') || 'none'})`;
        res.notes.push(note);
        out(`NOTE ${note}`);
        event(`NOTE ${note}`);
      }
      // A follower may be restarting meanwhile (it exited on the previous fault): wait for it.
      st = await steady(STEADY_TIMEOUT_MS, `before round ${round}`);
      const leader = st.inc;
      const old = st.life;
      const startsBefore = tail.starts.length;
      if (leader.slot.peer && !PEER_SAFE.has(d.kind)) {
        // client-go would run on past its lease (see PEER_SAFE): a graceful stop instead.
        d.detail = `(the peer leads: SIGTERM instead of ${d.kind})`;
        d.kind = 'sigterm';
      }
      event(`round ${round}: ${d.kind} ${d.detail} on leader ${leader.name}`);
      const inj = await inject(d, leader, old);
      let healedAt: number | undefined;
      let healError: unknown;
      inj.healed.then(
        (t) => (healedAt = t),
        (e: unknown) => (healError = e),
      );
      const result: RoundResult = { round, kind: d.kind, detail: inj.detail, leader: leader.name, outcome: 'stuck', t0: inj.t0, end: 0 };
      res.results.push(result);
      for (;;) {
        await tick();
        if (healError) throw healError;
        const fresh = tail.starts.slice(startsBefore).find((l) => l !== old);
        if (fresh) {
          result.outcome = 'takeover';
          result.takeoverMs = fresh.from - inj.t0;
          result.next = fresh.name;
          checkStrays(fresh, round);
          break;
        }
        const now = monoNow();
        if (
          healedAt !== undefined &&
          now >= healedAt + SURVIVE_AFTER_MS &&
          now - old.to <= RUNNING_WITHIN_MS &&
          !old.stopped &&
          !leader.exit &&
          !leader.lr.has('stopped-leading')
        ) {
          result.outcome = 'survived';
          break;
        }
        if (now > (healedAt ?? inj.t0 + 120_000) + STUCK_AFTER_MS) break;
      }
      // The fault heals on its own schedule, whatever happened meanwhile.
      while (healedAt === undefined) {
        await tick();
        if (healError) throw healError;
      }
      result.end = monoNow();
      const how =
        result.outcome === 'takeover'
          ? `takeover ${Math.round(result.takeoverMs!)}ms by ${result.next}`
          : result.outcome === 'survived'
            ? 'ridden out, same child'
            : `STUCK: no new child ${Math.round((result.end - inj.t0) / 1000)}s after the fault`;
      out(`round ${round}/${opts.rounds} ${d.kind}${inj.detail ? ` ${inj.detail}` : ''} on ${leader.name}: ${how}`);
      event(`round ${round} done: ${how}`);
      if (result.outcome === 'stuck')
        throw new Error(`round ${round} (${d.kind}) stuck: no leader's child started ${STUCK_AFTER_MS / 1000}s after the fault healed`);
    }

    // ---- the end: stop everything gracefully, then look for what is left ----
    await steady(STEADY_TIMEOUT_MS, 'after the last round');
    checkOverlaps();
    await finish(true);
  } catch (e) {
    if (e instanceof Interrupted) res.interrupted = true;
    else {
      res.failed = e instanceof Error ? e.message : String(e);
      out(`FAILED: ${res.failed}`);
      event(`FAILED: ${res.failed}`);
    }
    await finish(false).catch((err: unknown) => out(`cleanup: ${(err as Error).message}`));
  }

  async function finish(graceful: boolean): Promise<void> {
    if (stopping) return;
    stopping = true;
    for (const s of slots) clearTimeout(s.restart);
    // Heal whatever a broken round left behind, so a graceful stop can work.
    for (const s of slots) s.proxy.setMode('pass');
    for (const inc of incarnations) if (!inc.exit) inc.lr.signal('SIGCONT');
    if (apiserverFrozen && cluster) {
      cluster.thawApiserver();
      apiserverFrozen = false;
    }
    const live = incarnations.filter((inc) => !inc.exit);
    if (graceful) {
      event('stopping all candidates with SIGTERM');
      for (const inc of live) signal(inc, 'SIGTERM');
      for (const inc of live) {
        const exited = await Promise.race([inc.lr.exited.then(() => true), sleep(30_000).then(() => false)]);
        if (!exited) {
          res.leftovers.push(`leader-run ${inc.name} (pid ${inc.lr.pid}) still running 30s after SIGTERM`);
          signal(inc, 'SIGKILL');
          await inc.lr.exited;
        }
      }
      tail?.poll();
      if (tail) checkOverlaps();
      // Each leader-run confirmed its tree dead before exiting, and older trees died long
      // ago: any worker or grandchild alive now is left over.
      for (const life of tail?.lives.values() ?? []) {
        if (peerLife(life)) continue;
        for (const p of treeOf(life)) {
          if (stillAlive(p.pid, p.start)) res.leftovers.push(`${p.what} ${p.pid} of ${life.name}: ${cmdline(p.pid).slice(0, 120)}`);
        }
      }
    } else {
      for (const inc of live) signal(inc, 'SIGKILL');
      await Promise.all(live.map((inc) => Promise.race([inc.lr.exited, sleep(5000)])));
    }
    // Watchdogs exit right after their leader-run (or, orphaned, once the tree is dead):
    // give them a moment, then whatever still carries our marker is left over.
    // A watchdog that is exiting can be a zombie leader with a thread still going: no longer
    // marked (its environ is gone), yet alive by its tasks. It gets the same moment.
    const deadline = monoNow() + 2000;
    const watchdogAlive = (): boolean => incarnations.some((inc) => inc.watchdog && stillAlive(inc.watchdog.pid, inc.watchdog.start));
    let ours = markedProcesses(marker);
    while ((ours.length > 0 || watchdogAlive()) && monoNow() < deadline) {
      await sleep(50);
      ours = markedProcesses(marker);
    }
    if (graceful) {
      const known = new Set(res.leftovers.map((l) => Number(/ (\d+)/.exec(l)?.[1])));
      for (const p of ours) if (!known.has(p.pid)) res.leftovers.push(`${p.what} ${p.pid}: ${p.cmd.slice(0, 120)}`);
      for (const inc of incarnations) {
        if (inc.watchdog && stillAlive(inc.watchdog.pid, inc.watchdog.start) && !ours.some((p) => p.pid === inc.watchdog!.pid)) {
          res.leftovers.push(`watchdog ${inc.watchdog.pid} of ${inc.name}`);
        }
      }
    }
    for (const p of ours) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {}
    }
    if (graceful && info && apiserverUp) {
      const got = await apiRequest(target(info, 'admin'), 'GET', leasePath);
      const holder = got.status === 200 ? ((got.body as { spec?: { holderIdentity?: string } }).spec?.holderIdentity ?? '') : '';
      if (got.status !== 200 && got.status !== 404) res.notes.push(`final lease GET answered ${got.status}`);
      if (holder) res.leaseHeld = holder;
      event(`final lease holder ${JSON.stringify(holder)}`);
    }
    watch?.stop();
    for (const s of slots) await s.proxy.close();
    await cluster?.stop();
    tail?.close();
  }

  res.wallMs = Date.now() - wall0;
  // The evidence stays when something was found; an interrupted clean run leaves nothing.
  const clean = !res.failed && res.overlaps.length === 0 && res.leftovers.length === 0 && res.strays.length === 0 && !res.leaseHeld;
  res.kept = !clean || !!opts.keep;
  if (!res.kept) fs.rmSync(dir, { recursive: true, force: true });
  return res;
}

/** A child's processes that we could identify (a pid without a start time was gone before
 *  we looked, and might since belong to someone else). */
export function treeOf(life: Life): Array<{ pid: number; start: string; what: string }> {
  const all = [{ pid: life.pid, start: life.procStart, what: 'worker' }, ...life.grandchildren.map((g) => ({ ...g, what: 'grandchild' }))];
  return all.filter((p): p is { pid: number; start: string; what: string } => p.start !== undefined);
}

/** The newest file time under dir; undefined while it cannot be read (a build swapping
 *  dist/ in whole removes it for a moment). */
function newestMtime(dir: string): number | undefined {
  try {
    let newest = 0;
    for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (e.isFile()) newest = Math.max(newest, fs.statSync(path.join(e.parentPath, e.name)).mtimeMs);
    }
    return newest;
  } catch {
    return undefined;
  }
}

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** Live processes whose environment carries the marker, except the guards spawnGuarded puts
 *  around each leader-run (they leave within a second of it, on their own). */
export function markedProcesses(marker: string): Array<{ pid: number; what: string; cmd: string }> {
  const out: Array<{ pid: number; what: string; cmd: string }> = [];
  for (const name of fs.readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    let env: string;
    try {
      env = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (!env.split('\0').includes(marker) || !stillAlive(pid, undefined)) continue;
    const cmd = cmdline(pid);
    if (cmd.includes('leader-run-guard') || cmdline(parentOf(pid)).includes('leader-run-guard')) continue;
    const what = /leader-run-watchdog|watchdog\.[jt]s/.test(cmd)
      ? 'watchdog'
      : cmd.includes('worker.ts')
        ? 'worker'
        : cmd.includes('leader-run.js') || cmd.startsWith('leader-run ')
          ? 'leader-run'
          : cmd.includes("process.on('SIGTERM'") || cmd.includes('zthread')
            ? 'grandchild'
            : 'process';
    out.push({ pid, what, cmd });
  }
  return out;
}
