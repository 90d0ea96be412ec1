/**
 * Issue 5, "Operate it", end to end against the real apiserver: the HTTP endpoints and
 * metrics, `leader-run status`, leader routing through a Service, and credentials kept out of
 * every log line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  apiRequest,
  type ClusterInfo,
  FaultProxy,
  freePort,
  type PolicyRule,
  serviceAccountKubeconfig,
  sharedCluster,
  spawnGuarded,
  target,
  writeKubeconfig,
} from '../support/cluster.ts';
import { BIN, FAST, LeaderRun, readLedger, started, tempDir, uniqueName, until, workerCmd } from '../support/leader-run.ts';

/** Slower than FAST, so a deliberate 3 s freeze or a short network fault stays inside R. */
const ROOMY = ['--lease-duration', '8s', '--renew-deadline', '5s', '--retry-period', '1s', '--fence-grace', '500ms'];

const LEASES: PolicyRule = { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update'] };
/** The leader-run-routing Role of examples/rbac.yaml. */
const ROUTING: PolicyRule[] = [
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'update'] },
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'update'] },
];

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function leaderRun(args: string[], env?: NodeJS.ProcessEnv): LeaderRun {
  const lr = new LeaderRun(args, { env });
  cleanup.push(() => {
    lr.signal('SIGCONT');
    lr.signal('SIGKILL');
  });
  return lr;
}

interface Got {
  status: number;
  text: string;
  type: string;
}

function get(address: string, urlPath: string, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request(`http://${address}${urlPath}`, { method, agent: false, timeout: 20_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (text += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, type: String(res.headers['content-type'] ?? '') }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

async function addressOf(lr: LeaderRun): Promise<string> {
  return String((await lr.waitFor('http-listening')).address);
}

/** One sample of a metric from the text format, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function statusCmd(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'status', ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// biome-ignore lint/suspicious/noExplicitAny: the test reads whatever the API returns
async function leaseOf(info: ClusterInfo, name: string): Promise<{ status: number; body: any }> {
  return apiRequest(target(info, 'admin'), 'GET', `/apis/coordination.k8s.io/v1/namespaces/default/leases/${name}`);
}

describe('HTTP endpoints', () => {
  it('serve /healthz, /readyz, /leader and /metrics on the leader and a standby; /readyz is 503 while stopping', async () => {
    const info = await sharedCluster();
    const name = uniqueName('http');
    const ledger = path.join(tempDir(), 'ledger');
    const common = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--http-addr', '127.0.0.1:0', ...FAST];
    const a = leaderRun([...common, '--id', 'a', ...workerCmd(ledger, '--term-delay', '2000')]);
    await a.waitFor('child-started');
    const b = leaderRun([...common, '--id', 'b', ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    const [aAddr, bAddr] = [await addressOf(a), await addressOf(b)];
    assert.match(aAddr, /^127\.0\.0\.1:\d+$/);

    const aLeader = JSON.parse((await get(aAddr, '/leader')).text);
    assert.deepEqual(
      { ...aLeader, since: typeof aLeader.since },
      { lease: `default/${name}`, holder: 'a', self: 'a', leading: true, since: 'string', transitions: 0 },
    );
    assert.match(aLeader.since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    const bLeader = JSON.parse((await get(bAddr, '/leader')).text);
    assert.deepEqual(bLeader, { ...aLeader, self: 'b', leading: false }, 'the standby knows who leads');
    for (const addr of [aAddr, bAddr])
      for (const p of ['/healthz', '/readyz'])
        assert.deepEqual(await get(addr, p), { status: 200, text: 'ok\n', type: 'text/plain; charset=utf-8' }, `${addr}${p}`);

    let m = '';
    await until(
      async () => (sample((m = (await get(aAddr, '/metrics')).text), 'leader_run_renew_duration_seconds_count') ?? 0) >= 1,
      5_000,
      'a renewal in the metrics',
    );
    assert.match((await get(aAddr, '/metrics')).type, /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(m, `leader_election_master_status{name="${name}"}`), 1);
    assert.equal(sample(m, 'leader_run_leader_transitions_total'), 1);
    assert.equal(sample(m, 'leader_run_renew_failures_total'), 0);
    assert.equal(sample(m, 'leader_run_fence_duration_seconds_count'), 0);
    const bm = (await get(bAddr, '/metrics')).text;
    assert.equal(sample(bm, `leader_election_master_status{name="${name}"}`), 0);
    assert.equal(sample(bm, 'leader_run_leader_transitions_total'), 0);
    assert.equal((await get(aAddr, '/nope')).status, 404);
    assert.equal((await get(aAddr, '/healthz', 'POST')).status, 405);

    a.signal('SIGTERM'); // the child takes 2 s to stop; the Lease is renewed meanwhile
    await until(async () => (await get(aAddr, '/readyz')).status === 503, 5_000, 'a to be unready while stopping');
    assert.equal((await get(aAddr, '/readyz')).text, 'stopping\n');
    assert.equal((await get(aAddr, '/healthz')).status, 200, 'stopping is not dead');
    assert.equal(JSON.parse((await get(aAddr, '/leader')).text).leading, true, 'still leading until the child is gone');
    assert.equal((await get(bAddr, '/readyz')).status, 200);
    assert.equal(await a.exitCode(), 143);

    await b.waitFor('child-started');
    const bNow = JSON.parse((await get(bAddr, '/leader')).text);
    assert.equal(bNow.holder, 'b');
    assert.equal(bNow.leading, true);
    assert.equal(bNow.transitions, 1);
    const bm2 = (await get(bAddr, '/metrics')).text;
    assert.equal(sample(bm2, `leader_election_master_status{name="${name}"}`), 1);
    assert.equal(sample(bm2, 'leader_run_leader_transitions_total'), 1);
    b.signal('SIGTERM');
    assert.equal(await b.exitCode(), 143);
  });

  it('/healthz fails after the event loop was stuck for half the renew deadline, then recovers', async () => {
    const info = await sharedCluster();
    const ledger = path.join(tempDir(), 'ledger');
    const lr = leaderRun([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      uniqueName('stall'),
      '--id',
      'stall',
      '--http-addr',
      '127.0.0.1:0',
      ...ROOMY,
      ...workerCmd(ledger),
    ]);
    await lr.waitFor('child-started');
    const addr = await addressOf(lr);
    assert.equal((await get(addr, '/healthz')).status, 200);
    lr.signal('SIGSTOP'); // R = 5 s: a 3 s freeze stalls the loop past R/2 but keeps the lease
    const probe = get(addr, '/healthz'); // accepted by the kernel, answered once running again
    await new Promise((r) => setTimeout(r, 3000));
    lr.signal('SIGCONT');
    const h = await probe;
    assert.equal(h.status, 503, h.text);
    assert.match(h.text, /the event loop was stuck for \d+ms/);
    assert.equal(JSON.parse((await get(addr, '/leader')).text).leading, true, 'the lease survived the freeze');
    await until(async () => (await get(addr, '/healthz')).status === 200, 10_000, '/healthz to recover');
    assert.ok(!lr.has('stopped-leading'));
    lr.signal('SIGTERM');
    assert.equal(await lr.exitCode(), 143);
  });

  it('counts renewal failures while the leader still leads', async () => {
    const info = await sharedCluster();
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: info.apiserverPort });
    cleanup.push(() => proxy.close());
    const kubeconfig = writeKubeconfig(info, uniqueName('op-proxy'), { user: 'candidate', server: proxy.url });
    const ledger = path.join(tempDir(), 'ledger');
    const name = uniqueName('renewfail');
    const lr = leaderRun(['--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'rf', '--http-addr', '127.0.0.1:0', ...ROOMY, ...workerCmd(ledger)]);
    await lr.waitFor('child-started');
    const addr = await addressOf(lr);
    proxy.setMode('reset');
    await lr.waitFor('renew-failed', 5_000);
    const m = (await get(addr, '/metrics')).text;
    assert.ok((sample(m, 'leader_run_renew_failures_total') ?? 0) >= 1, m);
    assert.equal(sample(m, `leader_election_master_status{name="${name}"}`), 1);
    assert.equal((await get(addr, '/healthz')).status, 200, 'within the renew deadline: alive');
    proxy.setMode('pass');
    lr.signal('SIGTERM');
    assert.equal(await lr.exitCode(), 143);
    assert.ok(!lr.has('stopped-leading'), 'the network came back within R');
  });

  it('refuses a malformed --http-addr (64) and a port in use (78) before writing any Lease', async () => {
    const info = await sharedCluster();
    const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      spawnSync(process.execPath, [BIN, '--kubeconfig', info.kubeconfigs.candidate, ...args, '--', 'true'], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, ...env },
      });
    const bad = run(['--lock-name', uniqueName('addr'), '--http-addr', 'localhost']);
    assert.equal(bad.status, 64);
    assert.equal(
      bad.stderr,
      'leader-run: --http-addr "localhost" is not HOST:PORT; write it like 127.0.0.1:9090, [::1]:9090 or :9090 (port 0: any free port)\n',
    );
    const badEnv = run(['--lock-name', uniqueName('addr')], { LEADER_RUN_HTTP_ADDR: '127.0.0.1:http' });
    assert.equal(badEnv.status, 64);
    assert.match(badEnv.stderr, /^leader-run: LEADER_RUN_HTTP_ADDR \(--http-addr\) "127.0.0.1:http" is not HOST:PORT/);

    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    cleanup.push(() => holder.close());
    const port = (holder.address() as net.AddressInfo).port;
    const name = uniqueName('inuse');
    const inUse = run(['--lock-name', name, '--http-addr', `127.0.0.1:${port}`]);
    assert.equal(inUse.status, 78, inUse.stderr);
    assert.match(inUse.stderr, new RegExp(`--http-addr 127\\.0\\.0\\.1:${port}: cannot listen: the address is already in use`));
    assert.equal(inUse.stderr.trim().split('\n').length, 1, inUse.stderr);
    assert.equal((await leaseOf(info, name)).status, 404, 'no Lease written');
  });
});

describe('leader-run status', () => {
  it('shows holder, held for, renewed, expires in and transitions; 1 for no such Lease; 77, 78, 69 as the main command', async () => {
    const info = await sharedCluster();
    const name = uniqueName('status');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = leaderRun(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'st-a', ...FAST, ...workerCmd(ledger)]);
    await lr.waitFor('child-started');
    const kc = ['--kubeconfig', info.kubeconfigs.candidate];

    const table = statusCmd([...kc, '--lock-name', name]);
    assert.equal(table.status, 0, table.stderr);
    const [header, row, ...rest] = table.stdout.trimEnd().split('\n');
    assert.match(header ?? '', /^LEASE\s+HOLDER\s+HELD FOR\s+RENEWED\s+EXPIRES IN\s+TRANSITIONS\s+STRATEGY\s+PREFERRED HOLDER$/);
    assert.match(row ?? '', new RegExp(`^default/${name}\\s+st-a\\s+[\\d.]+s\\s+[\\d.]+s ago\\s+[\\d.]+s\\s+0\\s+<none>\\s+<none>$`));
    assert.deepEqual(rest, []);

    const json = statusCmd([...kc, '--lock-name', name, '-o', 'json']);
    assert.equal(json.status, 0, json.stderr);
    const v = JSON.parse(json.stdout);
    assert.equal(v.lease, `default/${name}`);
    assert.equal(v.state, 'held');
    assert.equal(v.holder, 'st-a');
    assert.equal(v.leaseDurationSeconds, 4);
    assert.equal(v.transitions, 0);
    assert.ok(v.expiresInSeconds > 0 && v.expiresInSeconds <= 4, String(v.expiresInSeconds));
    assert.ok(v.renewedAgoSeconds >= 0 && v.renewedAgoSeconds < 2, String(v.renewedAgoSeconds));

    // The variables of the main command work here too (a `kubectl exec` into the Pod needs no flags).
    const fromEnv = statusCmd(['-o', 'json'], { LEADER_RUN_LOCK_NAME: name, LEADER_RUN_KUBECONFIG: info.kubeconfigs.candidate });
    assert.equal(JSON.parse(fromEnv.stdout).holder, 'st-a');

    lr.signal('SIGTERM');
    await lr.exitCode();
    const released = JSON.parse(statusCmd([...kc, '--lock-name', name, '-o', 'json']).stdout);
    assert.equal(released.state, 'released');
    assert.equal(released.holder, null);
    assert.match(statusCmd([...kc, '--lock-name', name]).stdout, /\sreleased\s/);

    // A holder that stopped renewing long ago, written by the admin.
    const stale = uniqueName('stale');
    await apiRequest(target(info, 'admin'), 'POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', {
      metadata: { name: stale },
      spec: {
        holderIdentity: 'gone',
        leaseDurationSeconds: 15,
        acquireTime: '2026-01-01T00:00:00.000000Z',
        renewTime: '2026-01-01T00:00:10.000000Z',
        leaseTransitions: 7,
      },
    });
    const expired = statusCmd([...kc, '--lock-name', stale]);
    assert.match(expired.stdout.split('\n')[1] ?? '', new RegExp(`^default/${stale}\\s+gone\\s+\\d+d\\d*h?\\s+\\d+d\\d*h? ago\\s+expired\\s+7\\s`));

    const missing = statusCmd([...kc, '--lock-name', uniqueName('absent')]);
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr,
      /^leader-run status: Lease default\/absent-\S+ does not exist: nobody has campaigned for it yet, or --lock-name \/ --lock-namespace is wrong\n$/,
    );
    assert.equal(missing.stdout, '');

    const forbidden = statusCmd(['--kubeconfig', info.kubeconfigs.nobody, '--lock-name', name]);
    assert.equal(forbidden.status, 77);
    assert.match(forbidden.stderr, /HTTP 403.*leader-run status needs get on leases \(coordination\.k8s\.io\) in namespace default\n$/);
    const noConfig = statusCmd(['--kubeconfig', path.join(tempDir(), 'missing'), '--lock-name', name]);
    assert.equal(noConfig.status, 78);
    assert.match(noConfig.stderr, /^leader-run status: --kubeconfig: \S+ does not exist/);
    const refused = statusCmd([
      '--kubeconfig',
      writeKubeconfig(info, uniqueName('refused'), { user: 'candidate', server: `https://127.0.0.1:${await freePort()}` }),
      '--lock-name',
      name,
    ]);
    assert.equal(refused.status, 69);
    assert.match(refused.stderr, /API server unreachable: get Lease .*connection refused/);
    const usage = statusCmd(['--lock-name', name, '-o', 'yaml']);
    assert.equal(usage.status, 64);
    assert.equal(usage.stderr, 'leader-run status: --output "yaml" is not a format; use table or json\n');
  });

  it('--watch prints one line per leadership change, not per renewal, and ends with 0 on SIGINT', async () => {
    const info = await sharedCluster();
    const name = uniqueName('watch');
    const watchers = (['json', 'table'] as const).map((format) => {
      const proc = spawnGuarded(process.execPath, [BIN, 'status', '--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--watch', '-o', format], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      cleanup.push(() => proc.kill('SIGKILL'));
      const lines: string[] = [];
      let buf = '';
      proc.stdout?.setEncoding('utf8').on('data', (s: string) => {
        buf += s;
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        lines.push(...parts);
      });
      proc.stderr?.resume();
      return { proc, lines, exited: new Promise<number | null>((r) => proc.on('exit', (code) => r(code))) };
    });
    const [json, table] = watchers as [(typeof watchers)[0], (typeof watchers)[0]];
    await until(() => json.lines.length >= 1 && table.lines.length >= 2, 10_000, 'the first lines');
    assert.equal(JSON.parse(json.lines[0] ?? '').state, 'absent');

    const ledger = path.join(tempDir(), 'ledger');
    const lr = leaderRun([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--id',
      'w-a',
      ...FAST,
      ...workerCmd(ledger, '--exit-after', '3000'),
    ]);
    assert.equal(await lr.exitCode(), 0);
    await until(() => json.lines.some((l) => JSON.parse(l).state === 'released'), 10_000, 'the release to be shown');
    const states = json.lines.map((l) => JSON.parse(l) as { state: string; holder: string | null });
    assert.deepEqual(
      states.map((s) => [s.state, s.holder]),
      [
        ['absent', null],
        ['held', 'w-a'],
        ['released', null],
      ],
      'about six renewals happened: none of them is a line',
    );
    await until(() => table.lines.length >= 4, 5_000, 'the table lines');
    assert.match(table.lines[0] ?? '', /^TIME\s+LEASE\s+HOLDER\s+/);
    assert.match(table.lines[1] ?? '', new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\s+default/${name}\\s+<no Lease>`));
    assert.match(table.lines[2] ?? '', /\sw-a\s/);
    assert.match(table.lines[3] ?? '', /\sreleased\s/);
    for (const w of watchers) w.proc.kill('SIGINT');
    assert.deepEqual(await Promise.all(watchers.map((w) => w.exited)), [0, 0]);
  });

  it('--watch follows the Lease with a watch: a release taken over within milliseconds is still a line; without watch permission it reads every second', async () => {
    const info = await sharedCluster();
    const name = uniqueName('watch-gap');
    const follow = (kubeconfig: string) => {
      const proc = spawnGuarded(process.execPath, [BIN, 'status', '--kubeconfig', kubeconfig, '--lock-name', name, '--watch', '-o', 'json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      cleanup.push(() => proc.kill('SIGKILL'));
      const out = { lines: [] as string[], stderr: '', exited: new Promise<number | null>((r) => proc.on('exit', (code) => r(code))), proc };
      let buf = '';
      proc.stdout?.setEncoding('utf8').on('data', (s: string) => {
        buf += s;
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        out.lines.push(...parts);
      });
      proc.stderr?.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
      return out;
    };
    const watcher = follow(info.kubeconfigs.candidate);
    const getOnly = await serviceAccountKubeconfig(info, 'lr-status-get-only', [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get'] }]);
    const poller = follow(getOnly);
    await until(() => watcher.lines.length >= 1 && poller.lines.length >= 1, 10_000, 'the first lines');
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--', 'sleep', '60'];
    const a = leaderRun([...args.slice(0, 4), '--id', 'gap-a', ...args.slice(4)]);
    await a.waitFor('child-started');
    const b = leaderRun([...args.slice(0, 4), '--id', 'gap-b', ...args.slice(4)]);
    await b.waitFor('new-leader');
    a.signal('SIGTERM');
    await b.waitFor('child-started');
    const holders = () => watcher.lines.map((l) => (JSON.parse(l) as { holder: string | null }).holder);
    await until(() => holders().includes('gap-b'), 10_000, 'the takeover to be shown');
    assert.deepEqual(holders(), [null, 'gap-a', null, 'gap-b'], 'the release between the two terms is a line of its own');
    assert.match(poller.stderr, /reading the Lease every second instead \(grant watch on leases/);
    await until(() => poller.lines.some((l) => (JSON.parse(l) as { holder: string | null }).holder === 'gap-b'), 10_000, 'the poller to see gap-b');
    b.signal('SIGTERM');
    await b.exitCode();
    for (const w of [watcher, poller]) w.proc.kill('SIGINT');
    assert.deepEqual(await Promise.all([watcher.exited, poller.exited]), [0, 0]);
  });

  it('is a subcommand only as the first word: `leader-run -- status` runs a program named status', async () => {
    const info = await sharedCluster();
    const dir = tempDir();
    const marker = path.join(dir, 'ran');
    fs.writeFileSync(path.join(dir, 'status'), `#!/bin/sh\necho ran > '${marker}'\nexit 7\n`, { mode: 0o755 });
    const lr = leaderRun(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', uniqueName('prog'), ...FAST, '--', 'status'], {
      PATH: `${dir}:${process.env['PATH']}`,
    });
    assert.equal(await lr.exitCode(), 7);
    assert.equal(fs.readFileSync(marker, 'utf8'), 'ran\n');
  });
});

describe('leader routing (--leader-service)', () => {
  async function podsAndService(info: ClusterInfo, pods: string[]): Promise<string> {
    const admin = target(info, 'admin');
    // No controller-manager here: the namespace's default ServiceAccount must be made by hand.
    await apiRequest(admin, 'POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'default' } });
    for (const pod of pods) {
      const r = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods', {
        metadata: { name: pod, labels: { app: 'routing-demo' } },
        spec: { automountServiceAccountToken: false, containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
      });
      assert.equal(r.status, 201, r.text);
      cleanup.push(() => apiRequest(admin, 'DELETE', `/api/v1/namespaces/default/pods/${pod}?gracePeriodSeconds=0`));
    }
    const svc = uniqueName('leader');
    const s = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/services', {
      metadata: { name: svc },
      spec: { selector: { app: 'routing-demo' }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    assert.equal(s.status, 201, s.text);
    cleanup.push(() => apiRequest(admin, 'DELETE', `/api/v1/namespaces/default/services/${svc}`));
    return svc;
  }
  const selectorOf = async (info: ClusterInfo, svc: string) =>
    (await apiRequest(target(info, 'admin'), 'GET', `/api/v1/namespaces/default/services/${svc}`)).body.spec.selector as Record<string, string>;
  const labelsOf = async (info: ClusterInfo, pod: string) =>
    (await apiRequest(target(info, 'admin'), 'GET', `/api/v1/namespaces/default/pods/${pod}`)).body.metadata.labels as Record<string, string>;
  const order = (lr: LeaderRun, ...events: string[]) => events.map((e) => lr.records.findIndex((r) => r.event === e));

  it('labels each Pod, and points the Service at the leader before its child starts; the next leader takes it over', async () => {
    const info = await sharedCluster();
    const [pa, pb] = [uniqueName('pod-a'), uniqueName('pod-b')];
    const svc = await podsAndService(info, [pa, pb]);
    const kubeconfig = await serviceAccountKubeconfig(info, 'lr-routing', [LEASES, ...ROUTING]);
    const name = uniqueName('routing');
    const ledger = path.join(tempDir(), 'ledger');
    const args = (id: string) => ['--kubeconfig', kubeconfig, '--lock-name', name, '--id', id, '--leader-service', svc, ...FAST, ...workerCmd(ledger)];
    const a = leaderRun(args('a'), { POD_NAME: pa, POD_NAMESPACE: 'default' });
    await a.waitFor('child-started');
    assert.deepEqual(await selectorOf(info, svc), { 'leader-run.io/pod': pa });
    assert.deepEqual(await labelsOf(info, pa), { app: 'routing-demo', 'leader-run.io/pod': pa }, 'its own labels are kept');
    const [labelled, campaigning, routed, childStarted] = order(a, 'pod-labelled', 'campaigning', 'service-routed', 'child-started');
    assert.ok(labelled! >= 0 && labelled! < campaigning! && campaigning! < routed! && routed! < childStarted!, 'label, campaign, route, then the child');

    const b = leaderRun(args('b'), { POD_NAME: pb, POD_NAMESPACE: 'default' });
    await b.waitFor('pod-labelled');
    assert.equal((await labelsOf(info, pb))['leader-run.io/pod'], pb);
    assert.deepEqual(await selectorOf(info, svc), { 'leader-run.io/pod': pa }, 'a standby does not touch the Service');
    a.signal('SIGTERM');
    assert.equal(await a.exitCode(), 143);
    await b.waitFor('child-started');
    assert.deepEqual(await selectorOf(info, svc), { 'leader-run.io/pod': pb });
    const [bRouted, bStarted] = order(b, 'service-routed', 'child-started');
    assert.ok(bRouted! >= 0 && bRouted! < bStarted!);
    assert.equal((await started(ledger, 2)).length, 2);
    b.signal('SIGTERM');
    assert.equal(await b.exitCode(), 143);
  });

  it('without permission on services: 77 naming the Role, the Lease released, no child started', async () => {
    const info = await sharedCluster();
    const pod = uniqueName('pod-n');
    const svc = await podsAndService(info, [pod]);
    const kubeconfig = await serviceAccountKubeconfig(info, 'lr-routing-pods-only', [LEASES, ROUTING[0]!]);
    const name = uniqueName('noservice');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = leaderRun(['--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'n', '--leader-service', svc, ...FAST, ...workerCmd(ledger)], {
      POD_NAME: pod,
      POD_NAMESPACE: 'default',
    });
    assert.equal(await lr.exitCode(), 77);
    const err = lr.records.find((r) => r.event === 'forbidden');
    assert.match(
      err?.msg ?? '',
      /get Service default\/\S+: HTTP 403.*missing permission: get on services in namespace default; .*leader-run-routing Role in examples\/rbac\.yaml/,
    );
    assert.ok(lr.has('released'));
    assert.equal((await leaseOf(info, name)).body.spec.holderIdentity ?? '', '');
    assert.deepEqual(readLedger(ledger), [], 'no child ran');
  });

  it('a Pod that does not exist: 78 before campaigning; no Pod name at all: 64', async () => {
    const info = await sharedCluster();
    const kubeconfig = await serviceAccountKubeconfig(info, 'lr-routing', [LEASES, ...ROUTING]);
    const name = uniqueName('nopod');
    const lr = leaderRun(['--kubeconfig', kubeconfig, '--lock-name', name, '--leader-service', 'web', ...FAST, '--', 'true'], {
      POD_NAME: 'no-such-pod',
      POD_NAMESPACE: 'default',
    });
    assert.equal(await lr.exitCode(), 78);
    assert.match(
      lr.records.find((r) => r.level === 'error')?.msg ?? '',
      /^Pod default\/no-such-pod does not exist; the Pod's name and namespace come from POD_NAME and POD_NAMESPACE; set POD_NAME and POD_NAMESPACE from the downward API/,
    );
    assert.ok(!lr.has('campaigning'));
    assert.equal((await leaseOf(info, name)).status, 404);

    const r = spawnSync(process.execPath, [BIN, '--kubeconfig', kubeconfig, '--lock-name', name, '--leader-service', 'web', '--', 'true'], {
      encoding: 'utf8',
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'POD_NAME' && k !== 'LEADER_RUN_ID')),
    });
    assert.equal(r.status, 64);
    assert.equal(
      r.stderr,
      "leader-run: --leader-service needs this Pod's name: set POD_NAME from the downward API (fieldPath: metadata.name), or give the Pod name as --id\n",
    );
  });
});

describe('credentials', () => {
  it('never appear in logs, errors, endpoints or status output, at --verbose in text and JSON', async () => {
    const info = await sharedCluster();
    const kubeconfig = await serviceAccountKubeconfig(info, 'lr-secret', [LEASES]);
    const token = /token: "([^"]+)"/.exec(fs.readFileSync(kubeconfig, 'utf8'))?.[1] ?? '';
    assert.ok(token.length > 100, 'a real service-account token');
    // The whole token, or any long enough piece of it (a truncated header in a message).
    const leaks = (text: string) => [0, 1, 2, 3].some((k) => text.includes(token.slice((k * token.length) / 4, ((k + 1) * token.length) / 4)));

    for (const format of ['json', 'text'] as const) {
      const name = uniqueName(`secret-${format}`);
      const ledger = path.join(tempDir(), 'ledger');
      const run = (id: string) =>
        leaderRun([
          '--kubeconfig',
          kubeconfig,
          '--lock-name',
          name,
          '--id',
          id,
          '--verbose',
          '--log-format',
          format,
          '--http-addr',
          '127.0.0.1:0',
          ...FAST,
          ...workerCmd(ledger, '--exit-after', '2000'),
        ]);
      // Two candidates: the first leads, runs its child and releases; the second, at --verbose
      // all along, then takes over and does the same. Both exit by themselves with 0.
      const first = run('first');
      await until(async () => (await leaseOf(info, name)).body?.spec?.holderIdentity === 'first', 15_000, 'the first to lead');
      const second = run('second');
      const addr = /127\.0\.0\.1:\d+/.exec(first.stderrLines.find((l) => l.includes('http-listening')) ?? '')?.[0] ?? '';
      const served = await Promise.all(['/leader', '/metrics', '/healthz', '/readyz'].map(async (p) => (await get(addr, p)).text));
      assert.match(served[0] ?? '', /"holder":"first"/);
      assert.deepEqual(await Promise.all([first.exitCode(), second.exitCode()]), [0, 0]);
      const stderr = [...first.stderrLines, ...second.stderrLines].join('\n');
      for (const event of ['started-leading', 'child-started', 'renewed', 'released', 'exit'])
        assert.match(stderr, new RegExp(format === 'json' ? `"event":"${event}"` : `event=${event}\\b`), `a whole run at --verbose logs ${event}`);
      const status = statusCmd(['--kubeconfig', kubeconfig, '--lock-name', name, '-o', 'json']);
      assert.equal(status.status, 0, status.stderr);
      for (const [what, text] of [
        [`stderr (${format})`, stderr],
        ['endpoints', served.join('')],
        ['status', status.stdout + status.stderr],
      ] as const)
        assert.ok(!leaks(text), `the token appears in ${what}`);
    }

    // Refused credentials: the error names the kubeconfig, never what is in it.
    const badToken = `leaderrunsecret${'x'.repeat(40)}`;
    const bad = writeKubeconfig(info, uniqueName('bad-token'), { user: { token: badToken } });
    const refused = leaderRun(['--kubeconfig', bad, '--lock-name', uniqueName('secret-bad'), '--verbose', ...FAST, '--', 'true']);
    assert.equal(await refused.exitCode(), 77);
    const st = statusCmd(['--kubeconfig', bad, '--lock-name', 'x']);
    assert.equal(st.status, 77);
    for (const text of [refused.stderrLines.join('\n'), st.stderr]) {
      assert.match(text, /401/);
      assert.ok(!text.includes('leaderrunsecret'), text);
    }
  });
});
