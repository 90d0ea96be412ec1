// A real single node beside the test control plane: containerd (Debian's, private root, state
// and socket), runc, the CNI bridge plugin, and kubelet, kube-controller-manager and
// kube-scheduler built from Go modules (node/build.sh). The recipe is
// shared/reviews/2026-12-real-node.md; the comments below say where it matters.
//
// Pods sit on a private host-only bridge. Their gateway address is forwarded to the
// loopback-only apiserver (its serving cert covers that address), so Pods reach it without
// hostNetwork and the Restricted Pod Security Standard holds.
//
// Everything the node makes outside its own directory is recorded in a state file under
// /run/leader-run-node before it is made, so teardown() can undo it, also after a crash:
// startNode() and `npm run cluster:down` reap what a dead owner left.
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cluster, ClusterInfo } from './cluster.ts';
import { apiRequest, buildControlPlane, freePort, pidAlive, runBuildScript, spawnGuarded, startCluster, target, writeKubeconfig } from './cluster.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const STATE_DIR = '/run/leader-run-node';
const CNI_BIN = '/usr/lib/cni';
const RUNC = '/usr/sbin/runc';
const PAUSE_REF = 'localhost/leader-run-test/pause:1';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Build and host packages

let built: Promise<string> | undefined;

/** Runs node/build.sh (instant when cached): kubelet, kube-controller-manager, kube-scheduler. */
export function buildNode(): Promise<string> {
  const preset = process.env.LEADER_RUN_NODE_BIN;
  if (preset) return Promise.resolve(preset);
  built ??= runBuildScript(path.join(HERE, 'node', 'build.sh'));
  built.catch(() => (built = undefined));
  return built;
}

/** The Debian packages the node runs on, and a file each installs. */
export const HOST_PACKAGES: Record<string, string> = {
  containerd: '/usr/bin/containerd',
  runc: RUNC,
  'containernetworking-plugins': `${CNI_BIN}/bridge`,
  'busybox-static': '/bin/busybox',
  // Builds examples/Dockerfile (images.ts); it brings conmon and uses Debian's runc.
  podman: '/usr/bin/podman',
};

/** Installs the missing host packages with apt-get (as root), or says loudly why it cannot. */
export function ensureHostPackages(): void {
  const missing = Object.entries(HOST_PACKAGES)
    .filter(([, file]) => !fs.existsSync(file))
    .map(([pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`the test node needs root and the Debian packages: ${missing.join(' ')}`);
  console.error(`test node: installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const argv of [
    ['update', '-qq'],
    ['install', '-y', '-qq', ...missing],
  ]) {
    const r = spawnSync('apt-get', argv, { stdio: 'inherit', env });
    if (r.status !== 0) throw new Error(`apt-get ${argv.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
  }
  for (const [pkg, file] of Object.entries(HOST_PACKAGES)) if (!fs.existsSync(file)) throw new Error(`${pkg} is installed but ${file} is missing`);
}

// ---------------------------------------------------------------------------
// State: what to undo

interface Proc {
  name: string;
  pid: number;
  bin: string;
}

export interface NodeState {
  id: string;
  ownerPid: number;
  dir: string;
  bridge: string;
  cniNetwork: string;
  socket: string;
  procs: Proc[];
  /** Paths outside `dir` the kubelet writes (hardcoded), with whether each existed before. */
  outside: Record<string, boolean>;
  /** cgroup v1 hierarchies' kubepods dirs that existed before. */
  kubepodsBefore: string[];
  netnsBefore: string[];
  chainsBefore: string[];
  /** Started by cluster:up: its owner exits at once; only cluster:down reaps it. */
  detached: boolean;
  /** The caller's directories (e.g. a test's ledger), removed with the node's. */
  extraDirs: string[];
  api?: { server: string; caFile: string; token: string };
}

// containerd 1.6 puts shim sockets in /run/containerd/s whatever its state dir.
const OUTSIDE = ['/var/lib/kubelet', '/var/log/containers', '/var/log/pods', '/usr/libexec/kubernetes', '/run/netns', '/var/lib/cni', '/run/containerd'];
const CHAINS: Array<[string, string]> = [
  ['filter', 'KUBE-FIREWALL'],
  ['filter', 'KUBE-KUBELET-CANARY'],
  ['nat', 'KUBE-KUBELET-CANARY'],
  ['mangle', 'KUBE-KUBELET-CANARY'],
  ['mangle', 'KUBE-IPTABLES-HINT'],
];

function writeState(state: NodeState): void {
  fs.mkdirSync(STATE_DIR, { recursive: true });
  const file = path.join(STATE_DIR, `${state.id}.json`);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

function readStates(): NodeState[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(STATE_DIR).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: NodeState[] = [];
  for (const n of names) {
    try {
      out.push(JSON.parse(fs.readFileSync(path.join(STATE_DIR, n), 'utf8')) as NodeState);
    } catch {}
  }
  return out;
}

function kubepodsDirs(): string[] {
  const out: string[] = [];
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const d = path.join('/sys/fs/cgroup', h, 'kubepods');
    if (fs.existsSync(d)) out.push(d);
  }
  return out;
}

const haveIptables = (): boolean => spawnSync('sh', ['-c', 'command -v iptables'], { stdio: 'ignore' }).status === 0;

function chainsPresent(): string[] {
  if (!haveIptables()) return [];
  const out: string[] = [];
  for (const ipt of ['iptables', 'ip6tables']) {
    for (const [table, chain] of CHAINS) {
      if (spawnSync(ipt, ['-w', '-t', table, '-n', '-L', chain], { stdio: 'ignore' }).status === 0) out.push(`${ipt}/${table}/${chain}`);
    }
  }
  return out;
}

const netnsList = (): string[] => {
  try {
    return fs.readdirSync('/run/netns');
  } catch {
    return [];
  }
};

/** Is `pid` still the process started from `bin` (not a reused pid)? */
function isProc(p: Proc): boolean {
  if (!pidAlive(p.pid)) return false;
  try {
    return fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0')[0] === p.bin;
  } catch {
    return false;
  }
}

async function killProc(p: Proc, graceMs: number): Promise<void> {
  if (!isProc(p)) return;
  try {
    process.kill(p.pid, 'SIGCONT');
    process.kill(p.pid, 'SIGTERM');
  } catch {}
  const deadline = Date.now() + graceMs;
  while (isProc(p) && Date.now() < deadline) await sleep(100);
  if (isProc(p)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {}
  }
  while (isProc(p)) await sleep(50);
}

/** Pids whose command line mentions `needle` (e.g. containerd shims of our socket). */
function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle)) out.push(Number(e));
    } catch {}
  }
  return out;
}

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function mountsUnder(prefix: string): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && (mp === prefix || mp.startsWith(`${prefix}/`))) out.push(mp.replace(/\\040/g, ' '));
  }
  return out.sort((a, b) => b.length - a.length);
}

function rmCgroupTree(dir: string): void {
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) rmCgroupTree(path.join(dir, e.name));
  try {
    for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    }
  } catch {}
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      spawnSync('sleep', ['0.1']);
    }
  }
}

/**
 * Undoes a node in the recipe's order: workloads deleted through the API (so the kubelet
 * stops them and CNI releases their addresses), controller-manager and scheduler, kubelet,
 * leftover containers, containerd, its shims, mounts, network namespaces, bridge, iptables
 * chains, kubepods cgroups, directories. Each step tolerates what is already gone, so it also
 * reaps a crashed node. Returns what it had to clean by force (empty after a clean stop).
 */
export async function teardown(state: NodeState, log: (s: string) => void = () => {}): Promise<string[]> {
  const forced: string[] = [];
  const proc = (name: string): Proc | undefined => state.procs.find((p) => p.name === name);
  for (const n of ['kube-controller-manager', 'kube-scheduler']) {
    const p = proc(n);
    if (p) await killProc(p, 5_000);
  }
  const kubelet = proc('kubelet');
  if (state.api && kubelet && isProc(kubelet)) {
    const to = { server: state.api.server, caFile: state.api.caFile, token: state.api.token };
    try {
      const deadline = Date.now() + 90_000;
      for (;;) {
        const pods = await apiRequest(to, 'GET', '/api/v1/pods', undefined, { signal: AbortSignal.timeout(5_000) });
        const items = (pods.body?.items ?? []) as Array<{ metadata: { name: string; namespace: string; deletionTimestamp?: string } }>;
        if (pods.status !== 200 || items.length === 0) break;
        if (Date.now() > deadline) {
          forced.push(`pods still present after 90 s: ${items.map((i) => i.metadata.name).join(' ')}`);
          break;
        }
        for (const it of items) {
          if (it.metadata.deletionTimestamp) continue;
          await apiRequest(to, 'DELETE', `/api/v1/namespaces/${it.metadata.namespace}/pods/${it.metadata.name}`, { gracePeriodSeconds: 1 });
        }
        await sleep(500);
      }
    } catch (err) {
      log(`teardown: the apiserver did not answer (${(err as Error).message}); removing containers directly`);
    }
  }
  if (kubelet) await killProc(kubelet, 10_000);
  const containerd = proc('containerd');
  const ctr = (...args: string[]): { ok: boolean; out: string } => run('ctr', ['--address', state.socket, '-n', 'k8s.io', ...args]);
  if (containerd && isProc(containerd)) {
    const tasks = ctr('tasks', 'ls', '-q')
      .out.split('\n')
      .filter((s) => /^[0-9a-f]{64}$/.test(s));
    for (const t of tasks) {
      ctr('tasks', 'kill', '-s', 'SIGKILL', t);
      forced.push(`task ${t.slice(0, 12)}`);
    }
    for (const t of tasks) for (let i = 0; i < 20 && !ctr('tasks', 'rm', '-f', t).ok; i++) await sleep(200);
    for (const c of ctr('containers', 'ls', '-q')
      .out.split('\n')
      .filter((s) => /^[0-9a-f]{64}$/.test(s))) {
      // Exited containers the kubelet keeps for its garbage collector: not forced.
      ctr('containers', 'rm', c);
    }
    await killProc(containerd, 10_000);
  }
  for (const p of state.procs.filter((q) => q.name !== 'kubelet' && q.name !== 'containerd')) await killProc(p, 3_000);
  // Shims outlive containerd by design; ours carry our socket in their command line.
  for (const pid of pidsMentioning(state.socket)) {
    forced.push(`shim ${pid}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  for (const d of kubepodsDirs()) if (!state.kubepodsBefore.includes(d)) rmCgroupTree(d);
  for (const ns of netnsList()) {
    if (state.netnsBefore.includes(ns) || !ns.startsWith('cni-')) continue;
    run('umount', ['-l', `/run/netns/${ns}`]);
    fs.rmSync(`/run/netns/${ns}`, { force: true });
    forced.push(`netns ${ns}`);
  }
  for (const mp of [state.dir, ...(state.extraDirs ?? [])].flatMap(mountsUnder)) {
    const r = run('umount', [mp]);
    if (!r.ok) run('umount', ['-l', mp]);
  }
  if (run('ip', ['link', 'show', state.bridge]).ok) run('ip', ['link', 'del', state.bridge]);
  if (haveIptables()) {
    for (const c of chainsPresent()) {
      if (state.chainsBefore.includes(c)) continue;
      const [ipt, table, chain] = c.split('/') as [string, string, string];
      for (const from of ['INPUT', 'OUTPUT', 'FORWARD']) while (spawnSync(ipt, ['-w', '-t', table, '-D', from, '-j', chain], { stdio: 'ignore' }).status === 0);
      run(ipt, ['-w', '-t', table, '-F', chain]);
      run(ipt, ['-w', '-t', table, '-X', chain]);
    }
  }
  try {
    for (const f of fs.readdirSync('/var/lib/cni/results')) if (f.startsWith(`${state.cniNetwork}-`)) fs.rmSync(path.join('/var/lib/cni/results', f));
  } catch {}
  for (const [p, existed] of Object.entries(state.outside)) if (!existed) fs.rmSync(p, { recursive: true, force: true });
  for (const d of [state.dir, ...(state.extraDirs ?? [])]) fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 });
  fs.rmSync(path.join(STATE_DIR, `${state.id}.json`), { force: true });
  try {
    fs.rmdirSync(STATE_DIR); // only when no other node's state is in it
  } catch {}
  return forced;
}

/** Tears down every node whose owner is dead, e.g. after a crash; with `detached`, also those
 *  cluster:up started; with `all`, every one. */
export async function reapNodes(opts: { all?: boolean; detached?: boolean; log?: (s: string) => void } = {}): Promise<number> {
  const log = opts.log ?? ((s: string) => console.error(s));
  let n = 0;
  for (const s of readStates()) {
    if (!opts.all && s.ownerPid !== process.pid && (pidAlive(s.ownerPid) || (s.detached && !opts.detached))) continue;
    log(`test node: reaping node ${s.id} (owner pid ${s.ownerPid}) in ${s.dir}`);
    const forced = await teardown(s, log);
    if (forced.length) log(`test node: reaped by force: ${forced.join(', ')}`);
    n++;
  }
  return n;
}

// ---------------------------------------------------------------------------
// Images

export interface NodeImage {
  /** The full reference Pods name (e.g. registry.example.com/app:1.0). */
  ref: string;
  /** Path of an OCI image-layout archive. */
  archive: string;
}

// ---------------------------------------------------------------------------
// Start

export interface NodeInfo {
  id: string;
  name: string;
  dir: string;
  /** The bridge gateway, where Pods reach the apiserver (KUBERNETES_SERVICE_HOST). */
  gateway: string;
  apiserverPort: number;
  kubeletRoot: string;
  /** https://127.0.0.1:PORT, anonymous and AlwaysAllow (loopback only): /stats/summary etc. */
  kubeletUrl: string;
  logs: Record<string, string>;
  /** ms from spawning the kubelet until the Node is Ready; and the whole start. */
  startup: { readyMs: number; totalMs: number };
}

export interface NodeStartOptions {
  /** OCI archives to import before the kubelet starts (the pause image is added). */
  images?: NodeImage[];
  /** Directories of the caller's to remove with the node, also when a reaper does it. */
  extraDirs?: string[];
  /** Leave it all running after this process exits (cluster:up); stopped by cluster:down. */
  detached?: boolean;
  /** Keep the node's directory (logs) on stop. */
  keepLogs?: boolean;
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function spawnLogged(name: string, bin: string, args: string[], log: string, detached: boolean): ChildProcess {
  fs.appendFileSync(log, `\n=== ${new Date().toISOString()} ${bin} ${args.join(' ')}\n`);
  const fd = fs.openSync(log, 'a');
  try {
    // cluster:up: its own session, outliving the CLI; otherwise it dies with this process.
    const child = detached ? spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] }) : spawnGuarded(bin, args, { stdio: ['ignore', fd, fd] });
    child.unref();
    child.on('exit', (code, signal) => {
      // The event can come after teardown removed the directory.
      try {
        fs.appendFileSync(log, `\n=== ${name} exited (${signal ?? code})\n`);
      } catch {}
    });
    return child;
  } finally {
    fs.closeSync(fd);
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function which(cmd: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  if (r.status !== 0 || !p) throw new Error(`test node: ${cmd} is not on PATH`);
  return fs.realpathSync(p);
}

/** A subnet 10.X.Y.0/24 no local address is in. */
function pickSubnet(): string {
  const used = execFileSync('ip', ['-4', '-o', 'addr'], { encoding: 'utf8' });
  for (;;) {
    const [x, y] = [200 + (randomBytes(1)[0]! % 50), randomBytes(1)[0]!];
    const prefix = `10.${x}.${y}`;
    if (!used.includes(` ${prefix}.`)) return prefix;
  }
}

export class TestNode {
  readonly cluster: Cluster;
  readonly info: NodeInfo;
  readonly state: NodeState;
  readonly #keepLogs: boolean;
  #stopped = false;

  constructor(cluster: Cluster, info: NodeInfo, state: NodeState, keepLogs: boolean) {
    this.cluster = cluster;
    this.info = info;
    this.state = state;
    this.#keepLogs = keepLogs;
  }

  get api(): ClusterInfo {
    return this.cluster.info;
  }

  /** Tears the node down (see teardown()), then the control plane. Returns what was forced. */
  async stop(): Promise<string[]> {
    if (this.#stopped) return [];
    this.#stopped = true;
    const keep = this.#keepLogs ? path.join(os.tmpdir(), `leader-run-node-logs-${this.info.id}`) : undefined;
    if (keep) {
      fs.mkdirSync(keep, { recursive: true });
      for (const [n, f] of Object.entries(this.info.logs)) if (fs.existsSync(f)) fs.copyFileSync(f, path.join(keep, `${n}.log`));
    }
    const forced = await teardown(this.state);
    await this.cluster.stop();
    if (keep) console.error(`test node: logs kept in ${keep}`);
    return forced;
  }
}

export async function startNode(opts: NodeStartOptions = {}): Promise<TestNode> {
  const t0 = performance.now();
  const detached = opts.detached ?? false;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) throw new Error('the test node needs Linux and root');
  ensureHostPackages();
  await reapNodes();
  const busy = readStates().filter((s) => pidAlive(s.ownerPid) || s.detached);
  if (busy.length) {
    // One kubelet per machine: /kubepods cgroups and /var/lib/kubelet/device-plugins are shared.
    throw new Error(`another test node runs on this machine (owner pid ${busy[0]!.ownerPid}, ${busy[0]!.dir}); one at a time`);
  }
  const [cpBin, nodeBin] = await Promise.all([buildControlPlane(), buildNode()]);
  const id = randomBytes(4).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `leader-run-node-${id}-`));
  const prefix = pickSubnet();
  const gateway = `${prefix}.1`;
  const name = os.hostname().toLowerCase();
  const state: NodeState = {
    id,
    ownerPid: process.pid,
    dir,
    bridge: `lrn${id}`,
    cniNetwork: `leader-run-${id}`,
    socket: path.join(dir, 'containerd', 'containerd.sock'),
    procs: [],
    outside: Object.fromEntries(OUTSIDE.map((p) => [p, fs.existsSync(p)])),
    kubepodsBefore: kubepodsDirs(),
    netnsBefore: netnsList(),
    chainsBefore: chainsPresent(),
    extraDirs: opts.extraDirs ?? [],
    detached,
  };
  writeState(state);
  const track = (n: string, child: ChildProcess, bin: string): void => {
    state.procs.push({ name: n, pid: child.pid!, bin });
    writeState(state);
  };
  const logs: Record<string, string> = {};
  for (const n of ['containerd', 'kubelet', 'kube-controller-manager', 'kube-scheduler']) logs[n] = path.join(dir, `${n}.log`);
  let cluster: Cluster | undefined;
  const fail = (what: string, log?: string): Error => new Error(`test node: ${what}${log ? `\n--- last lines of ${log} ---\n${tail(log)}` : ''}`);
  try {
    cluster = await startCluster({ dir: path.join(dir, 'control-plane'), binDir: cpBin, detached, node: { name, advertiseAddress: gateway } });
    const api = cluster.info;
    for (const [n, pid, bin] of [
      ['etcd', api.etcdPid, path.join(cpBin, 'etcd')],
      ['kube-apiserver', api.apiserverPid, path.join(cpBin, 'kube-apiserver')],
    ] as const) {
      state.procs.push({ name: n, pid, bin });
    }
    state.api = { server: api.server, caFile: api.caFile, token: api.tokens.admin };
    writeState(state);
    const nodeTokens = api.node!.tokens;

    // The bridge, made here so the forwarder can bind the gateway before any Pod exists.
    for (const argv of [
      ['link', 'add', 'name', state.bridge, 'type', 'bridge'],
      ['addr', 'add', `${gateway}/24`, 'dev', state.bridge],
      ['link', 'set', state.bridge, 'up'],
    ]) {
      const r = run('ip', argv);
      if (!r.ok) throw fail(`ip ${argv.join(' ')}: ${r.out}`);
    }
    logs.forwarder = path.join(dir, 'forwarder.log');
    const forwarder = spawnLogged(
      'forwarder',
      process.execPath,
      [path.join(HERE, 'forward.ts'), gateway, String(api.apiserverPort), String(api.apiserverPort)],
      logs.forwarder,
      detached,
    );
    track('forwarder', forwarder, process.execPath);
    for (let deadline = Date.now() + 10_000; !(await canConnect(gateway, api.apiserverPort)); ) {
      if (forwarder.exitCode !== null || Date.now() > deadline) throw fail('the apiserver forwarder did not start', logs.forwarder);
      await sleep(50);
    }

    // containerd 1.6: private root, state, socket and runc root; restrict_oom_score_adj is
    // REQUIRED here (no CAP_SYS_RESOURCE, so runc cannot set the kubelet's negative scores).
    const cd = path.join(dir, 'containerd');
    const cniConf = path.join(dir, 'cni', 'net.d');
    fs.mkdirSync(cniConf, { recursive: true });
    fs.mkdirSync(cd, { recursive: true });
    fs.writeFileSync(
      path.join(cniConf, '10-leader-run.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: state.cniNetwork,
        plugins: [
          {
            type: 'bridge',
            bridge: state.bridge,
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: `${prefix}.0/24`, gateway }]], dataDir: path.join(dir, 'cni', 'ipam') },
          },
        ],
      }),
    );
    fs.writeFileSync(
      path.join(cd, 'config.toml'),
      `version = 2
root = "${cd}/root"
state = "${cd}/state"
[grpc]
  address = "${state.socket}"
[ttrpc]
  address = "${state.socket}.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${cd}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_REF}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN}"
    conf_dir = "${cniConf}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "${RUNC}"
        Root = "${cd}/runc"
`,
    );
    const containerdBin = which('containerd');
    const containerd = spawnLogged('containerd', containerdBin, ['--config', path.join(cd, 'config.toml')], logs.containerd!, detached);
    track('containerd', containerd, containerdBin);
    const ctr = (...args: string[]): { ok: boolean; out: string } => run('ctr', ['--address', state.socket, ...args]);
    for (let deadline = Date.now() + 30_000; !ctr('version').ok; ) {
      if (containerd.exitCode !== null || Date.now() > deadline) throw fail('containerd did not start', logs.containerd);
      await sleep(100);
    }

    // Images, before the kubelet (the pinned pause image is never pulled).
    const images = [await pauseImage(dir), ...(opts.images ?? [])];
    for (const img of images) {
      const r = ctr('-n', 'k8s.io', 'images', 'import', img.archive);
      if (!r.ok || !ctr('-n', 'k8s.io', 'images', 'ls', '-q').out.split('\n').includes(img.ref)) throw fail(`importing ${img.ref}: ${r.out}`);
    }

    // kubelet: private root, cert, log and plugin dirs; loopback ports; failCgroupV1 false is
    // REQUIRED on this cgroup v1 host; cgroupfs because containerd 1.6 cannot report a driver.
    const kl = path.join(dir, 'kubelet');
    fs.mkdirSync(path.join(kl, 'pki'), { recursive: true });
    const [klPort, klHealthz, kcmPort, schedPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const writeKc = (n: string, token: string): string => writeKubeconfig(api, n, { user: { token } });
    fs.writeFileSync(
      path.join(kl, 'config.yaml'),
      `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: ${klPort}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${klHealthz}
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://${state.socket}
cgroupDriver: cgroupfs
failCgroupV1: false
podLogsDir: ${path.join(kl, 'pod-logs')}
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`,
    );
    const kubeletBin = path.join(nodeBin, 'kubelet');
    const tk = performance.now();
    const kubelet = spawnLogged(
      'kubelet',
      kubeletBin,
      [
        `--config=${path.join(kl, 'config.yaml')}`,
        `--kubeconfig=${writeKc('kubelet', nodeTokens.kubelet)}`,
        `--root-dir=${path.join(kl, 'root')}`,
        `--cert-dir=${path.join(kl, 'pki')}`,
        `--volume-plugin-dir=${path.join(kl, 'volume-plugins')}`,
        `--hostname-override=${name}`,
      ],
      logs.kubelet!,
      detached,
    );
    track('kubelet', kubelet, kubeletBin);
    const kcmBin = path.join(nodeBin, 'kube-controller-manager');
    const kcm = spawnLogged(
      'kube-controller-manager',
      kcmBin,
      [
        `--kubeconfig=${writeKc('kube-controller-manager', nodeTokens.controllerManager)}`,
        '--use-service-account-credentials=true',
        `--root-ca-file=${api.caFile}`,
        `--service-account-private-key-file=${path.join(api.dir, 'sa.key')}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${kcmPort}`,
      ],
      logs['kube-controller-manager']!,
      detached,
    );
    track('kube-controller-manager', kcm, kcmBin);
    const schedBin = path.join(nodeBin, 'kube-scheduler');
    const sched = spawnLogged(
      'kube-scheduler',
      schedBin,
      [`--kubeconfig=${writeKc('kube-scheduler', nodeTokens.scheduler)}`, '--leader-elect=false', '--bind-address=127.0.0.1', `--secure-port=${schedPort}`],
      logs['kube-scheduler']!,
      detached,
    );
    track('kube-scheduler', sched, schedBin);

    const admin = target(api, 'admin');
    let readyMs = 0;
    const deadline = Date.now() + 120_000;
    for (const [what, check, log] of [
      [
        'the Node to be Ready',
        async () => {
          const r = await apiRequest(admin, 'GET', `/api/v1/nodes/${name}`);
          const ready =
            r.status === 200 && (r.body.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True');
          const tainted = (r.body?.spec?.taints ?? []).some((t: { key: string }) => t.key.startsWith('node.kubernetes.io/not-ready'));
          if (ready && !readyMs) readyMs = performance.now() - tk;
          return ready && !tainted;
        },
        logs.kubelet,
      ],
      [
        'the default ServiceAccount',
        async () => (await apiRequest(admin, 'GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
        logs['kube-controller-manager'],
      ],
      [
        'the kube-root-ca.crt ConfigMap',
        async () => (await apiRequest(admin, 'GET', '/api/v1/namespaces/default/configmaps/kube-root-ca.crt')).status === 200,
        logs['kube-controller-manager'],
      ],
    ] as const) {
      for (;;) {
        for (const [n, c] of [
          ['kubelet', kubelet],
          ['containerd', containerd],
          ['kube-controller-manager', kcm],
          ['kube-scheduler', sched],
        ] as const) {
          if (c.exitCode !== null || c.signalCode !== null) throw fail(`${n} exited while waiting for ${what}`, logs[n]);
        }
        if (await check()) break;
        if (Date.now() > deadline) throw fail(`timed out waiting for ${what}`, log);
        await sleep(200);
      }
    }
    const info: NodeInfo = {
      id,
      name,
      dir,
      gateway,
      apiserverPort: api.apiserverPort,
      kubeletRoot: path.join(kl, 'root'),
      kubeletUrl: `https://127.0.0.1:${klPort}`,
      logs: { ...logs, etcd: api.logs.etcd, 'kube-apiserver': api.logs.apiserver },
      startup: { readyMs: Math.round(readyMs), totalMs: Math.round(performance.now() - t0) },
    };
    return new TestNode(cluster, info, state, opts.keepLogs ?? false);
  } catch (err) {
    const keep = path.join(os.tmpdir(), `leader-run-node-logs-${id}`);
    fs.mkdirSync(keep, { recursive: true });
    for (const f of Object.values(logs)) if (fs.existsSync(f)) fs.copyFileSync(f, path.join(keep, path.basename(f)));
    await teardown(state);
    await cluster?.stop();
    throw new Error(`${(err as Error).message}\n(test node logs kept in ${keep})`);
  }
}

/** The sandbox image: busybox's sh waiting for TERM (the kubelet SIGKILLs sandboxes anyway). */
async function pauseImage(dir: string): Promise<NodeImage> {
  const { busyboxRootfs, writeOciArchive } = await import('./oci.ts');
  const root = path.join(dir, 'images', 'pause-root');
  fs.mkdirSync(root, { recursive: true });
  busyboxRootfs(root);
  const archive = path.join(dir, 'images', 'pause.tar');
  writeOciArchive(root, PAUSE_REF, archive, { Entrypoint: ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"] });
  fs.rmSync(root, { recursive: true, force: true });
  return { ref: PAUSE_REF, archive };
}
