// `npm run demo`: leader-run's acceptance stories, live, on a private local control plane.
// Three candidates campaign for one Lease, each behind a fault proxy; the demo kills the
// leader (SIGKILL), stops the next one gracefully (SIGTERM) and cuts the third one's network,
// showing the Lease and the children as it goes, then proves from the children's own
// timestamps that no two ever ran at once. Exits 0 when every act went as the contract says,
// 1 otherwise, 130 when interrupted; everything it started is stopped and removed.
//
//   node scripts/demo.ts [--no-build]     --no-build: use dist/ as it is, even if older than
//                                         src/ (the e2e test does: it must not rewrite dist/
//                                         while other tests run it)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Cluster, ClusterInfo } from '../test/control-plane/cluster.ts';
import { apiRequest, buildControlPlane, startCluster, target, writeKubeconfig } from '../test/control-plane/cluster.ts';
import { FaultProxy } from '../test/control-plane/proxy.ts';
import { alive, intervals, type LogRecord, overlaps, readLedger } from '../test/support/leader-run.ts';
import { Candidate, type Exit } from './demo/candidate.ts';
import { Screen } from './demo/screen.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHILD = path.join(repo, 'scripts', 'demo', 'child.ts');
const LEASE = 'demo';
const NAMESPACE = 'default';
const D_MS = 6000;
const R_MS = 4000;
const P_MS = 1000;
const G_MS = 1000;
const TIMING = ['--lease-duration', '6s', '--renew-deadline', '4s', '--retry-period', '1s', '--fence-grace', '1s'];
/** How long the demo lets a leader's child work between acts, so there is something to see. */
const INTERLUDE_MS = 3000;
/** Any single step taking longer than this means something is wrong. */
const STEP_TIMEOUT_MS = 30_000;

let noBuild = false;
try {
  noBuild = parseArgs({ options: { 'no-build': { type: 'boolean', default: false } } }).values['no-build'] ?? false;
} catch (e) {
  console.error(`demo: ${(e as Error).message}\nusage: node scripts/demo.ts [--no-build]`);
  process.exit(64);
}

const screen = new Screen();
const say = (line: string): void => screen.log(line);
const bold = (s: string): string => screen.paint('1', s);
const red = (s: string): string => screen.paint('31', s);
const green = (s: string): string => screen.paint('32', s);
const dim = (s: string): string => screen.paint('2', s);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
/** Short spans in ms, where "0.0 s" would hide what happened. */
const dur = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : secs(ms));

/** What went against the contract; any entry makes the demo fail. */
const problems: string[] = [];
function problem(msg: string): void {
  problems.push(msg);
  say(red(`✖ ${msg}`));
}

// ---------------------------------------------------------------------------
// Interruption: the first Ctrl-C stops the acts and cleans up; a second one exits at once
// (the spawn guards still kill everything we started).

const ac = new AbortController();
let interrupted: NodeJS.Signals | undefined;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = sig;
    ac.abort();
    screen.clear();
    say(`${sig}: stopping everything and cleaning up`);
  });
}

class Aborted extends Error {}
/** Something already reported as a problem ended the acts early. */
class Broken extends Error {}
let broken = false;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ac.signal.aborted) return reject(new Aborted());
    const t = setTimeout(() => {
      ac.signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new Aborted());
    };
    ac.signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Polls `get` until it returns a value; throws after `ms` or on interruption. */
async function waitFor<T>(what: string, ms: number, get: () => T | undefined | false): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    if (broken) throw new Broken();
    const v = get();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > end) throw new Error(`timed out after ${secs(ms)} waiting for ${what}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------
// Preparation: leader-run's build, the control plane's binaries, the cluster

function newestMtime(dir: string, ext: string): number {
  if (!fs.existsSync(dir)) return 0;
  return Math.max(
    0,
    ...fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith(ext))
      .map((e) => fs.statSync(path.join(e.parentPath, e.name)).mtimeMs),
  );
}

/** The module bin/leader-run.js loads, so "missing" follows the launcher wherever the build puts it. */
function builtEntry(): string {
  const bin = fs.readFileSync(path.join(repo, 'bin', 'leader-run.js'), 'utf8');
  const target = /import\(\s*['"](\.\.\/dist\/[^'"]+)['"]\s*\)/.exec(bin)?.[1];
  return path.resolve(repo, 'bin', target ?? '../dist/cli.js');
}

function ensureBuilt(): void {
  const entry = builtEntry();
  const stale = !fs.existsSync(entry) || newestMtime(path.join(repo, 'src'), '.ts') > newestMtime(path.join(repo, 'dist'), '.js');
  if (!stale) return;
  if (noBuild) {
    if (!fs.existsSync(entry)) throw new Error(`${path.relative(repo, entry)} is missing and --no-build was given: run \`npm run build\``);
    say(red('warning: src/ is newer than dist/ (--no-build): the demo runs the last build'));
    return;
  }
  // Exactly what `npm run build` runs (npm puts node_modules/.bin first on PATH), without
  // needing npm itself.
  const script = (JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts?.['build'];
  if (!script) throw new Error('package.json has no build script');
  say(`building leader-run (dist/ is missing or older than src/): ${script}`);
  const bin = path.join(repo, 'node_modules', '.bin');
  const built = spawnSync('/bin/sh', ['-c', script], {
    cwd: repo,
    stdio: 'inherit',
    env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env['PATH'] ?? ''}` },
  });
  if (built.status !== 0) throw new Error(`building leader-run failed (${script}: ${built.signal ?? `exit ${built.status}`})`);
  if (!fs.existsSync(entry)) throw new Error(`building leader-run did not produce ${path.relative(repo, entry)}`);
}

async function controlPlaneBinaries(): Promise<string> {
  const t0 = performance.now();
  // A warm cache answers at once; a cold build takes minutes, so say it is still going.
  const progress = setInterval(() => {
    say(`still building the control plane (${secs(performance.now() - t0)} so far; a cold build takes about 3 minutes)…`);
  }, 20_000);
  const first = setTimeout(() => say('building etcd and kube-apiserver from source (first run only; about 3 minutes)…'), 1500);
  try {
    return await buildControlPlane();
  } finally {
    clearInterval(progress);
    clearTimeout(first);
  }
}

// ---------------------------------------------------------------------------
// The candidates and what they say

const tagColor = ['36', '35', '33'];
let candidates: Candidate[] = [];
const tag = (c: Candidate): string => screen.paint(tagColor[candidates.indexOf(c)] ?? '0', c.name);
/** The holder last announced as new leader, so three candidates seeing it print it once. */
let announced = '';

function short(s: unknown, n = 110): string {
  const t = String(s ?? '');
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

function describe(c: Candidate, rec: LogRecord): string | undefined {
  switch (rec.event) {
    case 'renewed':
      return undefined;
    case 'campaigning':
      return 'campaigning for the Lease';
    case 'new-leader': {
      const holder = String(rec['holder'] ?? '');
      if (holder === announced) return undefined;
      announced = holder;
      return `sees a new leader: ${holder || '(none)'}`;
    }
    case 'started-leading':
      announced = c.name;
      return bold(`★ started leading (fencing token ${String(rec['token'])})`);
    case 'child-started':
      return `child started (pid ${String(rec['pid'])})`;
    case 'stopped-leading':
      return red(`✖ ${short(rec.msg)}`);
    case 'renew-failed':
      return short(rec.msg, 90);
    default:
      if (rec.event || rec.level === 'warn' || rec.level === 'error') return short(rec.msg);
      return undefined;
  }
}

function makeCandidate(info: ClusterInfo, name: string, proxy: FaultProxy, ledger: string): Candidate {
  const kubeconfig = writeKubeconfig(info, name, { user: 'candidate', server: proxy.url });
  const argv = [
    '--log-format',
    'json',
    '--kubeconfig',
    kubeconfig,
    '--lock-name',
    LEASE,
    '--lock-namespace',
    NAMESPACE,
    '--id',
    name,
    ...TIMING,
    '--',
    process.execPath,
    CHILD,
    ledger,
  ];
  return new Candidate(name, proxy, argv, {
    onRecord: (c, rec) => {
      const line = describe(c, rec);
      if (line) say(`${tag(c)}  ${line}`);
    },
    onChildLine: (c, line) => say(`${tag(c)}  ${dim('│ child:')} ${line}`),
    onOtherLine: (c, line) => say(`${tag(c)}  ${dim(line)}`),
    onExit: (c, exit) => {
      say(`${tag(c)}  leader-run exited (${exitText(exit)})`);
      if (c.runs.at(-1)?.exit === exit && !c.runs.at(-1)!.exitExpected && !interrupted) {
        // Nothing in the story makes it exit now: waiting for the next act would only time out.
        problem(`${c.name}'s leader-run exited unexpectedly (${exitText(exit)})`);
        broken = true;
      }
    },
  });
}

function exitText(e: Exit | undefined): string {
  if (!e) return 'still running';
  return e.signal ? `killed by ${e.signal}` : `status ${e.code}`;
}

/** The candidate that started leading at or after `since` (other than `except`), once its child runs. */
async function nextLeader(since: number, except?: Candidate): Promise<{ c: Candidate; ledAt: number; childAt: number }> {
  const c = await waitFor('a new leader', STEP_TIMEOUT_MS, () => candidates.find((x) => x !== except && x.run?.leading && (x.run.ledAt ?? -1) >= since));
  const run = c.run!;
  const childAt = await waitFor(`${c.name}'s child to start`, STEP_TIMEOUT_MS, () => run.childAt);
  return { c, ledAt: run.ledAt!, childAt };
}

async function exitOf(c: Candidate, what: string): Promise<Exit> {
  const run = c.run!;
  return waitFor(`${c.name} to exit after ${what}`, STEP_TIMEOUT_MS, () => run.exit);
}

// ---------------------------------------------------------------------------
// The live Lease table

interface LeaseSpec {
  holderIdentity?: string;
  leaseTransitions?: number;
  renewTime?: string;
  acquireTime?: string;
  leaseDurationSeconds?: number;
}

let lease: LeaseSpec | null | undefined; // undefined: not read yet; null: no Lease object
let leaseError = '';
let clusterInfo: ClusterInfo | undefined;
const LEASE_PATH = `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${LEASE}`;

async function getLease(): Promise<LeaseSpec | undefined> {
  const r = await apiRequest(target(clusterInfo!, 'admin'), 'GET', LEASE_PATH, undefined, { signal: AbortSignal.timeout(5000) });
  return r.status === 200 ? ((r.body?.spec ?? {}) as LeaseSpec) : undefined;
}

/**
 * From the Lease's own timestamps: how long after the old holder's last renewal the new one
 * acquired it. Less than the lease duration would mean it did not wait for expiry.
 */
function sinceLastRenewal(before: LeaseSpec | undefined, old: string, after: LeaseSpec | undefined, next: string): string {
  if (before?.holderIdentity !== old || after?.holderIdentity !== next || !before.renewTime || !after.acquireTime) {
    problem(`could not read the Lease around the takeover (before: ${before?.holderIdentity ?? '-'}, after: ${after?.holderIdentity ?? '-'})`);
    return '';
  }
  const gap = Date.parse(after.acquireTime) - Date.parse(before.renewTime);
  // Both timestamps come from this host's clock; a few ms cover the MicroTime rounding.
  if (gap < D_MS - 5) problem(`${next} acquired the Lease only ${dur(gap)} after ${old}'s last renewal: before it expired`);
  return `${(gap / 1000).toFixed(2)} s after ${old}'s last renewal`;
}

function clock(iso: string | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function render(): void {
  const running = candidates.flatMap((c) => c.runs.filter((r) => r.childRunning()).map((r) => `${c.name} (pid ${r.childPid})`));
  const child = running.length === 0 ? 'none' : running.length === 1 ? running[0]! : red(`${running.join(' + ')} ⚠`);
  const holder = lease ? lease.holderIdentity || '(free)' : lease === null ? '(no Lease yet)' : '…';
  const transitions = lease?.leaseTransitions !== undefined ? String(lease.leaseTransitions) : '-';
  const renewed = lease?.renewTime ? `${Math.max(0, Date.now() - Date.parse(lease.renewTime))} ms ago` : '-';
  const acquired = clock(lease?.acquireTime);
  const cols = (xs: string[]): string => xs.map((x, i) => x.padEnd([6, 13, 12, 13, 14][i] ?? 0)).join(' ');
  const status = candidates
    .map((c) => {
      const run = c.run;
      let s = !run ? 'not started' : run.exit ? `exited (${exitText(run.exit)})` : run.leading ? bold('LEADING') : 'following';
      if (c.proxy.mode !== 'pass') s += red(` [network ${c.proxy.mode === 'blackhole' ? 'cut' : c.proxy.mode}]`);
      return `${tag(c)} ${s}`;
    })
    .join(dim(' · '));
  const lines = [
    dim(`${cols(['NAME', 'HOLDER', 'TRANSITIONS', 'RENEWED', 'ACQUIRED'])} CHILD RUNNING`),
    `${cols([LEASE, holder, transitions, renewed, acquired])} ${child}`,
    `${status}${leaseError ? red(`  (reading the Lease: ${leaseError})`) : ''}`,
  ];
  const key = [holder, transitions, lease?.acquireTime, running.join(','), leaseError].join('|');
  const flat = `lease ${LEASE}: holder=${holder} transitions=${transitions} renewed=${renewed.replace(/ ms ago$/, 'ms')} acquired=${acquired} child=${running.join('+') || 'none'}${leaseError ? ` error=${leaseError}` : ''}`;
  screen.table(lines, key, flat);
}

function watchLease(info: ClusterInfo): { stop: () => void; final: () => Promise<void> } {
  const admin = target(info, 'admin');
  let busy = false;
  const poll = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const r = await apiRequest(admin, 'GET', LEASE_PATH, undefined, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) [lease, leaseError] = [(r.body?.spec ?? {}) as LeaseSpec, ''];
      else if (r.status === 404) [lease, leaseError] = [null, ''];
      else leaseError = `HTTP ${r.status}`;
    } catch (e) {
      leaseError = (e as Error).message;
    } finally {
      busy = false;
    }
    render();
  };
  const timer = setInterval(() => void poll(), 250);
  void poll();
  return {
    stop: () => clearInterval(timer),
    // One more read after stopping, so the table ends on the Lease's final state.
    final: async () => {
      clearInterval(timer);
      while (busy) await new Promise((r) => setTimeout(r, 10));
      await poll();
    },
  };
}

// ---------------------------------------------------------------------------
// The acts

const summary: string[] = [];

function narrate(title: string, text: string): void {
  say('');
  say(`${bold(`▶ ${title}`)} — ${text}`);
}

/** Its supervisor (a Deployment, systemd) would restart a candidate that exited. */
function restart(c: Candidate, why: string): void {
  say(`${tag(c)}  restarting ${why}, as its supervisor would`);
  c.start();
}

async function act1(): Promise<Candidate> {
  narrate('Act 1: one acquires', `three candidates campaign for Lease ${NAMESPACE}/${LEASE}; exactly one wins and runs its child.`);
  const t0 = performance.now();
  for (const c of candidates) c.start();
  const { c, ledAt, childAt } = await nextLeader(t0);
  summary.push(`Act 1  ${c.name} acquired the Lease ${secs(ledAt - t0)} after the candidates started; its child started ${dur(childAt - ledAt)} later`);
  await sleep(INTERLUDE_MS);
  return c;
}

async function act2(leader: Candidate): Promise<Candidate> {
  narrate(
    'Act 2: kill the leader',
    `SIGKILL ${leader.name}'s leader-run. It cannot clean up: its watchdog kills the child, and the Lease stays ` +
      `${leader.name}'s until it expires (${secs(D_MS)} without renewal); then another candidate takes over.`,
  );
  const run = leader.run!;
  const childPid = run.childPid!;
  const t0 = performance.now();
  run.exitExpected = true;
  run.kill('SIGKILL');
  await waitFor(`${leader.name}'s child to be gone`, D_MS + STEP_TIMEOUT_MS, () => !alive(childPid));
  const goneMs = performance.now() - t0;
  say(`${tag(leader)}  its child (pid ${childPid}) is gone ${dur(goneMs)} after leader-run was killed: the watchdog stopped it`);
  if (goneMs > D_MS) problem(`${leader.name}'s child outlived the lease: gone ${secs(goneMs)} after its leader-run was killed`);
  const before = await getLease(); // its last renewal: nobody renews for it any more
  const next = await nextLeader(t0, leader);
  const takeover = next.ledAt - t0;
  const expiry = sinceLastRenewal(before, leader.name, await getLease(), next.c.name);
  say(green(`⇒ ${next.c.name} took over ${dur(takeover)} after the kill, ${expiry} (lease duration ${secs(D_MS)})`));
  summary.push(
    `Act 2  SIGKILL ${leader.name}: child gone after ${dur(goneMs)}; ${next.c.name} took over after ${dur(takeover)}, ` +
      `${expiry} (lease duration ${secs(D_MS)})`,
  );
  await exitOf(leader, 'SIGKILL');
  restart(leader, 'after being killed');
  await sleep(INTERLUDE_MS);
  return next.c;
}

async function act3(leader: Candidate): Promise<Candidate> {
  narrate(
    'Act 3: graceful handover',
    `SIGTERM ${leader.name} (a rolling update, say). It stops its child first, then releases the Lease, ` +
      `so the next candidate takes over at once instead of waiting ${secs(D_MS)}.`,
  );
  const run = leader.run!;
  const t0 = performance.now();
  run.exitExpected = true;
  run.kill('SIGTERM');
  const next = await nextLeader(t0, leader);
  const takeover = next.ledAt - t0;
  say(green(`⇒ ${next.c.name} took over ${dur(takeover)} after the SIGTERM`));
  const exit = await exitOf(leader, 'SIGTERM');
  // Its child exits 0 on SIGTERM; a voluntary stop passes the child's status on.
  if (exit.code !== 0) problem(`${leader.name} exited with ${exitText(exit)} after SIGTERM; expected its child's status 0`);
  const events = run.records.map((r) => r.event);
  const gone = events.indexOf('child-gone');
  const released = events.indexOf('released');
  if (gone < 0 || released < 0 || gone > released)
    problem(`${leader.name} did not stop its child and then release the Lease (events: ${events.filter(Boolean).join(', ')})`);
  if (takeover >= D_MS) problem(`the handover took ${secs(takeover)}: no faster than waiting for the Lease to expire, so the release did not work`);
  summary.push(
    `Act 3  SIGTERM ${leader.name}: child stopped, Lease released, ${next.c.name} took over after ${dur(takeover)} (${leader.name} exited ${exitText(exit)})`,
  );
  restart(leader, 'after its graceful exit');
  await sleep(INTERLUDE_MS);
  return next.c;
}

async function act4(leader: Candidate): Promise<Candidate> {
  narrate(
    'Act 4: cut the network',
    `${leader.name}'s proxy now drops all its traffic. It cannot renew, so it gives up after the renew deadline ` +
      `(${secs(R_MS)}), stops its child and exits 75; another candidate takes over once the Lease expires.`,
  );
  const run = leader.run!;
  const childPid = run.childPid!;
  const t0 = performance.now();
  run.exitExpected = true; // with 75, once it has given up
  leader.proxy.setMode('blackhole');
  const lostAt = await waitFor(`${leader.name} to give up leading`, R_MS + STEP_TIMEOUT_MS, () => run.lostAt);
  await waitFor(`${leader.name}'s child to be gone`, STEP_TIMEOUT_MS, () => !alive(childPid));
  const goneMs = performance.now() - t0;
  const before = await getLease(); // it gave up: it writes no more
  const next = await nextLeader(t0, leader);
  const takeover = next.ledAt - t0;
  const expiry = sinceLastRenewal(before, leader.name, await getLease(), next.c.name);
  say(green(`⇒ ${next.c.name} took over ${dur(takeover)} after the cut, ${expiry} (lease duration ${secs(D_MS)})`));
  const exit = await exitOf(leader, 'losing the Lease');
  if (exit.code !== 75) problem(`${leader.name} exited with ${exitText(exit)} after losing the Lease; expected 75`);
  if (lostAt - t0 > R_MS + 1000) problem(`${leader.name} gave up ${secs(lostAt - t0)} after the cut; the renew deadline is ${secs(R_MS)}`);
  summary.push(
    `Act 4  network cut ${leader.name}: gave up after ${secs(lostAt - t0)}, child gone after ${dur(goneMs)}, ` +
      `exited ${exitText(exit)}; ${next.c.name} took over after ${dur(takeover)}, ${expiry}`,
  );
  say(`${tag(leader)}  network restored`);
  leader.proxy.setMode('pass');
  restart(leader, 'after exiting 75');
  await sleep(INTERLUDE_MS);
  return next.c;
}

async function finale(leader: Candidate, info: ClusterInfo): Promise<void> {
  narrate('The end', 'SIGTERM every candidate: the leader stops its child and releases the Lease; the others just leave.');
  const running = candidates.filter((c) => c.running);
  for (const c of running) {
    c.run!.exitExpected = true;
    c.run!.kill('SIGTERM');
  }
  for (const c of running) {
    const exit = await exitOf(c, 'SIGTERM');
    // The leader passes on its child's 0; the others never ran a child: 128 + SIGTERM.
    const want = c === leader ? 0 : 143;
    if (exit.code !== want) problem(`${c.name} exited with ${exitText(exit)} after SIGTERM; expected status ${want}`);
  }
  const r = await apiRequest(target(info, 'admin'), 'GET', LEASE_PATH);
  const holder = r.body?.spec?.holderIdentity as string | undefined;
  if (r.status !== 200 || holder) problem(`the Lease was not left free at the end (HTTP ${r.status}, holder ${holder ?? '-'})`);
  else say('the Lease is free again');
}

/** Proof from the children's own timestamps (the host's monotonic clock). */
function verifyLedger(ledger: string): void {
  const lines = readLedger(ledger);
  const lives = intervals(lines);
  const tokens = lines.filter((l) => l.ev === 'start').map((l) => Number(l['token']));
  const clash = overlaps(lines);
  const gaps = lives.slice(1).map((b, i) => b.from - lives[i]!.to);
  if (lives.length < 4) problem(`expected at least 4 children (one per leader), the ledger shows ${lives.length}`);
  if (clash.length > 0) {
    for (const o of clash) problem(`children ${o.a} and ${o.b} ran at the same time for ${o.ms.toFixed(1)} ms`);
  } else if (lives.length > 0) {
    summary.push(
      `Children: ${lives.length} ran (${lives.map((l) => l.name).join(' → ')}), one at a time: ` +
        `no two children ever ran at once (closest handover: ${Math.min(...gaps).toFixed(0)} ms between one's last and the next's first sign of life)`,
    );
  }
  if (tokens.some((t, i) => i > 0 && !(t > tokens[i - 1]!))) problem(`fencing tokens did not strictly increase: ${tokens.join(', ')}`);
  else summary.push(`Fencing tokens: ${tokens.join(' < ')}`);
  const left = lives.filter((l) => alive(l.pid));
  if (left.length > 0) problem(`children still running after the end: ${left.map((l) => l.pid).join(', ')}`);
}

// ---------------------------------------------------------------------------

async function main(): Promise<number> {
  const t0 = performance.now();
  say(`${bold('leader-run demo')}: three candidates, one Lease, three ways to lose a leader.`);
  say(dim(`timings: ${TIMING.join(' ')}  (D=${secs(D_MS)} R=${secs(R_MS)} P=${secs(P_MS)} G=${secs(G_MS)})`));
  let cluster: Cluster | undefined;
  const proxies: FaultProxy[] = [];
  let watch: ReturnType<typeof watchLease> | undefined;
  let info: ClusterInfo | undefined;
  try {
    ensureBuilt();
    const binDir = await controlPlaneBinaries();
    if (ac.signal.aborted) throw new Aborted();
    say('starting a private control plane (etcd + kube-apiserver on 127.0.0.1)…');
    cluster = await startCluster({ binDir });
    info = cluster.info;
    clusterInfo = info;
    if (ac.signal.aborted) throw new Aborted();
    say(`control plane up at ${info.server} in ${secs(info.startup.totalMs)} (in ${info.dir})`);
    const ledger = path.join(info.dir, 'demo-ledger.jsonl');
    for (let i = 1; i <= 3; i++) proxies.push(await FaultProxy.start({ host: '127.0.0.1', port: info.apiserverPort }));
    candidates = proxies.map((p, i) => makeCandidate(info!, `candidate-${i + 1}`, p, ledger));
    watch = watchLease(info);

    const tActs = performance.now();
    let leader = await act1();
    leader = await act2(leader);
    leader = await act3(leader);
    leader = await act4(leader);
    await finale(leader, info);
    await watch.final();
    screen.close();
    verifyLedger(ledger);
    summary.push(`Time: ${secs(performance.now() - tActs)} for the acts, ${secs(performance.now() - t0)} in all`);
  } catch (e) {
    // Once interrupted, whatever failed next is a consequence, not news.
    if (!(e instanceof Aborted) && !(e instanceof Broken) && !interrupted) problem((e as Error).message);
  } finally {
    watch?.stop();
    screen.close();
    await cleanup(cluster, proxies);
  }
  if (interrupted) return 130;

  console.log('');
  console.log(bold('Summary'));
  for (const line of summary) console.log(`  ${line}`);
  if (problems.length > 0) {
    console.log(red(`  Result: FAILED — ${problems.length} problem(s):`));
    for (const p of problems) console.log(red(`    - ${p}`));
    return 1;
  }
  console.log(green('  Result: OK — every act went as the contract says; everything was stopped and removed.'));
  return 0;
}

/** Stops whatever is still running, waits for the children to be gone, removes the cluster. */
async function cleanup(cluster: Cluster | undefined, proxies: FaultProxy[]): Promise<void> {
  for (const c of candidates)
    if (c.running) {
      c.run!.exitExpected = true;
      c.run!.kill('SIGKILL');
    }
  // Each watchdog fences its child as soon as its leader-run is gone; give it the grace.
  const end = performance.now() + 10_000;
  while (performance.now() < end && candidates.some((c) => c.running || c.runs.some((r) => r.childRunning()))) {
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const c of candidates)
    for (const r of c.runs)
      if (r.childRunning()) {
        problem(`${c.name}'s child (pid ${r.childPid}) was still running at cleanup; killed its process group`);
        try {
          process.kill(-r.childPid!, 'SIGKILL');
        } catch {}
      }
  await Promise.all(proxies.map((p) => p.close()));
  await cluster?.stop();
  // The spawn guards' watchers notice within a second that their program is gone; wait for
  // them too, so that nothing naming our directory is left when we exit.
  const dir = cluster?.info.dir;
  const until = performance.now() + 3000;
  while (dir && performance.now() < until && processesNaming(dir) > 0) await new Promise((r) => setTimeout(r, 100));
}

/** How many processes have `text` in their command line (0 where there is no /proc). */
function processesNaming(text: string): number {
  let n = 0;
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {}
  for (const pid of pids) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)) n++;
    } catch {}
  }
  return n;
}

process.exitCode = await main();
