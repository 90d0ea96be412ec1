/**
 * Chaos for `--slots N`: C leader-run candidates on the N Leases of one semaphore, on a private
 * cluster, each behind its own FaultProxy and running the ledger worker while it holds a
 * slot. Every round picks one running child's leader and injects one fault drawn from a
 * seeded stream — a signal, a freeze past the deadline, its watchdog killed, its network cut,
 * its slot's Lease deleted, overwritten or asked to step down — then waits for that child to
 * be gone or to ride the fault out. Candidates that exit are restarted. What must hold, read
 * from the ledger: never more than N children alive at once, never two in one slot; at the
 * end, nothing of ours left and every slot's Lease free.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { STEP_DOWN_ANNOTATION, stepDownValue } from '../../src/lease/record.ts';
import { apiRequest, type Cluster, FaultProxy, startCluster, target, writeKubeconfig } from '../support/cluster.ts';
import { FAST, LeaderRun, workerCmd } from '../support/leader-run.ts';
import { childrenOf, cmdline, type KnownProcess, known, monoNow, signalKnown, stillAlive } from '../support/procs.ts';
import { markedProcesses, treeOf } from './chaos.ts';
import { LedgerTail, type Life } from './ledger.ts';
import { Rng } from './rng.ts';

export const SLOT_FAULTS = ['sigterm', 'sigkill', 'freeze', 'watchdog-kill', 'blackhole', 'lease-delete', 'lease-overwrite', 'step-down'] as const;
export type SlotFault = (typeof SLOT_FAULTS)[number];

const LEASE = 'chaos-slots';
const R_MS = 2000;
const RUNNING_WITHIN_MS = 250;

export interface SlotChaosOptions {
  rounds: number;
  seed: string;
  slots: number;
  candidates: number;
  kinds?: readonly SlotFault[];
  out?: (line: string) => void;
  signal?: AbortSignal;
}

export interface SlotChaosResult {
  rounds: number;
  /** Two children of different trees alive at once in one slot. */
  sameSlot: string[];
  /** The most children alive at one instant (must be ≤ slots). */
  mostAtOnce: number;
  leftovers: string[];
  leasesHeld: string[];
  exits: Record<string, number>;
  failed: string | undefined;
  dir: string;
}

interface Candidate {
  index: number;
  proxy: FaultProxy;
  kubeconfig: string;
  gen: number;
  lr: LeaderRun | undefined;
  /** Its watchdog, with its start time: a pid alone may have been reused since. */
  watchdog: KnownProcess | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export async function runSlotChaos(opts: SlotChaosOptions): Promise<SlotChaosResult> {
  const out = opts.out ?? ((l: string) => console.log(l));
  const kinds = opts.kinds && opts.kinds.length > 0 ? opts.kinds : SLOT_FAULTS;
  const rng = new Rng(opts.seed, 'slot-faults');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leader-run-slot-chaos-'));
  const marker = `LEADER_RUN_CHAOS=${dir}`;
  const res: SlotChaosResult = { rounds: 0, sameSlot: [], mostAtOnce: 0, leftovers: [], leasesHeld: [], exits: {}, failed: undefined, dir };
  const cands: Candidate[] = [];
  const tail = new LedgerTail(path.join(dir, 'ledger'));
  let cluster: Cluster | undefined;
  let stopping = false;
  const leasePath = (slot: string) => `/apis/coordination.k8s.io/v1/namespaces/default/leases/${LEASE}-${slot}`;

  function spawn(c: Candidate): void {
    if (stopping || !cluster) return;
    c.gen++;
    const name = `c${c.index}.${c.gen}`;
    const lr = new LeaderRun(
      [
        '--kubeconfig',
        c.kubeconfig,
        '--lock-name',
        LEASE,
        '--slots',
        String(opts.slots),
        '--id',
        `cand-${c.index}`,
        ...FAST,
        '--shutdown-grace',
        '1s',
        ...workerCmd(tail.file, '--name', name, ...(c.index % 3 === 1 ? ['--term-delay', '300'] : [])),
      ],
      { env: { LEADER_RUN_CHAOS: dir } },
    );
    c.lr = lr;
    c.watchdog = undefined;
    void lr.waitFor('campaigning', 60_000).then(
      () => {
        const pid = childrenOf(lr.pid).find((p) => /leader-run-watchdog|watchdog\.[jt]s/.test(cmdline(p)));
        c.watchdog = pid === undefined ? undefined : known(pid);
      },
      () => {},
    );
    void lr.exited.then((e) => {
      const key = e.code !== null ? String(e.code) : String(e.signal);
      res.exits[key] = (res.exits[key] ?? 0) + 1;
      if (c.lr === lr) setTimeout(() => spawn(c), 200);
    });
  }

  /** Every pair of lives in one slot from different trees that intersect, and the most alive at once. */
  function check(): void {
    tail.poll();
    const lives = [...tail.lives.values()].filter((l) => l.name === l.tree && l.started);
    const edges: Array<[number, number]> = [];
    for (const l of lives) edges.push([l.from, 1], [l.to, -1]);
    edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let n = 0;
    for (const [, d] of edges) res.mostAtOnce = Math.max(res.mostAtOnce, (n += d));
    const seen = new Set(res.sameSlot);
    const bySlot = new Map<string, Life[]>();
    for (const l of lives) bySlot.set(l.slot ?? '?', [...(bySlot.get(l.slot ?? '?') ?? []), l]);
    for (const [slot, ls] of bySlot) {
      ls.sort((a, b) => a.from - b.from);
      for (let i = 0; i < ls.length; i++)
        for (let j = i + 1; j < ls.length && ls[j]!.from < ls[i]!.to; j++) {
          const line = `slot ${slot}: ${ls[i]!.name} (pid ${ls[i]!.pid}) and ${ls[j]!.name} (pid ${ls[j]!.pid}) overlap ${(ls[i]!.to - ls[j]!.from).toFixed(1)}ms`;
          if (!seen.has(line)) {
            res.sameSlot.push(line);
            out(`OVERLAP ${line}`);
          }
        }
    }
  }

  async function adminWrite(slot: string, change: (lease: { metadata: Record<string, unknown>; spec: Record<string, unknown> }) => void): Promise<void> {
    const t = target(cluster!.info, 'admin');
    for (let i = 0; i < 10; i++) {
      const got = await apiRequest(t, 'GET', leasePath(slot));
      if (got.status !== 200) return;
      const lease = got.body as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
      change(lease);
      if ((await apiRequest(t, 'PUT', leasePath(slot), lease)).status !== 409) return;
    }
  }

  async function inject(kind: SlotFault, c: Candidate, life: Life): Promise<void> {
    const lr = c.lr!;
    const slot = life.slot ?? '0';
    switch (kind) {
      case 'sigterm':
      case 'sigkill':
        return lr.signal(kind === 'sigterm' ? 'SIGTERM' : 'SIGKILL');
      case 'freeze':
        lr.signal('SIGSTOP');
        await sleep(R_MS + 1500);
        return lr.signal('SIGCONT');
      case 'watchdog-kill':
        signalKnown(c.watchdog, 'SIGKILL');
        return;
      case 'blackhole':
        c.proxy.setMode('blackhole');
        await sleep(R_MS + 1000);
        return c.proxy.setMode('pass');
      case 'lease-delete':
        await apiRequest(target(cluster!.info, 'admin'), 'DELETE', leasePath(slot));
        return;
      case 'lease-overwrite':
        return adminWrite(slot, (l) => {
          l.spec['holderIdentity'] = 'admin';
          l.spec['renewTime'] = new Date().toISOString().replace('Z', '000Z');
        });
      case 'step-down':
        return adminWrite(slot, (l) => {
          const term = { holder: String(l.spec['holderIdentity'] ?? ''), transitions: Number(l.spec['leaseTransitions'] ?? 0) };
          l.metadata['annotations'] = { ...(l.metadata['annotations'] as object), [STEP_DOWN_ANNOTATION]: stepDownValue(term) };
        });
    }
  }

  try {
    cluster = await startCluster({ dir: path.join(dir, 'cluster') });
    const info = cluster.info;
    out(`slot chaos: seed ${opts.seed}, ${opts.rounds} rounds, ${opts.candidates} candidates on ${opts.slots} slots, work dir ${dir}`);
    for (let i = 0; i < opts.candidates; i++) {
      const proxy = await FaultProxy.start({ host: '127.0.0.1', port: info.apiserverPort });
      cands.push({
        index: i,
        proxy,
        kubeconfig: writeKubeconfig(info, `slots-c${i}`, { user: 'candidate', server: proxy.url }),
        gen: 0,
        lr: undefined,
        watchdog: undefined,
      });
    }
    for (const c of cands) spawn(c);
    for (let round = 1; round <= opts.rounds; round++) {
      if (opts.signal?.aborted) break;
      // A running child to attack (the first slots start only after the new-Lease hold).
      let running: Life[] = [];
      const until = monoNow() + 60_000;
      while ((running = tail.running(monoNow(), RUNNING_WITHIN_MS)).length === 0) {
        if (monoNow() > until) throw new Error(`round ${round}: no child running for 60 s`);
        check();
        await sleep(20);
      }
      await sleep(rng.between(200, 1200));
      check();
      running = tail.running(monoNow(), RUNNING_WITHIN_MS);
      const life = running[rng.below(running.length)];
      const c = life && cands.find((x) => life.tree === `c${x.index}.${x.gen}`);
      const kind = kinds[rng.below(kinds.length)]!;
      if (!life || !c?.lr) continue;
      out(`round ${round}: ${kind} to ${life.name} (slot ${life.slot}); running: ${running.map((l) => `${l.name}@${l.slot}`).join(' ')}`);
      await inject(kind, c, life);
      const end = monoNow() + 15_000;
      while (monoNow() < end && tail.running(monoNow(), RUNNING_WITHIN_MS).includes(life) && kind !== 'blackhole' && kind !== 'freeze') {
        check();
        await sleep(20);
      }
      check();
      res.rounds = round;
    }
    // Let the last round's slot be taken over (an expired or overwritten Lease waits out a
    // lease duration), so every Lease is free once all stop.
    const settleEnd = monoNow() + 6000;
    while (monoNow() < settleEnd) {
      check();
      await sleep(50);
    }
  } catch (e) {
    res.failed = e instanceof Error ? e.message : String(e);
    out(`FAILED: ${res.failed}`);
  } finally {
    stopping = true;
    for (const c of cands) c.proxy.setMode('pass');
    const live = cands.filter((c) => c.lr && c.lr.proc.exitCode === null && c.lr.proc.signalCode === null);
    for (const c of live) c.lr!.signal('SIGCONT');
    for (const c of live) c.lr!.signal('SIGTERM');
    for (const c of live) {
      const exited = await Promise.race([c.lr!.exited.then(() => true), sleep(30_000).then(() => false)]);
      if (!exited) {
        res.leftovers.push(`leader-run ${c.lr!.pid} still running 30 s after SIGTERM`);
        c.lr!.signal('SIGKILL');
      }
    }
    check();
    for (const life of tail.lives.values())
      for (const p of treeOf(life)) if (stillAlive(p.pid, p.start)) res.leftovers.push(`${p.what} ${p.pid} of ${life.name}`);
    const deadline = monoNow() + 2000;
    let ours = markedProcesses(marker);
    while (ours.length > 0 && monoNow() < deadline) {
      await sleep(50);
      ours = markedProcesses(marker);
    }
    for (const p of ours) {
      res.leftovers.push(`${p.what} ${p.pid}: ${p.cmd.slice(0, 100)}`);
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {}
    }
    if (cluster && !res.failed)
      for (let k = 0; k < opts.slots; k++) {
        const got = await apiRequest(target(cluster.info, 'admin'), 'GET', leasePath(String(k)));
        const holder = got.status === 200 ? ((got.body as { spec?: { holderIdentity?: string } }).spec?.holderIdentity ?? '') : '';
        if (holder) res.leasesHeld.push(`${LEASE}-${k} held by ${holder}`);
      }
    for (const c of cands) await c.proxy.close();
    await cluster?.stop();
    tail.close();
  }
  const clean = !res.failed && res.sameSlot.length === 0 && res.mostAtOnce <= opts.slots && res.leftovers.length === 0 && res.leasesHeld.length === 0;
  if (clean) fs.rmSync(dir, { recursive: true, force: true });
  return res;
}

/** The lines the run ends with; the last is the summary the test compares. */
export function slotReport(r: SlotChaosResult, slots: number): string[] {
  return [
    ...r.leftovers.map((l) => `LEFT OVER ${l}`),
    ...r.leasesHeld.map((l) => `LEASE HELD ${l}`),
    `exits: ${Object.entries(r.exits)
      .map(([k, v]) => `${v}×${k}`)
      .join(' ')}`,
    r.failed || r.sameSlot.length || r.leftovers.length || r.leasesHeld.length || r.mostAtOnce > slots ? `evidence kept in ${r.dir}` : 'work dir removed',
    `rounds=${r.rounds} slots=${slots} most_at_once=${r.mostAtOnce} same_slot_overlaps=${r.sameSlot.length} leftovers=${r.leftovers.length} leases_held=${r.leasesHeld.length}`,
  ];
}
