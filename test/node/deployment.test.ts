// The examples as Kubernetes runs them: examples/Dockerfile built by podman, examples/rbac.yaml
// applied as written and examples/deployment.yaml with only the test substitutions below, on a
// real node (kubelet + containerd + runc, test/control-plane/node.ts), in a namespace where
// admission enforces the Restricted Pod Security Standard.
//
// Test substitutions to deployment.yaml, and nothing else:
// - the apiserver address: KUBERNETES_SERVICE_HOST/PORT point at the Pods' bridge gateway,
//   which the harness forwards to the loopback apiserver (there is no kube-proxy for the
//   `kubernetes` Service's ClusterIP);
// - a PersistentVolumeClaim (bound to a hostPath PersistentVolume; hostPath volumes themselves
//   are forbidden by the Restricted standard) mounted at /ledger, where the test's job.js (the
//   Dockerfile's `COPY job.js`) writes its ledger.
// The image keeps its name: the one built here is tagged registry.example.com/nightly-report:1.0.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadAllYaml } from '@kubernetes/client-node/dist/yaml.js';
import { LeaseWatch } from '../chaos/lease-watch.ts';
import type { ApiTarget } from '../control-plane/cluster.ts';
import { apiRequest, target } from '../control-plane/cluster.ts';
import { buildExampleImage } from '../control-plane/images.ts';
import type { TestNode } from '../control-plane/node.ts';
import { startNode } from '../control-plane/node.ts';
import { MemoryCgroup } from '../support/cgroup.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const NS = 'leader-run-node';
const LOCK = 'nightly-report';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
// biome-ignore lint/suspicious/noExplicitAny: the tests read whatever shape the API returns
type Obj = any;

let node: TestNode;
let admin: ApiTarget;
let ledger: string;
let work: string;
let watch: LeaseWatch;

async function must(method: string, url: string, body?: unknown, contentType?: string): Promise<Obj> {
  const r = await apiRequest(admin, method, url, body, contentType ? { contentType } : {});
  if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${url}: HTTP ${r.status} ${r.text}`);
  return r.body;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

const RESOURCES: Record<string, string> = {
  ServiceAccount: `/api/v1/namespaces/${NS}/serviceaccounts`,
  Role: `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`,
  RoleBinding: `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`,
  Deployment: `/apis/apps/v1/namespaces/${NS}/deployments`,
};

async function apply(doc: Obj): Promise<void> {
  const url = RESOURCES[doc.kind as string];
  if (!url) throw new Error(`the test cannot apply a ${doc.kind}`);
  await must('POST', url, doc);
}

async function pods(): Promise<Obj[]> {
  return (await must('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dnightly-report`)).items;
}

const isReady = (p: Obj): boolean => (p.status?.conditions ?? []).some((c: Obj) => c.type === 'Ready' && c.status === 'True');

async function holder(): Promise<string> {
  const r = await apiRequest(admin, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${LOCK}`);
  return r.status === 200 ? (r.body.spec.holderIdentity ?? '') : '';
}

interface Entry {
  ms: number;
  what: string;
  pod: string;
  pid: string;
}

function readLedger(): Entry[] {
  return fs
    .readFileSync(ledger, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [ms, what, pod, pid] = l.split(' ');
      return { ms: Number(ms), what: what!, pod: pod!, pid: pid! };
    })
    .sort((a, b) => a.ms - b.ms);
}

/** One child at a time: each child's ledger entries (start, beats, exit) span an interval, and
 *  no two intervals overlap. Returns the handovers: last entry of one → start of the next.
 *  A child is its Pod and pid from one `start` on: a restarted container is a fresh PID
 *  namespace, where the next child often gets the same pid as the one before it. */
function checkLedger(): Array<{ from: string; to: string; gapMs: number; exited: boolean }> {
  type Term = { pod: string; first: number; last: number; exited: boolean };
  const current = new Map<string, Term>();
  const terms: Term[] = [];
  for (const e of readLedger()) {
    const key = `${e.pod}/${e.pid}`;
    let t = current.get(key);
    if (!t || e.what === 'start') {
      t = { pod: e.pod, first: e.ms, last: e.ms, exited: false };
      current.set(key, t);
      terms.push(t);
    }
    t.last = Math.max(t.last, e.ms);
    if (e.what === 'exit') t.exited = true;
  }
  const sorted = terms.sort((a, b) => a.first - b.first);
  const handovers: Array<{ from: string; to: string; gapMs: number; exited: boolean }> = [];
  for (let i = 1; i < sorted.length; i++) {
    const [prev, next] = [sorted[i - 1]!, sorted[i]!];
    assert.ok(prev.last < next.first, `two children at once: ${prev.pod} (until ${prev.last}) and ${next.pod} (from ${next.first}); ledger ${ledger}`);
    handovers.push({ from: prev.pod, to: next.pod, gapMs: next.first - prev.last, exited: prev.exited });
  }
  return handovers;
}

/** A Pod's memory cgroup on the node (the kubelet runs with the cgroupfs driver). */
function podCgroup(uid: string): MemoryCgroup {
  for (const root of ['/sys/fs/cgroup/memory/kubepods', '/sys/fs/cgroup/kubepods'])
    for (const qos of ['', 'burstable', 'besteffort']) {
      const dir = path.join(root, qos, `pod${uid}`);
      if (fs.existsSync(dir)) return MemoryCgroup.at(dir);
    }
  throw new Error(`no memory cgroup for Pod ${uid} under /sys/fs/cgroup`);
}

function kubeletGet(urlPath: string): Promise<Obj> {
  return new Promise((resolve, reject) => {
    https
      .get(new URL(urlPath, node.info.kubeletUrl), { rejectUnauthorized: false, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => (text += s));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`kubelet ${urlPath}: HTTP ${res.statusCode} ${text}`))));
      })
      .on('error', reject);
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function allReady(exclude: Set<string> = new Set()): Promise<Obj[] | undefined> {
  const ps = (await pods()).filter((p) => !p.metadata.deletionTimestamp);
  return ps.length === 3 && ps.every((p) => isReady(p) && !exclude.has(p.metadata.name)) ? ps : undefined;
}

/** Waits for a Lease release (holder "") between the current holder and a new one. */
function releasedBetween(from: string, to: string): boolean {
  const seq = watch.events.map((e) => e.holder);
  const i = seq.lastIndexOf(from);
  const j = seq.indexOf(to, i);
  return i >= 0 && j > i && seq.slice(i, j).includes('');
}

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'leader-run-node-test-'));
  const image = buildExampleImage(path.join(work, 'image'), path.join(HERE, 'job.js'));
  console.log(`image ${image.ref}: ${(image.bytes / 1e6).toFixed(1)} MB, built from examples/Dockerfile in ${image.buildMs} ms`);
  node = await startNode({ images: [image], extraDirs: [work], keepLogs: process.env.LEADER_RUN_KEEP_NODE_LOGS === '1' });
  fs.rmSync(path.join(work, 'image'), { recursive: true, force: true });
  console.log(`node ${node.info.name} Ready ${node.info.startup.readyMs} ms after the kubelet started; node up in ${node.info.startup.totalMs} ms`);
  admin = target(node.api, 'admin');
  ledger = path.join(work, 'ledger', 'ledger.log');
  fs.mkdirSync(path.dirname(ledger), { mode: 0o777 });
  fs.chmodSync(path.dirname(ledger), 0o777);
  fs.writeFileSync(ledger, '', { mode: 0o666 });
  fs.chmodSync(ledger, 0o666);

  await must('POST', '/api/v1/namespaces', {
    metadata: { name: NS, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' } },
  });
  // Pod admission waits for the namespace's default ServiceAccount; the controller-manager makes it.
  await until('the default ServiceAccount', async () => (await apiRequest(admin, 'GET', `/api/v1/namespaces/${NS}/serviceaccounts/default`)).status === 200);
  for (const doc of loadAllYaml(fs.readFileSync(path.join(REPO, 'examples', 'rbac.yaml'), 'utf8')) as Obj[]) await apply(doc);
  await must('POST', '/api/v1/persistentvolumes', {
    metadata: { name: `${NS}-ledger` },
    spec: {
      capacity: { storage: '1Mi' },
      accessModes: ['ReadWriteMany'],
      storageClassName: '',
      hostPath: { path: path.dirname(ledger), type: 'Directory' },
      claimRef: { namespace: NS, name: 'ledger' },
    },
  });
  await must('POST', `/api/v1/namespaces/${NS}/persistentvolumeclaims`, {
    metadata: { name: 'ledger' },
    spec: { accessModes: ['ReadWriteMany'], storageClassName: '', volumeName: `${NS}-ledger`, resources: { requests: { storage: '1Mi' } } },
  });
  watch = new LeaseWatch(admin, NS, LOCK, path.join(work, 'lease-events.log'));
});

after(async () => {
  watch?.stop();
  if (node) {
    const forced = await node.stop();
    if (forced.length) console.log(`teardown forced: ${forced.join(', ')}`);
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the Restricted standard is enforced: a privileged Pod is refused in the namespace', async () => {
  const r = await apiRequest(admin, 'POST', `/api/v1/namespaces/${NS}/pods`, {
    metadata: { name: 'privileged' },
    spec: { containers: [{ name: 'c', image: 'registry.example.com/nightly-report:1.0', imagePullPolicy: 'Never' }] },
  });
  assert.equal(r.status, 403, r.text);
  assert.match(r.body.message, /violates PodSecurity "restricted/);
});

test('examples/deployment.yaml: 3 replicas, one leader, probes answer, the projected token authenticates', async () => {
  const docs = loadAllYaml(fs.readFileSync(path.join(REPO, 'examples', 'deployment.yaml'), 'utf8')) as Obj[];
  const dep = docs.find((d) => d.kind === 'Deployment');
  const spec = dep.spec.template.spec;
  const c = spec.containers[0];
  c.env = [
    ...(c.env ?? []),
    { name: 'KUBERNETES_SERVICE_HOST', value: node.info.gateway },
    { name: 'KUBERNETES_SERVICE_PORT', value: String(node.info.apiserverPort) },
  ];
  c.volumeMounts = [...(c.volumeMounts ?? []), { name: 'ledger', mountPath: '/ledger' }];
  spec.volumes = [...(spec.volumes ?? []), { name: 'ledger', persistentVolumeClaim: { claimName: 'ledger' } }];
  assert.equal(dep.spec.replicas, 3);
  await apply(dep);

  const ready = await until('3 Ready Pods', () => allReady(), 180_000);
  const leader = await until('a Pod to hold the Lease', async () => {
    const h = await holder();
    return ready.some((p) => p.metadata.name === h) && h;
  });
  console.log(`leader ${leader}; pods ${ready.map((p) => `${p.metadata.name}@${p.status.podIP}`).join(' ')}`);
  await until('the leader child in the ledger', async () => readLedger().some((e) => e.what === 'start' && e.pod === leader));
  checkLedger();

  // The kubelet's probes passed (Ready); and the endpoints answer on every Pod's own IP.
  for (const p of ready) {
    assert.equal(await httpStatus(`http://${p.status.podIP}:9090/healthz`), 200, `${p.metadata.name} /healthz`);
    assert.equal(await httpStatus(`http://${p.status.podIP}:9090/readyz`), 200, `${p.metadata.name} /readyz`);
  }

  // The only credential in the Pod is the projected token; it is bound to the Pod.
  const lp = ready.find((p) => p.metadata.name === leader);
  const vols = path.join(node.info.kubeletRoot, 'pods', lp.metadata.uid, 'volumes', 'kubernetes.io~projected');
  const projected = fs.readdirSync(vols).find((d) => d.startsWith('kube-api-access-'));
  assert.ok(projected, `no kube-api-access volume in ${vols}`);
  const token = fs.readFileSync(path.join(vols, projected, 'token'), 'utf8');
  const review = await apiRequest({ ...admin, token }, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
  });
  assert.equal(review.status, 201, review.text);
  assert.equal(review.body.status.userInfo.username, `system:serviceaccount:${NS}:leader-run`);
  assert.deepEqual(review.body.status.userInfo.extra['authentication.kubernetes.io/pod-name'], [leader]);

  // Memory working set of the leader's Pod, from the kubelet's stats summary (straight from
  // the kubelet: the apiserver's node proxy refuses loopback addresses).
  // Read once leader-run's start-up is over (core/heap.ts collects its garbage 5 s in).
  const started = Math.max(...ready.map((p) => Date.parse(p.status.containerStatuses?.[0]?.state?.running?.startedAt ?? '') || Date.now()));
  await sleep(Math.max(0, started + 10_000 - Date.now()));
  // cAdvisor fills in a new Pod's figures at its next housekeeping: wait for them.
  const summary = await until('memory figures for the Pods', async () => {
    const sum = await kubeletGet('/stats/summary');
    const mine = sum.pods.filter((s: Obj) => s.podRef.namespace === NS);
    return mine.length === 3 && mine.every((s: Obj) => s.memory?.workingSetBytes > 0) && sum;
  });
  for (const ps of summary.pods.filter((s: Obj) => s.podRef.namespace === NS)) {
    console.log(
      `memory ${ps.podRef.name}${ps.podRef.name === leader ? ' (leader)' : ''}: working set ${(ps.memory.workingSetBytes / 1048576).toFixed(1)} MiB, RSS ${(ps.memory.rssBytes / 1048576).toFixed(1)} MiB`,
    );
  }
  // Where it goes, read now from each Pod's cgroup (the summary is cAdvisor's last look):
  // anonymous memory and file pages, and each process's PSS (its anonymous part in brackets).
  // File pages are charged to the Pod that touched them first, Node's binary included.
  const mib = (kib: number | undefined): string => (kib === undefined ? '?' : (kib / 1024).toFixed(1));
  for (const p of ready) {
    const m = podCgroup(p.metadata.uid).read();
    const procs = m.pss.map((x) => `${x.comm} ${mib(x.pssKiB)} (${mib(x.anonKiB)})`).join(', ');
    console.log(
      `memory ${p.metadata.name}${p.metadata.name === leader ? ' (leader)' : ''} from its cgroup: working set ${mib(m.workingSetKiB)} MiB = anon ${mib(m.anonKiB)} + active file ${mib(m.activeFileKiB)} + other ${mib(m.workingSetKiB - m.anonKiB - m.activeFileKiB)} (inactive file ${mib(m.inactiveFileKiB)}); PSS: ${procs}`,
    );
  }
});

test('a rolling restart hands over through the kubelet SIGTERM, releasing the Lease', async () => {
  const before = new Set((await pods()).map((p) => p.metadata.name as string));
  const first = await holder();
  const nLedger = checkLedger().length;
  await must(
    'PATCH',
    `/apis/apps/v1/namespaces/${NS}/deployments/nightly-report`,
    { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } } } },
    'application/strategic-merge-patch+json',
  );
  await until(
    'the rollout to finish with a new Pod leading',
    async () => {
      const ps = await pods();
      const h = await holder();
      return ps.length === 3 && ps.every((p) => !before.has(p.metadata.name) && isReady(p)) && ps.some((p) => p.metadata.name === h);
    },
    240_000,
  );
  const last = await holder();
  const hand = checkLedger().slice(nLedger);
  assert.ok(hand.length >= 1, 'no handover in the ledger');
  for (const h of hand) {
    console.log(`rolling restart handover ${h.from} → ${h.to}: old child exit → new child start ${h.gapMs} ms`);
  }
  assert.ok(releasedBetween(first, last) || hand.length > 1, `no release of ${first} before ${last} was seen: ${watch.events.map((e) => e.holder).join(',')}`);
  // Every change of holder went through a release, none through expiry.
  const seq = watch.events.map((e) => e.holder).filter((h, i, a) => i === 0 || h !== a[i - 1]);
  for (let i = 1; i < seq.length; i++) if (seq[i] !== '') assert.equal(seq[i - 1], '', `holder went ${seq[i - 1]} → ${seq[i]} without a release`);
});

test('deleting the leader Pod hands over with the Lease released', async () => {
  const leader = await holder();
  const nLedger = checkLedger().length;
  const r = await apiRequest(admin, 'DELETE', `/api/v1/namespaces/${NS}/pods/${leader}`);
  assert.equal(r.status, 200, r.text);
  const next = await until('another Pod to lead', async () => {
    const h = await holder();
    return h && h !== leader && h;
  });
  assert.ok(releasedBetween(leader, next), `no release between ${leader} and ${next}: ${watch.events.map((e) => e.holder).join(',')}`);
  await until('the new leader child in the ledger', async () => readLedger().some((e) => e.what === 'start' && e.pod === next));
  const hand = checkLedger().slice(nLedger);
  assert.equal(hand.length, 1);
  console.log(`delete pod handover ${hand[0]!.from} → ${hand[0]!.to}: old child exit → new child start ${hand[0]!.gapMs} ms`);
  const ready = await until('3 Ready Pods again', () => allReady(new Set([leader])), 180_000);
  // Within the example's memory limit (and no other restart) through all of the above.
  for (const p of ready)
    for (const cs of p.status.containerStatuses) assert.equal(cs.restartCount, 0, `${p.metadata.name} restarted: ${JSON.stringify(cs.lastState)}`);
});

test("the leader's container killed outright: nothing of its tree is left, another takes over after D", async () => {
  const leader = await holder();
  const nLedger = checkLedger().length;
  const ctr = (...args: string[]): string => execFileSync('ctr', ['--address', node.state.socket, '-n', 'k8s.io', ...args], { encoding: 'utf8' });
  const id = ctr('containers', 'ls', '-q', `labels."io.kubernetes.pod.name"==${leader},labels."io.kubernetes.container.name"==job`)
    .split('\n')
    .filter(Boolean)
    .find((c) =>
      /RUNNING/.test(
        ctr('tasks', 'ls')
          .split('\n')
          .find((l) => l.startsWith(c)) ?? '',
      ),
    );
  assert.ok(id, `no running job container for ${leader}`);
  // The container's whole tree as the host sees it: leader-run, its watchdog, the child.
  const tree = ctr('tasks', 'ps', id)
    .split('\n')
    .slice(1)
    .map((l) => Number(l.trim().split(/\s+/)[0]))
    .filter((n) => n > 0);
  assert.ok(tree.length >= 3, `expected leader-run, watchdog and the child in ${id}: ${tree}`);
  const killedAt = Date.now();
  ctr('tasks', 'kill', '-s', 'SIGKILL', '--all', id);
  const next = await until(
    'a new child after the kill',
    async () => {
      const h = checkLedger().slice(nLedger);
      return h.length > 0 && h[h.length - 1];
    },
    120_000,
  );
  for (const pid of tree) assert.equal(fs.existsSync(`/proc/${pid}`), false, `pid ${pid} of the killed tree is alive`);
  assert.equal(next.exited, false, 'the killed child wrote an exit');
  const lease = (await apiRequest(admin, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${LOCK}`)).body;
  const started = readLedger().find((e) => e.what === 'start' && e.pod === next.to && e.ms >= killedAt)!;
  console.log(
    `killed ${leader}'s container: ${next.to}'s child started ${started.ms - killedAt} ms after the kill ` +
      `(D = ${lease.spec.leaseDurationSeconds} s; the old child's last ledger entry → new start ${next.gapMs} ms)`,
  );
  const ready = await until('3 Ready Pods again', () => allReady(), 180_000);
  for (const p of ready) {
    for (const cs of p.status.containerStatuses) assert.notEqual(cs.lastState?.terminated?.reason, 'OOMKilled', `${p.metadata.name} was OOM-killed`);
  }
});

test("--leader-service: after a handover the EndpointSlice holds only the leader's Pod", async () => {
  // The README's "Leader routing" additions to the example: the flag, POD_NAME and
  // POD_NAMESPACE; the optional leader-run-routing Role of examples/rbac.yaml is applied.
  const service = 'nightly-report-leader';
  await must('POST', `/api/v1/namespaces/${NS}/services`, {
    metadata: { name: service },
    spec: { selector: { app: 'nightly-report' }, ports: [{ name: 'http', port: 9090, targetPort: 9090 }] },
  });
  const dep = await must('GET', `/apis/apps/v1/namespaces/${NS}/deployments/nightly-report`);
  const c = dep.spec.template.spec.containers[0];
  const dashes = c.args.indexOf('--');
  const args = [...c.args.slice(0, dashes), '--leader-service', service, ...c.args.slice(dashes)];
  const before = new Set((await pods()).map((p) => p.metadata.name as string));
  await must(
    'PATCH',
    `/apis/apps/v1/namespaces/${NS}/deployments/nightly-report`,
    {
      spec: {
        template: {
          spec: {
            containers: [
              {
                name: c.name,
                args,
                env: [
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                ],
              },
            ],
          },
        },
      },
    },
    'application/strategic-merge-patch+json',
  );
  await until(
    'the rollout with --leader-service to finish',
    async () => {
      const ps = await pods();
      const h = await holder();
      return ps.length === 3 && ps.every((p) => !before.has(p.metadata.name) && isReady(p)) && ps.some((p) => p.metadata.name === h);
    },
    240_000,
  );
  const endpointsOf = async (): Promise<string[]> => {
    const slices = await must('GET', `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D${service}`);
    return slices.items.flatMap((sl: Obj) => (sl.endpoints ?? []).map((e: Obj) => e.targetRef?.name as string));
  };
  const onlyLeader = async (): Promise<string | false> => {
    const h = await holder();
    const eps = await endpointsOf();
    return h !== '' && eps.length === 1 && eps[0] === h && h;
  };
  const first = await until('the EndpointSlice to hold only the leader', onlyLeader);
  const svc = await must('GET', `/api/v1/namespaces/${NS}/services/${service}`);
  assert.deepEqual(svc.spec.selector, { 'leader-run.io/pod': first });
  const t = Date.now();
  assert.equal((await apiRequest(admin, 'DELETE', `/api/v1/namespaces/${NS}/pods/${first}`)).status, 200);
  const next = await until('the EndpointSlice to hold only the new leader', async () => {
    const h = await onlyLeader();
    return h && h !== first && h;
  });
  console.log(`--leader-service: EndpointSlice moved from ${first} to ${next} ${Date.now() - t} ms after the DELETE`);
  checkLedger();
});

test('teardown leaves nothing behind', async () => {
  await must('DELETE', `/api/v1/namespaces/${NS}`);
  watch.stop();
  const dir = node.info.dir;
  const forced = await node.stop();
  assert.deepEqual(forced, [], 'teardown had to force');
  assert.equal(fs.existsSync(dir), false, `${dir} remains`);
  assert.equal(fs.existsSync('/run/leader-run-node'), false, 'the state dir remains');
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  assert.equal(mounts.includes(dir), false, 'mounts remain');
  for (const p of node.state.procs)
    assert.equal(fs.existsSync(`/proc/${p.pid}`) && fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').startsWith(p.bin), false, `${p.name} runs`);
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const d = `/sys/fs/cgroup/${h}/kubepods`;
    if (!node.state.kubepodsBefore.includes(d)) assert.equal(fs.existsSync(d), false, `${d} remains`);
  }
  for (const [p, existed] of Object.entries(node.state.outside)) if (!existed) assert.equal(fs.existsSync(p), false, `${p} remains`);
  for (const p of ['/var/lib/containers', '/run/containers']) assert.equal(fs.existsSync(p), false, `${p} (podman's) remains`);
  assert.equal(fs.existsSync(`/sys/class/net/${node.state.bridge}`), false, 'the bridge remains');
});
