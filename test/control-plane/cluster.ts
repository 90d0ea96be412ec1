// Test control plane: a real etcd and kube-apiserver (built from the Go module
// pins by build.sh) on loopback ports, with static-token users, RBAC and
// kubeconfigs, plus helpers to spawn processes that die with the test process.

import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadAllYaml } from '@kubernetes/client-node/dist/yaml.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface ClusterInfo {
  dir: string;
  /** https://127.0.0.1:PORT */
  server: string;
  binDir: string;
  namespace: 'default';
  kubeconfigs: { admin: string; candidate: string; nobody: string };
  /** The apiserver's self-signed bundle (serving cert + its CA) from --cert-dir. */
  caFile: string;
  etcdPid: number;
  apiserverPid: number;
  apiserverPort: number;
  etcdUrl: string;
  tokens: { admin: string; candidate: string; nobody: string };
  logs: { etcd: string; apiserver: string };
  /** Milliseconds from spawn to ready, as observed at startup. */
  startup: { etcdMs: number; apiserverMs: number; totalMs: number };
  /** True when started by `cluster:up`: the processes outlive the starter. */
  detached: boolean;
  /** Set when started with `node` (test/control-plane/node.ts): the identities of the node's
   *  components and the address the serving cert also covers. */
  node?: NodeIdentities;
}

export interface NodeIdentities {
  name: string;
  advertiseAddress: string;
  tokens: { kubelet: string; controllerManager: string; scheduler: string };
}

export type User = 'admin' | 'candidate' | 'nobody' | { token: string };

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

/** The leader-run Role of examples/rbac.yaml, as users are told to apply it. */
export const EXAMPLE_RULES: PolicyRule[] = (() => {
  const docs = loadAllYaml(fs.readFileSync(path.join(HERE, '..', '..', 'examples', 'rbac.yaml'), 'utf8')) as Array<{
    kind?: string;
    metadata?: { name?: string };
    rules?: PolicyRule[];
  }>;
  const role = docs.find((d) => d.kind === 'Role' && d.metadata?.name === 'leader-run');
  if (!role?.rules) throw new Error('examples/rbac.yaml has no Role named leader-run');
  return role.rules;
})();

/** The candidate's Role: the example's, with its resourceNames left out — every test takes a
 *  Lease of its own name. The node suite applies the example as written, and check.test.ts
 *  proves the names bind. So the end-to-end tests prove that the example is enough. */
export const CANDIDATE_RULES: PolicyRule[] = EXAMPLE_RULES.map(({ resourceNames: _, ...rule }) => rule);

export const CANDIDATE_USER = 'leader-run-candidate';

// ---------------------------------------------------------------------------
// Build

let built: Promise<string> | undefined;

/**
 * Runs build.sh (instant when the cache is warm) and returns the directory
 * holding kube-apiserver, etcd and leader-peer. LEADER_RUN_CONTROL_PLANE_BIN
 * skips it: npm test sets it so test files don't each re-run the script.
 */
export function buildControlPlane(): Promise<string> {
  const preset = process.env.LEADER_RUN_CONTROL_PLANE_BIN;
  if (preset) return Promise.resolve(preset);
  built ??= runBuildScript(path.join(HERE, 'build.sh'));
  built.catch(() => (built = undefined));
  return built;
}

/** Runs a build script of this directory and resolves with the last line it prints (the
 *  directory it built into); its stderr goes to ours. */
export function runBuildScript(script: string): Promise<string> {
  const name = path.relative(path.resolve(HERE, '../..'), script);
  return new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.on('error', reject);
    // 'close', not 'exit': the exit can come before the last of stdout has been read.
    child.on('close', (code, signal) => {
      const dir = out.trim().split('\n').pop() ?? '';
      if (code === 0 && dir) resolve(dir);
      else reject(new Error(`${name} failed (${signal ?? `exit ${code}`}${code === 0 ? ', printing no directory' : ''}); see its output above`));
    });
  });
}

// ---------------------------------------------------------------------------
// Processes that cannot outlive the test process

const live = new Map<number, ChildProcess>();
/** Temp dirs of clusters not yet stopped, removed if we exit without stop(). */
const ownedDirs = new Set<string>();
let handlersInstalled = false;

function killAllSync(): void {
  for (const pid of live.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  live.clear();
  for (const dir of ownedDirs) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  ownedDirs.clear();
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllSync();
      // Alone, we re-raise so the default action (death) still happens;
      // otherwise whoever else listens decides.
      if (process.listenerCount(sig) === 1) {
        process.off(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

// The shell forks a watcher, then execs the program (keeping its pid, so
// signals like SIGSTOP reach the program itself). The watcher SIGKILLs it
// within a second of this process vanishing, even by SIGKILL, which no exit
// handler can catch, and then removes the optional directory $2 once the
// program is gone. Its stdio is /dev/null so it never holds a pipe open.
const GUARD =
  // The guarded process is known by its pid *and* its start time (field 22 of its stat; it
  // survives the exec): pids wrap within a run on a busy host (pid_max is often 32768), and
  // a guard that signalled a reused pid would SIGKILL an unrelated process — a test file's.
  // The test process may not be signallable by us (we run as another user): /proc tells.
  'p=$1; d=$2; shift 2; st() { sed "s/.*) //" /proc/$$/stat 2>/dev/null | cut -d" " -f20; }; s0=$(st); ' +
  '(ours() { [ -n "$s0" ] && [ "$(st)" = "$s0" ]; }; while ours; do ' +
  'if ! kill -0 "$p" 2>/dev/null && [ ! -e "/proc/$p" ]; then ours && kill -KILL $$ 2>/dev/null; ' +
  'if [ -n "$d" ]; then i=0; while ours && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; rm -rf "$d"; fi; ' +
  'exit 0; fi; sleep 1; done) </dev/null >/dev/null 2>&1 & exec "$@"';

/**
 * Spawns a program that is SIGKILLed when this process exits, is signalled,
 * or dies. The child is unref'd so a forgotten one cannot keep a test alive.
 * `removeOnOrphan` names a directory the guard deletes if this process dies.
 */
export function spawnGuarded(command: string, args: readonly string[], options: SpawnOptions = {}, guard: { removeOnOrphan?: string } = {}): ChildProcess {
  installExitHandlers();
  const child = spawn('/bin/sh', ['-c', GUARD, 'leader-run-guard', String(process.pid), guard.removeOnOrphan ?? '', command, ...args], options);
  if (child.pid === undefined) throw new Error(`cannot spawn ${command}`);
  const pid = child.pid;
  live.set(pid, child);
  child.once('exit', () => live.delete(pid));
  child.unref();
  return child;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resident set size in KiB from /proc (Linux), or undefined. */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Small utilities

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read ${file}: ${(err as Error).message})`;
  }
}

function probe(url: string, ca?: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(u, { agent: false, timeout: 3000, ...(u.protocol === 'https:' ? (ca ? { ca } : { rejectUnauthorized: false }) : {}) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

// ---------------------------------------------------------------------------
// Talking to the apiserver without client-node (it can't send 6-digit MicroTime)

export interface ApiTarget {
  server: string;
  caFile: string;
  token: string;
}

export interface ApiResponse {
  status: number;
  text: string;
  /** Parsed body when it is JSON: the tests read whatever shape the API returns. */
  // biome-ignore lint/suspicious/noExplicitAny: a test helper's view of arbitrary API JSON
  body: any;
}

export function target(info: ClusterInfo, user: User = 'admin', server = info.server): ApiTarget {
  return { server, caFile: info.caFile, token: typeof user === 'string' ? info.tokens[user] : user.token };
}

/**
 * One request on a fresh connection (agent: false). Resolves for any HTTP
 * status; rejects on network errors and on `signal` (e.g. AbortSignal.timeout).
 * A string body is sent verbatim.
 */
export function apiRequest(
  to: ApiTarget,
  method: string,
  urlPath: string,
  body?: unknown,
  opts: { signal?: AbortSignal; contentType?: string; agent?: https.Agent } = {},
): Promise<ApiResponse> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(urlPath, to.server),
      {
        method,
        ca: fs.readFileSync(to.caFile),
        agent: opts.agent ?? false,
        signal: opts.signal,
        headers: {
          authorization: `Bearer ${to.token}`,
          accept: 'application/json',
          ...(payload !== undefined ? { 'content-type': opts.contentType ?? 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => (text += s));
        res.on('error', reject);
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, text, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function must(res: Promise<ApiResponse>, what: string, allow: number[] = []): Promise<ApiResponse> {
  const r = await res;
  if ((r.status >= 200 && r.status < 300) || allow.includes(r.status)) return r;
  throw new Error(`${what}: HTTP ${r.status} ${r.text}`);
}

// ---------------------------------------------------------------------------
// Kubeconfigs and identities

function yamlKubeconfig(server: string, caFile: string, userName: string, token: string): string {
  // JSON strings are valid YAML scalars, so values need no other quoting.
  const q = (s: string): string => JSON.stringify(s);
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: leader-run-test',
    '  cluster:',
    `    server: ${q(server)}`,
    `    certificate-authority: ${q(caFile)}`,
    'users:',
    `- name: ${q(userName)}`,
    '  user:',
    `    token: ${q(token)}`,
    'contexts:',
    '- name: leader-run-test',
    '  context:',
    '    cluster: leader-run-test',
    `    user: ${q(userName)}`,
    '    namespace: default',
    'current-context: leader-run-test',
    '',
  ].join('\n');
}

/** Writes `${info.dir}/${name}.kubeconfig` and returns its path. `user`: one of the
 *  cluster's identities, a token, or a kubeconfig user entry as it stands (an exec plugin,
 *  an auth-provider). */
export function writeKubeconfig(
  info: ClusterInfo,
  name: string,
  opts: { user: User | { entry: Record<string, unknown> }; server?: string; caFile?: string },
): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`kubeconfig name must be a plain file name: ${name}`);
  const file = path.join(info.dir, `${name}.kubeconfig`);
  if (typeof opts.user === 'object' && 'entry' in opts.user) {
    const kubeconfig = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: opts.server ?? info.server, 'certificate-authority': opts.caFile ?? info.caFile } }],
      users: [{ name: 'u', user: opts.user.entry }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    };
    fs.writeFileSync(file, JSON.stringify(kubeconfig), { mode: 0o600 }); // JSON is YAML
    return file;
  }
  const token = typeof opts.user === 'string' ? info.tokens[opts.user] : opts.user.token;
  const userName = typeof opts.user === 'string' ? opts.user : name;
  fs.writeFileSync(file, yamlKubeconfig(opts.server ?? info.server, opts.caFile ?? info.caFile, userName, token), { mode: 0o600 });
  return file;
}

/**
 * Creates ServiceAccount, Role and RoleBinding `name` in default with `rules`,
 * mints a 30-day token with the TokenRequest API and writes a kubeconfig for
 * it. Calling again with the same name replaces the Role's rules.
 */
export async function serviceAccountKubeconfig(info: ClusterInfo, name: string, rules: PolicyRule[], opts: { server?: string } = {}): Promise<string> {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) throw new Error(`not a valid ServiceAccount name: ${name}`);
  const admin = target(info, 'admin');
  const ns = `/api/v1/namespaces/${info.namespace}`;
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${info.namespace}`;
  await must(apiRequest(admin, 'POST', `${ns}/serviceaccounts`, { metadata: { name } }), `create ServiceAccount ${name}`, [409]);
  const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name }, rules };
  const created = await must(apiRequest(admin, 'POST', `${rbac}/roles`, role), `create Role ${name}`, [409]);
  if (created.status === 409) await must(apiRequest(admin, 'PUT', `${rbac}/roles/${name}`, role), `replace Role ${name}`);
  await must(
    apiRequest(admin, 'POST', `${rbac}/rolebindings`, {
      metadata: { name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: info.namespace }],
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    }),
    `create RoleBinding ${name}`,
    [409],
  );
  const tr = await must(
    apiRequest(admin, 'POST', `${ns}/serviceaccounts/${name}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 30 * 24 * 3600 },
    }),
    `TokenRequest for ${name}`,
  );
  return writeKubeconfig(info, `sa-${name}`, { user: { token: tr.body.status.token as string }, server: opts.server });
}

// ---------------------------------------------------------------------------
// The cluster

function writeInfo(info: ClusterInfo): void {
  const file = path.join(info.dir, 'cluster.json');
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(info, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

function spawnServer(bin: string, args: string[], log: string, detached: boolean, removeOnOrphan?: string): ChildProcess {
  fs.appendFileSync(log, `\n=== ${new Date().toISOString()} ${bin} ${args.join(' ')}\n`);
  const fd = fs.openSync(log, 'a');
  try {
    if (detached) {
      // cluster:up: its own session, so the servers outlive the CLI and its terminal.
      const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
      child.unref();
      return child;
    }
    return spawnGuarded(bin, args, { stdio: ['ignore', fd, fd] }, { removeOnOrphan });
  } finally {
    fs.closeSync(fd);
  }
}

function startupError(what: string, detail: string, logs: string[]): Error {
  const parts = [`leader-run test control plane: ${what}: ${detail}`];
  for (const log of logs) parts.push(`--- last lines of ${log} ---\n${tail(log)}`);
  return new Error(parts.join('\n'));
}

async function waitReady(child: ChildProcess, what: string, log: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited(child)) throw startupError(`${what} exited before it was ready`, `${child.signalCode ?? `exit ${child.exitCode}`}`, [log]);
    if (await check()) return;
    if (Date.now() > deadline) throw startupError(`${what} not ready`, `after ${timeoutMs} ms`, [log]);
    await sleep(100);
  }
}

const addrInUse = (log: string): boolean => /address already in use/i.test(tail(log, 15));

export interface StartOptions {
  /** Where data, certs, logs and kubeconfigs go; a temp dir (removed by stop) when omitted. */
  dir?: string;
  /** Directory with the binaries; build.sh's output when omitted. */
  binDir?: string;
  /** Leave the servers running after this process exits (cluster:up). */
  detached?: boolean;
  /**
   * Prepare the apiserver for a real node (test/control-plane/node.ts): tokens for the kubelet
   * (`system:node:<name>`), the controller-manager and the scheduler; Node,RBAC authorization
   * with NodeRestriction; Hostname as the kubelet address; and `advertiseAddress` (the Pods'
   * bridge gateway, where node.ts forwards to loopback) in the serving cert. Without it the
   * apiserver is exactly as before.
   */
  node?: { name: string; advertiseAddress: string };
}

export async function startCluster(opts: StartOptions = {}): Promise<Cluster> {
  const t0 = performance.now();
  const binDir = opts.binDir ?? (await buildControlPlane());
  for (const b of ['etcd', 'kube-apiserver']) {
    if (!fs.existsSync(path.join(binDir, b))) throw new Error(`leader-run test control plane: ${b} missing from ${binDir}`);
  }
  const ownsDir = opts.dir === undefined;
  const dir = path.resolve(opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'leader-run-cluster-')));
  fs.mkdirSync(dir, { recursive: true });
  if (ownsDir && !opts.detached) ownedDirs.add(dir);
  // A fresh cluster every time: stale etcd data would carry old member URLs.
  for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });

  const tokens = { admin: randomBytes(24).toString('hex'), candidate: randomBytes(24).toString('hex'), nobody: randomBytes(24).toString('hex') };
  const node: NodeIdentities | undefined = opts.node && {
    ...opts.node,
    tokens: { kubelet: randomBytes(24).toString('hex'), controllerManager: randomBytes(24).toString('hex'), scheduler: randomBytes(24).toString('hex') },
  };
  fs.writeFileSync(
    path.join(dir, 'tokens.csv'),
    [
      `${tokens.admin},leader-run-admin,leader-run-admin,"system:masters"`,
      `${tokens.candidate},${CANDIDATE_USER},${CANDIDATE_USER}`,
      `${tokens.nobody},nobody,nobody`,
      ...(node
        ? [
            `${node.tokens.kubelet},system:node:${node.name},system:node:${node.name},"system:nodes"`,
            `${node.tokens.controllerManager},system:kube-controller-manager,system:kube-controller-manager`,
            `${node.tokens.scheduler},system:kube-scheduler,system:kube-scheduler`,
          ]
        : []),
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  // P-256 is quick to generate and accepted for service-account tokens (ES256).
  const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  fs.writeFileSync(path.join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));

  const detached = opts.detached ?? false;
  const logs = { etcd: path.join(dir, 'etcd.log'), apiserver: path.join(dir, 'kube-apiserver.log') };
  const started: ChildProcess[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of started) if (!exited(c)) c.kill('SIGKILL');
  };

  try {
    // etcd
    let etcd: ChildProcess | undefined;
    let etcdUrl = '';
    let etcdMs = 0;
    for (let attempt = 1; ; attempt++) {
      const [client, peer] = [await freePort(), await freePort()];
      etcdUrl = `http://127.0.0.1:${client}`;
      const peerUrl = `http://127.0.0.1:${peer}`;
      const t = performance.now();
      etcd = spawnServer(
        path.join(binDir, 'etcd'),
        [
          '--name=leader-run-test',
          `--data-dir=${path.join(dir, 'etcd-data')}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=leader-run-test=${peerUrl}`,
          // Throwaway data: skipping fsync keeps a busy CI disk out of lease timings.
          '--unsafe-no-fsync',
          // A lone member has no one to miss heartbeats; short ticks make it
          // elect itself in ~0.2 s instead of ~0.8 s.
          '--heartbeat-interval=50',
          '--election-timeout=250',
        ],
        logs.etcd,
        detached,
        // A temp dir of ours goes with etcd if this process is killed outright.
        ownsDir ? dir : undefined,
      );
      started.push(etcd);
      try {
        await waitReady(etcd, 'etcd', logs.etcd, async () => (await probe(`${etcdUrl}/health`)) === 200, 60_000);
        etcdMs = performance.now() - t;
        break;
      } catch (err) {
        // Another process may take a port between freePort() and bind: retry.
        if (attempt < 3 && exited(etcd) && addrInUse(logs.etcd)) continue;
        throw err;
      }
    }

    // kube-apiserver
    let apiserver: ChildProcess | undefined;
    let port = 0;
    let apiserverArgs: string[] = [];
    let apiserverMs = 0;
    const certDir = path.join(dir, 'certs');
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      apiserverArgs = [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        // Loopback everywhere; the endpoint reconciler refuses loopback
        // endpoints for the kubernetes Service, and nothing here needs them.
        // With a node, the Pods' gateway (forwarded to loopback by node.ts): the serving cert
        // covers the advertise address and the bind address, so both 127.0.0.1 and it verify.
        `--advertise-address=${node?.advertiseAddress ?? '127.0.0.1'}`,
        '--endpoint-reconciler-type=none',
        `--secure-port=${port}`,
        `--cert-dir=${certDir}`,
        `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
        // The Node authorizer is what lets the kubelet in (the system:node binding has no subjects).
        ...(node
          ? ['--authorization-mode=Node,RBAC', '--enable-admission-plugins=NodeRestriction', '--kubelet-preferred-address-types=Hostname']
          : ['--authorization-mode=RBAC']),
        `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        // Its default is deprecated and warns at every start.
        '--service-cluster-ip-range=10.0.0.0/24',
        '--profiling=false',
        // Coordinated leader election (KEP-4355, Beta and off by default in 1.36): the
        // LeaseCandidate API and the controller that names a Lease's holder, for --coordinated.
        '--feature-gates=CoordinatedLeaderElection=true',
        '--runtime-config=coordination.k8s.io/v1beta1=true',
      ];
      const t = performance.now();
      apiserver = spawnServer(path.join(binDir, 'kube-apiserver'), apiserverArgs, logs.apiserver, detached);
      started.push(apiserver);
      try {
        await waitReady(apiserver, 'kube-apiserver', logs.apiserver, async () => (await probe(`https://127.0.0.1:${port}/readyz`)) === 200, 120_000);
        apiserverMs = performance.now() - t;
        break;
      } catch (err) {
        if (attempt < 3 && exited(apiserver) && addrInUse(logs.apiserver)) continue;
        throw err;
      }
    }

    // The generated bundle holds the serving cert and its self-signed CA; it
    // must verify for 127.0.0.1, the only address clients use.
    const caFile = path.join(certDir, 'apiserver.crt');
    const server = `https://127.0.0.1:${port}`;
    if ((await probe(`${server}/readyz`, fs.readFileSync(caFile))) !== 200) {
      throw startupError('TLS check failed', `${caFile} does not verify ${server}`, [logs.apiserver]);
    }

    const info: ClusterInfo = {
      dir,
      server,
      binDir,
      namespace: 'default',
      kubeconfigs: { admin: '', candidate: '', nobody: '' },
      caFile,
      etcdPid: etcd.pid!,
      apiserverPid: apiserver.pid!,
      apiserverPort: port,
      etcdUrl,
      tokens,
      logs,
      startup: { etcdMs: Math.round(etcdMs), apiserverMs: Math.round(apiserverMs), totalMs: 0 },
      detached,
      ...(node ? { node } : {}),
    };

    const admin = target(info, 'admin');
    const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${info.namespace}`;
    await must(apiRequest(admin, 'POST', `${rbac}/roles`, { metadata: { name: 'leader-run' }, rules: CANDIDATE_RULES }), 'create Role leader-run');
    await must(
      apiRequest(admin, 'POST', `${rbac}/rolebindings`, {
        metadata: { name: 'leader-run' },
        subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: CANDIDATE_USER }],
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'leader-run' },
      }),
      'create RoleBinding leader-run',
    );
    for (const user of ['admin', 'candidate', 'nobody'] as const) info.kubeconfigs[user] = writeKubeconfig(info, user, { user });
    info.startup.totalMs = Math.round(performance.now() - t0);
    writeInfo(info);
    return new Cluster(info, { etcd, apiserver, apiserverArgs, ownsDir });
  } catch (err) {
    await cleanup();
    if (ownsDir) {
      ownedDirs.delete(dir);
      // Keep the logs the error message points at.
      fs.rmSync(path.join(dir, 'etcd-data'), { recursive: true, force: true });
    }
    if (err instanceof Error && !/test control plane/.test(err.message)) {
      throw startupError('startup failed', err.message, [logs.etcd, logs.apiserver]);
    }
    throw err;
  }
}

export class Cluster {
  info: ClusterInfo;
  #etcd: ChildProcess;
  #apiserver: ChildProcess | undefined;
  readonly #apiserverArgs: string[];
  readonly #ownsDir: boolean;
  #stopped = false;

  constructor(info: ClusterInfo, internals: { etcd: ChildProcess; apiserver: ChildProcess; apiserverArgs: string[]; ownsDir: boolean }) {
    this.info = info;
    this.#etcd = internals.etcd;
    this.#apiserver = internals.apiserver;
    this.#apiserverArgs = internals.apiserverArgs;
    this.#ownsDir = internals.ownsDir;
  }

  /**
   * SIGTERM (graceful: the listener closes, so new connections are refused)
   * or SIGKILL (a crash). Falls back to SIGKILL after `graceMs`.
   */
  async stopApiserver(opts: { signal?: 'SIGTERM' | 'SIGKILL'; graceMs?: number } = {}): Promise<void> {
    const child = this.#apiserver;
    if (!child || exited(child)) return;
    const signal = opts.signal ?? 'SIGTERM';
    if (signal === 'SIGTERM') child.kill('SIGCONT'); // a frozen process would never act on SIGTERM
    child.kill(signal);
    if (!(await waitExit(child, opts.graceMs ?? 30_000))) {
      child.kill('SIGKILL');
      await waitExit(child, 10_000);
    }
    this.#apiserver = undefined;
  }

  /** Same port, flags, certs and etcd data; resolves once /readyz is ok. */
  async startApiserver(): Promise<void> {
    if (this.#stopped) throw new Error('cluster is stopped');
    if (this.#apiserver && !exited(this.#apiserver)) throw new Error('kube-apiserver is already running');
    const t = performance.now();
    const child = spawnServer(path.join(this.info.binDir, 'kube-apiserver'), this.#apiserverArgs, this.info.logs.apiserver, this.info.detached);
    this.#apiserver = child;
    const ca = fs.readFileSync(this.info.caFile);
    await waitReady(child, 'restarted kube-apiserver', this.info.logs.apiserver, async () => (await probe(`${this.info.server}/readyz`, ca)) === 200, 120_000);
    this.info.apiserverPid = child.pid!;
    this.info.startup.apiserverMs = Math.round(performance.now() - t);
    writeInfo(this.info);
  }

  freezeApiserver(): void {
    this.#signalApiserver('SIGSTOP');
  }

  thawApiserver(): void {
    this.#signalApiserver('SIGCONT');
  }

  freezeEtcd(): void {
    this.#etcd.kill('SIGSTOP');
  }

  thawEtcd(): void {
    this.#etcd.kill('SIGCONT');
  }

  writeKubeconfig(name: string, opts: { user: User; server?: string; caFile?: string }): string {
    return writeKubeconfig(this.info, name, opts);
  }

  serviceAccountKubeconfig(name: string, rules: PolicyRule[], opts: { server?: string } = {}): Promise<string> {
    return serviceAccountKubeconfig(this.info, name, rules, opts);
  }

  /** Kills both servers (SIGKILL works on frozen ones too); idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const child of [this.#apiserver, this.#etcd]) {
      if (!child || exited(child)) continue;
      child.kill('SIGKILL');
      await waitExit(child, 10_000);
    }
    this.#apiserver = undefined;
    if (this.#ownsDir) {
      ownedDirs.delete(this.info.dir);
      fs.rmSync(this.info.dir, { recursive: true, force: true });
    } else fs.rmSync(path.join(this.info.dir, 'cluster.json'), { force: true });
  }

  #signalApiserver(signal: NodeJS.Signals): void {
    if (!this.#apiserver || exited(this.#apiserver)) throw new Error('kube-apiserver is not running');
    this.#apiserver.kill(signal);
  }
}

/** Reads the cluster.json of a running cluster and checks that it answers. */
export async function attachCluster(infoPath: string): Promise<ClusterInfo> {
  let info: ClusterInfo;
  try {
    info = JSON.parse(fs.readFileSync(infoPath, 'utf8')) as ClusterInfo;
  } catch (err) {
    throw new Error(`cannot read test cluster info ${infoPath}: ${(err as Error).message}`);
  }
  for (const [name, pid] of [
    ['etcd', info.etcdPid],
    ['kube-apiserver', info.apiserverPid],
  ] as const) {
    if (!pidAlive(pid)) throw new Error(`test cluster in ${info.dir}: ${name} (pid ${pid}) is not running`);
  }
  const ca = fs.readFileSync(info.caFile);
  const deadline = Date.now() + 30_000;
  while ((await probe(`${info.server}/readyz`, ca)) !== 200) {
    if (Date.now() > deadline) throw new Error(`test cluster in ${info.dir}: ${info.server}/readyz is not ok; see ${info.logs.apiserver}`);
    await sleep(200);
  }
  return info;
}

/** Is this pid still the process we started from binDir (guards against pid reuse)? */
function isOurs(pid: number, bin: string): boolean {
  if (!pidAlive(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === bin;
  } catch {
    return true; // no /proc: trust the recorded pid
  }
}

/** Stops a detached cluster from its cluster.json (SIGTERM, then SIGKILL). */
export async function stopDetached(info: ClusterInfo): Promise<void> {
  for (const [pid, bin] of [
    [info.apiserverPid, path.join(info.binDir, 'kube-apiserver')],
    [info.etcdPid, path.join(info.binDir, 'etcd')],
  ] as const) {
    if (!isOurs(pid, bin)) continue;
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 5_000;
    while (isOurs(pid, bin) && Date.now() < deadline) await sleep(100);
    if (isOurs(pid, bin)) process.kill(pid, 'SIGKILL');
    while (pidAlive(pid) && isOurs(pid, bin)) await sleep(50);
  }
}

// ---------------------------------------------------------------------------
// The client-go peer

export interface PeerEvent {
  event: 'campaigning' | 'started-leading' | 'stopped-leading' | 'new-leader' | 'exit';
  ms: number;
  id: string;
  leader?: string;
}

export interface PeerOptions {
  id: string;
  lockName: string;
  kubeconfig: string;
  namespace?: string;
  leaseDuration?: string;
  renewDeadline?: string;
  retryPeriod?: string;
  userAgent?: string;
  /** Append start/beat lines to this ledger while leading, under `ledgerName`. */
  ledger?: string;
  ledgerName?: string;
  /** Coordinated leader election: a LeaseCandidate with these versions (X.Y.Z). */
  coordinated?: { binaryVersion: string; emulationVersion?: string };
  env?: NodeJS.ProcessEnv;
}

/** A client-go leader-election candidate (leader-peer) whose events are collected. */
export class LeaderPeer {
  readonly id: string;
  readonly proc: ChildProcess;
  readonly events: PeerEvent[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters = new Set<() => void>();
  #ended = false;

  constructor(binDir: string, opts: PeerOptions) {
    this.id = opts.id;
    const args = [
      `--id=${opts.id}`,
      `--lock-name=${opts.lockName}`,
      `--lock-namespace=${opts.namespace ?? 'default'}`,
      `--kubeconfig=${opts.kubeconfig}`,
      `--lease-duration=${opts.leaseDuration ?? '4s'}`,
      `--renew-deadline=${opts.renewDeadline ?? '2s'}`,
      `--retry-period=${opts.retryPeriod ?? '500ms'}`,
      ...(opts.userAgent ? [`--user-agent=${opts.userAgent}`] : []),
      ...(opts.ledger ? [`--ledger=${opts.ledger}`, `--ledger-name=${opts.ledgerName ?? opts.id}`] : []),
      ...(opts.coordinated
        ? [
            '--coordinated',
            `--binary-version=${opts.coordinated.binaryVersion}`,
            `--emulation-version=${opts.coordinated.emulationVersion ?? opts.coordinated.binaryVersion}`,
          ]
        : []),
    ];
    this.proc = spawnGuarded(path.join(binDir, 'leader-peer'), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
      // Bounded: client-go can log a lot while the apiserver is away.
      this.stderr = (this.stderr + s).slice(-20_000);
    });
    const lines = readline.createInterface({ input: this.proc.stdout! });
    lines.on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as PeerEvent);
      } catch {
        return;
      }
      for (const w of [...this.#waiters]) w();
    });
    // stdout closes only once the peer is gone (the guard's watcher holds no copy).
    lines.on('close', () => {
      this.#ended = true;
      for (const w of [...this.#waiters]) w();
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static async start(info: ClusterInfo, opts: Omit<PeerOptions, 'kubeconfig'> & { kubeconfig?: string }): Promise<LeaderPeer> {
    return new LeaderPeer(info.binDir, { ...opts, kubeconfig: opts.kubeconfig ?? info.kubeconfigs.candidate });
  }

  /** Resolves with the first event (already seen or future) matching `pred`. */
  waitFor(pred: (e: PeerEvent) => boolean, timeoutMs = 60_000): Promise<PeerEvent> {
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        done();
        reject(new Error(`leader-peer ${this.id} ${why}; events: ${JSON.stringify(this.events)}\nstderr tail:\n${this.stderr.slice(-2000)}`));
      };
      const check = (): void => {
        const hit = this.events.find(pred);
        if (hit) {
          done();
          resolve(hit);
        } else if (this.#ended) fail('exited without the awaited event');
      };
      const timer = setTimeout(() => fail(`gave no awaited event within ${timeoutMs} ms`), timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!exited(this.proc)) this.proc.kill(signal);
  }
}
