// Proves the test control plane behaves like a real cluster in the ways
// leader-run's end-to-end tests rely on: Lease semantics, authn/authz, and
// the faults (stopped, frozen, blackholed, reset) are real.

import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Cluster, ClusterInfo } from '../support/cluster.ts';
import { apiRequest, FaultProxy, LeaderPeer, serviceAccountKubeconfig, sharedCluster, startCluster, target, writeKubeconfig } from '../support/cluster.ts';

const ns = 'default';
let seq = 0;
// Unique per process and call: test files share the cluster and run in parallel.
const unique = (prefix: string): string => `${prefix}-${process.pid}-${Date.now().toString(36)}-${seq++}`;

function leaseApi(kubeconfig: string): k8s.CoordinationV1Api {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc.makeApiClient(k8s.CoordinationV1Api);
}

/** The HTTP status a client-node call ended with (200 for success). */
async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (err) {
    if (err instanceof k8s.ApiException) return err.code;
    throw err;
  }
}

const leasePath = (name = ''): string => `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases${name ? `/${name}` : ''}`;

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('shared cluster', () => {
  let info: ClusterInfo;
  before(async () => {
    info = await sharedCluster();
  });

  it('round-trips a Lease with optimistic concurrency', async () => {
    const api = leaseApi(info.kubeconfigs.candidate);
    const name = unique('roundtrip');
    const created = await api.createNamespacedLease({
      namespace: ns,
      body: { metadata: { name }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } },
    });
    const read = await api.readNamespacedLease({ name, namespace: ns });
    assert.equal(read.spec?.holderIdentity, 'a');
    assert.equal(read.metadata?.resourceVersion, created.metadata?.resourceVersion);

    const updated = await api.replaceNamespacedLease({
      name,
      namespace: ns,
      body: { ...read, spec: { ...read.spec, holderIdentity: 'b', leaseTransitions: 1 } },
    });
    assert.equal(updated.spec?.holderIdentity, 'b');
    assert.notEqual(updated.metadata?.resourceVersion, read.metadata?.resourceVersion);

    // `read` still carries the old resourceVersion: the write must lose.
    const stale = await statusOf(api.replaceNamespacedLease({ name, namespace: ns, body: { ...read, spec: { ...read.spec, holderIdentity: 'c' } } }));
    assert.equal(stale, 409);
    assert.equal(await statusOf(api.createNamespacedLease({ namespace: ns, body: { metadata: { name } } })), 409);
    assert.equal((await api.readNamespacedLease({ name, namespace: ns })).spec?.holderIdentity, 'b');
  });

  it('accepts MicroTime with exactly 6 fractional digits and rejects 3', async () => {
    const to = target(info, 'candidate');
    const name = unique('microtime');
    const micro = '2026-11-21T10:00:00.123456Z';
    // Raw JSON text: client-node's models would reformat the timestamps.
    const body = `{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"${name}"},"spec":{"holderIdentity":"x","leaseDurationSeconds":15,"acquireTime":"${micro}","renewTime":"${micro}"}}`;
    const created = await apiRequest(to, 'POST', leasePath(), body);
    assert.equal(created.status, 201, created.text);
    const read = await apiRequest(to, 'GET', leasePath(name));
    assert.equal(read.body.spec.renewTime, micro);
    assert.equal(read.body.spec.acquireTime, micro);

    const millis = { ...read.body, spec: { ...read.body.spec, renewTime: '2026-11-21T10:00:01.123Z' } };
    const rejected = await apiRequest(to, 'PUT', leasePath(name), millis);
    assert.equal(rejected.status, 400, rejected.text);
  });

  it('answers 403 to a user without a binding and 401 to a bad token', async () => {
    assert.equal(await statusOf(leaseApi(info.kubeconfigs.nobody).listNamespacedLease({ namespace: ns })), 403);
    const bogus = writeKubeconfig(info, unique('bogus'), { user: { token: 'not-a-valid-token' } });
    assert.equal(await statusOf(leaseApi(bogus).listNamespacedLease({ namespace: ns })), 401);
  });

  it('gives the candidate exactly the Role of examples/rbac.yaml: get, watch, create, update on leases', async () => {
    const to = target(info, 'candidate');
    const name = unique('rbac');
    assert.equal((await apiRequest(to, 'POST', leasePath(), { metadata: { name } })).status, 201);
    assert.equal((await apiRequest(to, 'GET', leasePath(name))).status, 200);
    assert.equal((await apiRequest(to, 'GET', `${leasePath()}?watch=1&fieldSelector=metadata.name%3D${name}&timeoutSeconds=1`)).status, 200);
    assert.equal((await apiRequest(to, 'GET', leasePath())).status, 403, 'no list');
    assert.equal((await apiRequest(to, 'DELETE', leasePath(name))).status, 403);
    assert.equal((await apiRequest(to, 'PATCH', leasePath(name), '{}', { contentType: 'application/merge-patch+json' })).status, 403);
    assert.equal((await apiRequest(to, 'GET', `/api/v1/namespaces/${ns}/pods`)).status, 403);
    assert.equal((await apiRequest(to, 'GET', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases')).status, 403);
  });

  it('mints service-account identities with chosen rules', async () => {
    const readOnly = await serviceAccountKubeconfig(info, unique('ro').toLowerCase(), [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list'] },
    ]);
    const api = leaseApi(readOnly);
    assert.equal(await statusOf(api.listNamespacedLease({ namespace: ns })), 200);
    assert.equal(await statusOf(api.createNamespacedLease({ namespace: ns, body: { metadata: { name: unique('sa') } } })), 403);
  });

  it('proxies, blackholes and resets connections through FaultProxy', async (t) => {
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: info.apiserverPort });
    t.after(() => proxy.close());
    const to = target(info, 'admin', proxy.url); // transport, not RBAC: the candidate may not list
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());

    // pass: TLS still verifies for 127.0.0.1 through the proxy.
    assert.equal((await apiRequest(to, 'GET', leasePath(), undefined, { agent })).status, 200);
    assert.equal(proxy.connections, 1);

    // blackhole: the kept-alive connection and a new one both go silent.
    proxy.setMode('blackhole');
    const onOld = apiRequest(to, 'GET', leasePath(), undefined, { agent, signal: AbortSignal.timeout(1500) });
    await assert.rejects(onOld, { name: 'AbortError' });
    await assert.rejects(apiRequest(to, 'GET', leasePath(), undefined, { signal: AbortSignal.timeout(1500) }), { name: 'AbortError' });

    // Held, not dropped: back in pass, a request sent into the blackhole completes.
    let seen = proxy.accepted; // not .connections: an aborted one closing meanwhile would hide the new one
    const parked = apiRequest(to, 'GET', leasePath(), undefined, { signal: AbortSignal.timeout(60_000) });
    await waitUntil('the parked connection', () => (proxy.accepted > seen ? true : undefined));
    proxy.setMode('pass');
    assert.equal((await parked).status, 200);

    // reset: a request held by the blackhole fails with RST, as does a new one,
    // long before their deadlines.
    proxy.setMode('blackhole');
    seen = proxy.accepted;
    const held = apiRequest(to, 'GET', leasePath(), undefined, { signal: AbortSignal.timeout(60_000) });
    await waitUntil('the held connection', () => (proxy.accepted > seen ? true : undefined));
    proxy.setMode('reset');
    await assert.rejects(held, { code: 'ECONNRESET' });
    await assert.rejects(apiRequest(to, 'GET', leasePath(), undefined, { signal: AbortSignal.timeout(60_000) }), { code: 'ECONNRESET' });
    assert.equal(proxy.connections, 0);

    // pass again: back to normal.
    proxy.setMode('pass');
    assert.equal((await apiRequest(to, 'GET', leasePath(), undefined, { signal: AbortSignal.timeout(60_000) })).status, 200);
  });

  it('elects exactly one of two client-go peers and hands over after SIGKILL', { timeout: 180_000 }, async (t) => {
    const lockName = unique('peers');
    const peers = await Promise.all(['peer-a', 'peer-b'].map((id) => LeaderPeer.start(info, { id, lockName })));
    t.after(() => {
      for (const p of peers) p.kill('SIGKILL');
    });

    // Both must learn who leads before "exactly one" means anything.
    const seen = await Promise.all(peers.map((p) => p.waitFor((e) => e.event === 'new-leader')));
    const leaderId = seen[0]?.leader ?? '';
    assert.ok(leaderId === 'peer-a' || leaderId === 'peer-b', leaderId);
    assert.deepEqual(
      seen.map((e) => e.leader),
      [leaderId, leaderId],
    );
    const leader = peers.find((p) => p.id === leaderId)!;
    const follower = peers.find((p) => p.id !== leaderId)!;
    await leader.waitFor((e) => e.event === 'started-leading');
    assert.equal(follower.events.filter((e) => e.event === 'started-leading').length, 0);

    const api = leaseApi(info.kubeconfigs.admin);
    const before = await api.readNamespacedLease({ name: lockName, namespace: ns });
    assert.equal(before.spec?.holderIdentity, leaderId);

    // SIGKILL: no release, so the follower must wait out the lease.
    leader.kill('SIGKILL');
    await follower.waitFor((e) => e.event === 'started-leading', 120_000);
    const afterKill = await api.readNamespacedLease({ name: lockName, namespace: ns });
    assert.equal(afterKill.spec?.holderIdentity, follower.id);
    assert.equal(afterKill.spec?.leaseTransitions, (before.spec?.leaseTransitions ?? 0) + 1);
  });
});

describe('private cluster', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(() => cluster?.stop());

  it('refuses connections while the apiserver is stopped and keeps the Lease across a restart', { timeout: 180_000 }, async () => {
    const to = target(cluster.info, 'admin'); // transport, not RBAC: the candidate may not list
    const name = unique('restart');
    assert.equal((await apiRequest(to, 'POST', leasePath(), { metadata: { name }, spec: { holderIdentity: 'survivor' } })).status, 201);

    await cluster.stopApiserver();
    try {
      await assert.rejects(apiRequest(to, 'GET', leasePath(name)), { code: 'ECONNREFUSED' });
      // client-node (undici fetch) wraps it: TypeError('fetch failed') with the cause.
      await assert.rejects(leaseApi(cluster.info.kubeconfigs.candidate).readNamespacedLease({ name, namespace: ns }), (err: Error) => {
        assert.equal((err.cause as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED', String(err));
        return true;
      });
    } finally {
      await cluster.startApiserver();
    }
    const lease = await leaseApi(cluster.info.kubeconfigs.candidate).readNamespacedLease({ name, namespace: ns });
    assert.equal(lease.spec?.holderIdentity, 'survivor');
  });

  it('hangs requests while the apiserver is frozen and answers once thawed', { timeout: 180_000 }, async () => {
    const to = target(cluster.info, 'admin'); // transport, not RBAC: the candidate may not list
    cluster.freezeApiserver();
    try {
      // The kernel still accepts the connection; nobody answers on it.
      await assert.rejects(apiRequest(to, 'GET', leasePath(), undefined, { signal: AbortSignal.timeout(1500) }), { name: 'AbortError' });
    } finally {
      cluster.thawApiserver();
    }
    const res = await waitUntil('the thawed apiserver', async () => {
      const r = await apiRequest(to, 'GET', leasePath(), undefined, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    });
    assert.equal(res.status, 200);
  });
});
