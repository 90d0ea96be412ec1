// The measurements. Each runs the same way for leader-run and the client-go peer; times
// are wall-clock ms on this host, taken by the processes themselves where that matters
// (the child's first act for leader-run, OnStartedLeading for client-go).

import { spawn } from 'node:child_process';
import type { ClusterInfo } from '../test/control-plane/cluster.ts';
import { apiRequest, CANDIDATE_RULES, serviceAccountKubeconfig, target } from '../test/control-plane/cluster.ts';
import { type CgroupMemory, dropPageCache, MemoryCgroup } from '../test/support/cgroup.ts';
import { BIN } from '../test/support/leader-run.ts';
import { attributeGroup, groupDelta, reads, type Scrape, scrape, sumVerbs, totalDelta, type VerbCounts, writes } from './api-metrics.ts';
import { Group, type GroupContext, type Impl, type Member, type Slot } from './candidates.ts';
import { ConnCounter } from './conn-counter.ts';
import { type CpuSample, cpu, cpuPercent, rssKiB } from './procs.ts';

export interface Ctx extends GroupContext {
  info: ClusterInfo;
  progress: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const short = (impl: Impl): string => (impl === 'leader-run' ? 'lr' : 'cg');

/** Like Group.until, but gives up quietly: for log records that may never come. */
async function eventually<T>(fn: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined || Date.now() > end) return v;
    await sleep(5);
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A ServiceAccount of its own (so its requests can be told apart), behind a connection counter. */
export async function makeSlot(ctx: Ctx, name: string): Promise<Slot> {
  const counter = await ConnCounter.start(ctx.info.apiserverPort);
  const kubeconfig = await serviceAccountKubeconfig(ctx.info, name, CANDIDATE_RULES, { server: counter.url });
  await attributeGroup(ctx.info, name, [name]);
  return { name, kubeconfig, group: name, counter };
}

/**
 * Creates Lease `name` with no holder, as an operator or an earlier run would have left it.
 * leader-run holds a Lease object it created itself for one lease duration before starting
 * the child (its new-lease-hold: a deleted Lease's old leader may not have noticed yet); a
 * Lease that already exists is the case worth timing, so every scenario starts from one.
 */
export async function createFreeLease(info: ClusterInfo, name: string): Promise<void> {
  const res = await apiRequest(target(info, 'admin'), 'POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name },
    // The shape a release leaves: an empty spec is a free record no release wrote, which
    // leader-run rightly holds a lease duration before starting (the new-Lease hold).
    spec: { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 },
  });
  if (res.status !== 201 && res.status !== 409) throw new Error(`create Lease ${name}: HTTP ${res.status} ${res.text}`);
}

// ---------------------------------------------------------------------------
// exec → leading, on a free Lease

export interface ExecSample {
  ms: number;
  /** leader-run only: its own log times relative to exec. */
  campaigningMs?: number;
  startedLeadingMs?: number;
  childStartedLogMs?: number;
}

export async function execToLeading(ctx: Ctx, impl: Impl, slot: Slot, n: number): Promise<ExecSample[]> {
  const g = new Group(ctx, impl, `bench-exec-${short(impl)}`, [slot]);
  await createFreeLease(ctx.info, g.lease);
  const out: ExecSample[] = [];
  for (let i = 0; i < n; i++) {
    const m = g.spawn(slot);
    const lead = await g.nextLeader(undefined, m.spawnedAt, 30_000);
    const s: ExecSample = { ms: lead.at - m.spawnedAt };
    if (impl === 'leader-run') {
      await eventually(() => m.eventAt('child-started'), 2000);
      const rel = (e: string): number | undefined => {
        const t = m.eventAt(e);
        return t === undefined ? undefined : t - m.spawnedAt;
      };
      s.campaigningMs = rel('campaigning');
      s.startedLeadingMs = rel('started-leading');
      s.childStartedLogMs = rel('child-started');
    }
    out.push(s);
    ctx.progress(`exec→leading ${impl} ${i + 1}/${n}: ${Math.round(s.ms)} ms`);
    m.kill('SIGTERM');
    await withTimeout(m.exited, 30_000, `${impl} ${m.id} exit after SIGTERM`);
    await sleep(300); // let the host settle before the next cold start
  }
  return out;
}

// ---------------------------------------------------------------------------
// Steady state: requests, connections, CPU and memory of a leader and its followers

export interface SteadyMember {
  impl: Impl;
  id: string;
  role: 'leader' | 'follower';
  requests: VerbCounts;
  perMinute: { reads: number; writes: number; total: number };
  connections: { beforeWindow: number; inWindow: number; perHour: number; tls: number };
  cpuPercent: { main: number; mainSched: number | undefined; watchdog?: number; watchdogSched?: number | undefined };
  /** Context switches per second, all threads: how often the process wakes up. */
  wakeupsPerS: { main: number | undefined; watchdog?: number | undefined };
  rssMaxKiB: { main: number; watchdog?: number };
}

export interface SteadyResult {
  windowS: number;
  members: SteadyMember[];
  leaderChanged: boolean;
  apiserverRequestsPerMinute: number;
  openLeaseWatches: number | undefined;
  /** The same before any candidate ran: the apiserver's own. */
  openLeaseWatchesBaseline: number | undefined;
}

const leaseWatches = (s: Scrape): number => s.longrunning.get('WATCH leases') ?? 0;

export async function steadyState(ctx: Ctx, groups: Group[], warmMs: number, windowMs: number): Promise<SteadyResult> {
  const baseline = leaseWatches(await scrape(ctx.info));
  for (const g of groups) await createFreeLease(ctx.info, g.lease);
  for (const g of groups) for (const s of g.slots) g.spawn(s);
  const leaders = await Promise.all(groups.map((g) => g.settled(1000)));
  ctx.progress(`steady state: leaders ${leaders.map((l) => l.id).join(', ')}; warming up ${warmMs / 1000}s, then measuring ${windowMs / 1000}s`);
  await sleep(warmMs);

  const members = groups.flatMap((g) => g.live());
  const pids = (m: Member): { main: number; watchdog: number | undefined } => ({ main: m.pid, watchdog: m.watchdogPid });
  const rssMax = new Map<number, number>();
  const sampleRss = (): void => {
    for (const m of members) {
      for (const pid of Object.values(pids(m))) {
        if (pid === undefined) continue;
        const kib = rssKiB(pid);
        if (kib !== undefined) rssMax.set(pid, Math.max(rssMax.get(pid) ?? 0, kib));
      }
    }
  };
  const cpu0 = new Map<number, CpuSample | undefined>();
  for (const m of members) for (const pid of Object.values(pids(m))) if (pid) cpu0.set(pid, cpu(pid));
  const s0 = await scrape(ctx.info);
  sampleRss();
  const rssTimer = setInterval(sampleRss, 5000);
  await sleep(windowMs);
  clearInterval(rssTimer);
  sampleRss();
  const s1 = await scrape(ctx.info);
  const cpuPct = (pid: number | undefined): ReturnType<typeof cpuPercent> | undefined => {
    if (!pid) return undefined;
    const a = cpu0.get(pid);
    const b = cpu(pid);
    return a && b ? cpuPercent(a, b) : undefined;
  };

  const windowS = (s1.at - s0.at) / 1000;
  const perMin = (x: number): number => (x * 60) / windowS;
  const leaderChanged = groups.some((g, i) => g.leader() !== leaders[i]);
  const out: SteadyMember[] = members.map((m) => {
    const requests = groupDelta(s0, s1, m.slot.group);
    const c = m.slot.counter!;
    const before = c.opened(0, s0.at);
    const inWindow = c.opened(s0.at, s1.at);
    const { main, watchdog } = pids(m);
    const cm = cpuPct(main);
    const cw = cpuPct(watchdog);
    return {
      impl: m.impl,
      id: m.id,
      role: leaders.includes(m) ? 'leader' : 'follower',
      requests,
      perMinute: { reads: perMin(reads(requests)), writes: perMin(writes(requests)), total: perMin(sumVerbs(requests)) },
      connections: { beforeWindow: before, inWindow, perHour: before + (inWindow * 3600) / windowS, tls: c.conns.filter((x) => x.tls).length },
      cpuPercent: { main: cm?.stat ?? NaN, mainSched: cm?.sched, ...(watchdog ? { watchdog: cw?.stat ?? NaN, watchdogSched: cw?.sched } : {}) },
      wakeupsPerS: { main: cm?.wakeupsPerS, ...(watchdog ? { watchdog: cw?.wakeupsPerS } : {}) },
      rssMaxKiB: { main: rssMax.get(main) ?? NaN, ...(watchdog ? { watchdog: rssMax.get(watchdog) ?? NaN } : {}) },
    };
  });
  return {
    windowS,
    members: out,
    leaderChanged,
    apiserverRequestsPerMinute: perMin(totalDelta(s0, s1).total),
    openLeaseWatches: leaseWatches(s1),
    openLeaseWatchesBaseline: baseline,
  };
}

// ---------------------------------------------------------------------------
// Graceful handoff: SIGTERM to the leader → the next one leads

export interface HandoffSample {
  ms: number;
  /** leader-run: SIGTERM → Lease released (child stopped, tree confirmed, release written);
   *  client-go: SIGTERM → the peer's exit (after its release). */
  releasedMs?: number;
  /** released → the next one's started-leading (its watch or poll saw it, its write won). */
  acquiredMs?: number;
  /** leader-run: started-leading → the child's own first act. */
  spawnMs?: number;
  /** leader-run: SIGTERM → its "signal" log record, and → "child-gone" (tree confirmed dead). */
  signalLoggedMs?: number;
  childGoneMs?: number;
  /** TCP (TLS) connections the new leader opened between the SIGTERM and leading. */
  newConnections?: number;
}

export async function handoffs(ctx: Ctx, g: Group, n: number, settleMs: number, label = ''): Promise<HandoffSample[]> {
  const out: HandoffSample[] = [];
  for (let i = 0; i < n; i++) {
    const old = await g.settled(settleMs);
    const t0 = Date.now();
    old.kill('SIGTERM');
    const next = await g.nextLeader(old, t0, 60_000);
    const s: HandoffSample = { ms: next.at - t0 };
    if (next.member.slot.counter && next.member.slot.counter !== old.slot.counter) s.newConnections = next.member.slot.counter.opened(t0, next.at + 1);
    await withTimeout(old.exited, 30_000, `${g.impl} ${old.id} exit after SIGTERM`);
    if (g.impl === 'leader-run') {
      const released = await eventually(() => old.eventAt('released'), 1000);
      const started = await eventually(() => next.member.eventAt('started-leading'), 2000);
      if (released !== undefined) s.releasedMs = released - t0;
      if (released !== undefined && started !== undefined) s.acquiredMs = started - released;
      if (started !== undefined) s.spawnMs = next.at - started;
      const signalled = old.eventAt('signal');
      const gone = old.eventAt('child-gone');
      if (signalled !== undefined) s.signalLoggedMs = signalled - t0;
      if (gone !== undefined) s.childGoneMs = gone - t0;
    } else {
      const exit = await eventually(() => old.eventAt('exit'), 1000);
      if (exit !== undefined) {
        s.releasedMs = exit - t0;
        s.acquiredMs = next.at - exit;
      }
    }
    out.push(s);
    ctx.progress(
      `handoff ${label}${g.impl} ${i + 1}/${n}: ${Math.round(s.ms)} ms` +
        (s.releasedMs !== undefined
          ? ` (released +${Math.round(s.releasedMs)}, acquired +${Math.round(s.acquiredMs ?? NaN)}${s.spawnMs !== undefined ? `, child +${Math.round(s.spawnMs)}` : ''})`
          : ''),
    );
    g.spawn(old.slot);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Step-down: `leader-run step-down` (a process, as an operator runs it) → the next child running

export interface StepDownSample {
  /** The step-down command spawned → the next leader's child running. */
  ms: number;
  /** The leader's "step-down" log record (it saw the request at a renewal) → the next child. */
  fromNoticeMs?: number;
  /** The step-down command's own exit status. */
  status: number | null;
}

export async function stepDowns(ctx: Ctx, g: Group, n: number, settleMs: number): Promise<StepDownSample[]> {
  const out: StepDownSample[] = [];
  for (let i = 0; i < n; i++) {
    const old = await g.settled(settleMs);
    const t0 = Date.now();
    const cmd = spawn(process.execPath, [BIN, 'step-down', '--kubeconfig', old.slot.kubeconfig, '--lock-name', g.lease], { stdio: 'ignore' });
    const status = new Promise<number | null>((r) => cmd.once('exit', (code) => r(code)));
    const next = await g.nextLeader(old, t0, 60_000);
    await withTimeout(old.exited, 30_000, `${old.id} exit after step-down`);
    const noticed = await eventually(() => old.eventAt('step-down'), 1000);
    const s: StepDownSample = { ms: next.at - t0, status: await status };
    if (noticed !== undefined) s.fromNoticeMs = next.at - noticed;
    out.push(s);
    ctx.progress(
      `step-down ${i + 1}/${n}: ${Math.round(s.ms)} ms (from the leader noticing: ${Math.round(s.fromNoticeMs ?? NaN)} ms), step-down exit ${s.status}`,
    );
    g.spawn(old.slot);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Crash failover: SIGKILL to the leader → the next one leads after the lease expires

export interface CrashSample {
  /** From the Lease's last renewTime (written by the dead leader) to the next one leading. */
  fromRenewMs: number;
  fromKillMs: number;
  lastRenew: string;
}

function microTimeMs(s: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(s);
  if (!m) throw new Error(`not a MicroTime: ${s}`);
  return Date.parse(`${m[1]}Z`) + Number(`0.${m[2] ?? '0'}`) * 1000;
}

async function leaseSpec(info: ClusterInfo, name: string): Promise<{ holderIdentity?: string; renewTime?: string }> {
  const res = await apiRequest(target(info, 'admin'), 'GET', `/apis/coordination.k8s.io/v1/namespaces/default/leases/${name}`);
  if (res.status !== 200) throw new Error(`GET Lease ${name}: HTTP ${res.status}`);
  return res.body.spec ?? {};
}

/** Kills every group's leader at the same moment each round, so no restart disturbs a failover. */
export async function crashFailovers(ctx: Ctx, groups: Group[], n: number, settleMs: number): Promise<Map<Group, CrashSample[]>> {
  const out = new Map<Group, CrashSample[]>(groups.map((g) => [g, []]));
  for (let i = 0; i < n; i++) {
    const olds = await Promise.all(groups.map((g) => g.settled(settleMs)));
    const tk = Date.now();
    for (const o of olds) o.kill('SIGKILL');
    const samples = await Promise.all(
      groups.map(async (g, j) => {
        const old = olds[j]!;
        // A renewal in flight at the kill may still land: read once it has had time to.
        await sleep(500);
        const spec = await leaseSpec(ctx.info, g.lease);
        if (spec.holderIdentity !== old.id || !spec.renewTime)
          throw new Error(`${g.impl}: Lease ${g.lease} names ${spec.holderIdentity}, not the killed ${old.id}`);
        const next = await g.nextLeader(old, tk, ctx.timing.leaseDurationMs + 40_000);
        const s: CrashSample = { fromRenewMs: next.at - microTimeMs(spec.renewTime), fromKillMs: next.at - tk, lastRenew: spec.renewTime };
        ctx.progress(
          `crash failover ${g.impl} ${i + 1}/${n}: ${Math.round(s.fromRenewMs)} ms after the last renewal (${Math.round(s.fromKillMs)} ms after SIGKILL)`,
        );
        return s;
      }),
    );
    groups.forEach((g, j) => {
      out.get(g)!.push(samples[j]!);
      g.spawn(olds[j]!.slot);
    });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Many candidates on one Lease

export interface ManyResult {
  impl: Impl;
  candidates: number;
  startupS: number;
  windowS: number;
  /** The candidates' own requests per minute in steady state (1 leader + N−1 followers). */
  requestsPerMinute: { total: number; reads: number; writes: number; byVerb: VerbCounts };
  /** Everything the apiserver served meanwhile (its own loopback traffic and our /metrics scrapes included). */
  apiserverRequestsPerMinute: number;
  /** Sum over all candidates (leader-run: its own process plus its watchdog). */
  rssTotalMiB: number;
  connectionsOpen: number;
  handoffs: HandoffSample[];
  /** The candidates' requests per handoff (the restart of the stopped one included). */
  requestsPerHandoff: number;
  requestsPerHandoffByVerb: VerbCounts;
}

function perHandoff(v: VerbCounts, n: number): VerbCounts {
  const out = { ...v };
  for (const k of Object.keys(out) as Array<keyof VerbCounts>) out[k] = n ? Math.round((out[k] / n) * 10) / 10 : NaN;
  return out;
}

export async function manyCandidates(
  ctx: Ctx,
  impl: Impl,
  n: number,
  opts: { warmMs: number; windowMs: number; handoffs: number; settleMs: number },
): Promise<ManyResult> {
  const name = `many-${short(impl)}`;
  const base = await makeSlot(ctx, name);
  // One ServiceAccount and one connection counter for the lot; a slot per candidate.
  const slots = Array.from({ length: n }, (_, i): Slot => ({ ...base, name: `${name}-${i + 1}` }));
  const g = new Group(ctx, impl, `bench-${name}`, slots);
  await createFreeLease(ctx.info, g.lease);
  const t0 = Date.now();
  g.spawn(slots[0]!);
  await g.settled(0);
  // In small batches: fifty cold starts at once would only measure the two cores.
  for (let i = 1; i < n; i += 5) {
    const batch = slots.slice(i, i + 5).map((s) => g.spawn(s));
    await g.until(() => (batch.every((m) => m.eventAt('new-leader') !== undefined) ? true : undefined), 60_000, 'batch observing the Lease');
  }
  const startupS = (Date.now() - t0) / 1000;
  await g.settled(opts.settleMs, 120_000);
  ctx.progress(`${n} ${impl} candidates up in ${startupS.toFixed(1)}s; measuring ${opts.windowMs / 1000}s of steady state`);
  await sleep(opts.warmMs);
  const s0 = await scrape(ctx.info);
  await sleep(opts.windowMs);
  const s1 = await scrape(ctx.info);
  const windowS = (s1.at - s0.at) / 1000;
  const perMin = (x: number): number => (x * 60) / windowS;
  const v = groupDelta(s0, s1, name);
  let rss = 0;
  for (const m of g.live()) for (const pid of [m.pid, m.watchdogPid]) if (pid) rss += rssKiB(pid) ?? 0;
  const connectionsOpen = base.counter!.openNow;

  const h0: Scrape = await scrape(ctx.info);
  const samples = await handoffs(ctx, g, opts.handoffs, opts.settleMs, `${n}× `);
  await g.settled(opts.settleMs, 120_000);
  const h1 = await scrape(ctx.info);
  await g.stopAll();
  await base.counter!.close();
  return {
    impl,
    candidates: n,
    startupS,
    windowS,
    requestsPerMinute: { total: perMin(sumVerbs(v)), reads: perMin(reads(v)), writes: perMin(writes(v)), byVerb: v },
    apiserverRequestsPerMinute: perMin(totalDelta(s0, s1).total),
    rssTotalMiB: rss / 1024,
    connectionsOpen,
    handoffs: samples,
    requestsPerHandoff: opts.handoffs ? sumVerbs(groupDelta(h0, h1, name)) / opts.handoffs : NaN,
    requestsPerHandoffByVerb: perHandoff(groupDelta(h0, h1, name), opts.handoffs),
  };
}

// ---------------------------------------------------------------------------
// Memory as the kubelet sees it: a leader's and a follower's tree, each in a cgroup of its own

export interface MemorySample {
  role: 'leader' | 'follower';
  id: string;
  memory: CgroupMemory;
}

/**
 * One leader and one follower of `impl` on a Lease of their own, each started in a memory
 * cgroup of its own right after the page cache is dropped (so each is charged for the file
 * pages it touches first), read after `settleMs` of steady state with an idle child.
 */
export async function memoryFootprint(ctx: Ctx, impl: Impl, slots: [Slot, Slot], settleMs: number): Promise<MemorySample[]> {
  const g = new Group(ctx, impl, `bench-mem-${short(impl)}`, slots);
  await createFreeLease(ctx.info, g.lease);
  const groups = slots.map((s) => MemoryCgroup.create(`leader-run-bench-${s.name}-${process.pid}`));
  try {
    dropPageCache();
    const leader = groups[0]!.spawnInside(() => g.spawn(slots[0]));
    await g.until(() => g.leader(), 30_000, 'leader');
    dropPageCache();
    const follower = groups[1]!.spawnInside(() => g.spawn(slots[1]));
    await g.settled(1000);
    ctx.progress(`memory ${impl}: leading and following; reading the cgroups in ${settleMs / 1000}s`);
    await sleep(settleMs);
    const out: MemorySample[] = [
      { role: 'leader', id: leader.id, memory: groups[0]!.read() },
      { role: 'follower', id: follower.id, memory: groups[1]!.read() },
    ];
    await g.stopAll();
    return out;
  } finally {
    for (const c of groups) await c.remove();
  }
}
