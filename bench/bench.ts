// `npm run bench [-- --quick | flags]`: leader-run and the client-go peer side by side on a
// private local control plane; prints a markdown table and writes bench/results.json.
// Figures, not assertions: the table says whether leader-run meets each target.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Cluster, spawnGuarded, startCluster } from '../test/control-plane/cluster.ts';
import { cgroupProblem } from '../test/support/cgroup.ts';
import { Group, type Slot, type Timing } from './candidates.ts';
import { rssKiB } from './procs.ts';
import { report } from './report.ts';
import {
  type Ctx,
  crashFailovers,
  createFreeLease,
  execToLeading,
  handoffs,
  makeSlot,
  manyCandidates,
  memoryFootprint,
  steadyState,
  stepDowns,
} from './scenarios.ts';
import { summarize } from './stats.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SCENARIOS = ['exec', 'memory', 'steady', 'handoff', 'step-down', 'crash', 'many'] as const;
type Scenario = (typeof SCENARIOS)[number];

const USAGE = `usage: npm run bench -- [--quick] [flags]
  --quick               a ~2 minute smoke run (fewer samples, shorter windows, 10 candidates for "many")
  --exec N              exec → leading trials per implementation (default 10)
  --memory-settle S     steady state before the memory cgroups are read, in seconds (default 60)
  --steady S            steady-state window in seconds, ≥ 30 for the CPU figure (default 60)
  --warm S              settling time before the steady-state window (default 10)
  --handoffs N          graceful handoffs per implementation (default 15)
  --step-downs N        leader-run step-down → next child running (default 15; client-go has none)
  --crashes N           crash failovers per implementation, ~20 s each, run side by side (default 4)
  --many N              candidates on one Lease for the "many" figures (default 50)
  --many-window S       their steady-state window in seconds (default 30)
  --many-handoffs N     their graceful handoffs (default 5)
  --only LIST           some of ${SCENARIOS.join(',')}
  --timing D/R/P        lease duration / renew deadline / retry period (default 15s/10s/2s)
  --compile-cache       keep Node's compile cache on (off by default: a Pod's first run has none)
  --out FILE            JSON results (default bench/results.json)`;

function usage(msg: string): never {
  console.error(`bench: ${msg}\n${USAGE}`);
  process.exit(64);
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      exec: { type: 'string' },
      steady: { type: 'string' },
      'memory-settle': { type: 'string' },
      warm: { type: 'string' },
      handoffs: { type: 'string' },
      'step-downs': { type: 'string' },
      crashes: { type: 'string' },
      many: { type: 'string' },
      'many-window': { type: 'string' },
      'many-handoffs': { type: 'string' },
      only: { type: 'string' },
      timing: { type: 'string', default: '15s/10s/2s' },
      'compile-cache': { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(repo, 'bench', 'results.json') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (e) {
  usage((e as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const quick = values.quick === true;
function count(flag: string, normal: number, fast: number, min = 0): number {
  const raw = values[flag];
  const n = raw === undefined ? (quick ? fast : normal) : Number(raw);
  if (!Number.isFinite(n) || n < min) usage(`--${flag} must be a number ≥ ${min}, not ${raw}`);
  return n;
}
const opts = {
  exec: count('exec', 10, 3),
  steadyS: count('steady', 60, 30, 1),
  memorySettleS: count('memory-settle', 60, 20, 1),
  warmS: count('warm', 10, 5),
  handoffs: count('handoffs', 15, 4),
  stepDowns: count('step-downs', 15, 4),
  crashes: count('crashes', 4, 1),
  many: count('many', 50, 10, 2),
  manyWindowS: count('many-window', 30, 10, 1),
  manyHandoffs: count('many-handoffs', 5, 2),
};
const only = new Set<Scenario>(((values.only as string | undefined)?.split(',').filter(Boolean) ?? [...SCENARIOS]) as Scenario[]);
for (const s of only) if (!SCENARIOS.includes(s)) usage(`unknown scenario ${s}`);

function durationMs(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s);
  if (!m) usage(`not a duration: ${s} (e.g. 15s, 500ms)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
}
const [d, r, p] = String(values.timing).split('/');
if (!d || !r || !p) usage(`--timing wants D/R/P, e.g. 15s/10s/2s`);
const timing: Timing = { leaseDuration: d, renewDeadline: r, retryPeriod: p, leaseDurationMs: durationMs(d) };
durationMs(r);
durationMs(p);

// The CLI runs dist/: measuring a stale build would measure old code.
const newest = (dir: string): number =>
  Math.max(
    0,
    ...fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => fs.statSync(path.join(e.parentPath, e.name)).mtimeMs),
  );
const built = path.join(repo, 'dist', 'cli.js');
if (!fs.existsSync(built)) usage('dist/ is missing: run `npm run build` first');
if (newest(path.join(repo, 'src')) > fs.statSync(built).mtimeMs)
  console.error('bench: warning: src/ is newer than dist/ — run `npm run build` to measure the current code');

// What a Pod's environment has not: a host's NODE_EXTRA_CA_CERTS (this VM's names its whole
// CA bundle) makes every Node process parse those certificates at its first TLS context,
// ~15 ms of exec → child that a Pod does not pay. Cleared for every candidate, and said so.
const extraCaCerts = process.env['NODE_EXTRA_CA_CERTS'];
delete process.env['NODE_EXTRA_CA_CERTS'];
// Nor has a Pod's container a compile cache from an earlier run (its /tmp starts empty): the
// candidates run without it, or every run after the first would skip compiling (~7 ms).
const compileCache = values['compile-cache'] === true;
if (!compileCache) process.env['NODE_DISABLE_COMPILE_CACHE'] = '1';

const t0 = Date.now();
const progress = (line: string): void => console.error(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${line}`);
const results: Record<string, unknown> = {
  started: new Date(t0).toISOString(),
  options: { ...opts, only: [...only], timing: values.timing, quick },
  environment: {
    node: process.version,
    cpus: os.cpus().length,
    loadavgStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    commit: gitDescribe(),
    distBuilt: fs.statSync(built).mtime.toISOString(),
    ...(extraCaCerts !== undefined && { clearedNodeExtraCaCerts: extraCaCerts }),
    compileCache,
  },
};
const writeResults = (): void => {
  fs.mkdirSync(path.dirname(String(values.out)), { recursive: true });
  fs.writeFileSync(String(values.out), `${JSON.stringify(results, null, 2)}\n`);
};

function gitDescribe(): string {
  try {
    const head = execFileSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', repo, 'status', '--porcelain', 'src'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} + uncommitted src/ changes` : head;
  } catch {
    return 'unknown';
  }
}

/** The pins the control plane and the peer are built from (the binaries say v0.0.0-master). */
function goPins(): { kubernetes?: string; clientGo?: string } {
  const mod = fs.readFileSync(path.join(repo, 'test', 'control-plane', 'go.mod'), 'utf8');
  return { kubernetes: /^\s*k8s\.io\/kubernetes (v\S+)/m.exec(mod)?.[1], clientGo: /^\s*k8s\.io\/client-go (v\S+)/m.exec(mod)?.[1] };
}

/** A bare Node's idle RSS and exec → exit time on this host, to put leader-run's in scale. */
async function nodeBaseline(): Promise<{ idleRssKiB: number | undefined; startExitMs: number | undefined }> {
  const idle = spawnGuarded(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000));
  const idleRssKiB = rssKiB(idle.pid!);
  idle.kill('SIGKILL');
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const p = spawnGuarded(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => p.once('exit', r));
    times.push(performance.now() - t);
  }
  return { idleRssKiB, startExitMs: summarize(times)?.p50 };
}

// Everything we start is spawnGuarded, and the control plane's exit handler kills it all
// (and removes the cluster's temp dir) when this process exits: so an interrupt only has
// to save what was measured and exit.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\nbench: ${sig}: stopping everything it started; partial results in ${values.out}`);
    results.interrupted = sig;
    writeResults();
    process.exit(130);
  });
}

// Guarded processes are unref'd, so waiting on one alone would let Node exit mid-run.
setInterval(() => {}, 1 << 30);
let cluster: Cluster | undefined;
let status = 0;
try {
  progress('starting a private control plane');
  cluster = await startCluster();
  const info = cluster.info;
  Object.assign(results.environment as Record<string, unknown>, goPins(), { baseline: await nodeBaseline() });
  const ctx: Ctx = { info, binDir: info.binDir, dir: info.dir, timing, progress };

  const needGroups = only.has('steady') || only.has('handoff') || only.has('step-down') || only.has('crash');
  const lrSlots = needGroups ? await Promise.all([1, 2, 3].map((i) => makeSlot(ctx, `lr-${i}`))) : [];
  const cgSlots = needGroups ? await Promise.all([1, 2, 3].map((i) => makeSlot(ctx, `cg-${i}`))) : [];
  const lr = new Group(ctx, 'leader-run', 'bench-lr', lrSlots);
  const cg = new Group(ctx, 'client-go', 'bench-cg', cgSlots);

  if (only.has('exec') && opts.exec > 0) {
    const [lrExec, cgExec] = [await makeSlot(ctx, 'lr-exec'), await makeSlot(ctx, 'cg-exec')];
    results.exec = {
      'leader-run': await execToLeading(ctx, 'leader-run', lrExec, opts.exec),
      'client-go': await execToLeading(ctx, 'client-go', cgExec, opts.exec),
    };
    writeResults();
  }
  if (only.has('memory')) {
    const problem = cgroupProblem();
    if (problem) throw new Error(`memory: ${problem} (or leave it out: --only exec,steady,handoff,crash,many)`);
    const pair = async (p: string): Promise<[Slot, Slot]> => [await makeSlot(ctx, `${p}-mem-1`), await makeSlot(ctx, `${p}-mem-2`)];
    results.memory = {
      'leader-run': await memoryFootprint(ctx, 'leader-run', await pair('lr'), opts.memorySettleS * 1000),
      'client-go': await memoryFootprint(ctx, 'client-go', await pair('cg'), opts.memorySettleS * 1000),
    };
    writeResults();
  }
  if (needGroups) {
    if (only.has('steady')) {
      results.steady = await steadyState(ctx, [lr, cg], opts.warmS * 1000, opts.steadyS * 1000);
      writeResults();
    } else {
      for (const g of [lr, cg]) await createFreeLease(info, g.lease);
      for (const g of [lr, cg]) for (const s of g.slots) g.spawn(s);
    }
    if (only.has('handoff') && opts.handoffs > 0) {
      results.handoff = {
        'leader-run': await handoffs(ctx, lr, opts.handoffs, 1500),
        'client-go': await handoffs(ctx, cg, opts.handoffs, 1500),
      };
      writeResults();
    }
    if (only.has('step-down') && opts.stepDowns > 0) {
      // client-go has no step-down: its nearest is the SIGTERM handoff above, in the same run.
      results.stepDown = { 'leader-run': await stepDowns(ctx, lr, opts.stepDowns, 1500) };
      writeResults();
    }
    if (only.has('crash') && opts.crashes > 0) {
      const byGroup = await crashFailovers(ctx, [lr, cg], opts.crashes, 1500);
      results.crash = { 'leader-run': byGroup.get(lr), 'client-go': byGroup.get(cg) };
      writeResults();
    }
    await Promise.all([lr.stopAll(), cg.stopAll()]);
    for (const s of [...lrSlots, ...cgSlots]) await s.counter?.close();
  }
  if (only.has('many')) {
    const m = { warmMs: 5000, windowMs: opts.manyWindowS * 1000, handoffs: opts.manyHandoffs, settleMs: 2000 };
    results.many = {
      'leader-run': await manyCandidates(ctx, 'leader-run', opts.many, m),
      'client-go': await manyCandidates(ctx, 'client-go', opts.many, m),
    };
  }
} catch (e) {
  console.error(`bench: failed: ${e instanceof Error ? e.message : String(e)}`);
  results.error = e instanceof Error ? e.message : String(e);
  status = 1;
} finally {
  (results.environment as Record<string, unknown>).loadavgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  results.durationS = Math.round((Date.now() - t0) / 1000);
  writeResults();
  await cluster?.stop();
}
console.log(report(results, timing).join('\n'));
console.error(`bench: ${results.durationS}s; results in ${path.relative(process.cwd(), String(values.out)) || values.out}`);
// Connection counters and stray timers must not keep the process up.
process.exit(status);
