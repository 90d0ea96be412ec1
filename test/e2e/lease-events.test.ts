/**
 * Kubernetes Events on the Lease when leadership changes (issue 16, part 3), against the real
 * apiserver: what `kubectl describe lease` shows, and a run without RBAC for events.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiRequest, type ClusterInfo, type PolicyRule, readLease, serviceAccountKubeconfig, sharedCluster, target, updateLease } from '../support/cluster.ts';
import { candidates, FAST, uniqueName, until } from '../support/leader-run.ts';

const LEASES: PolicyRule = { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update'] };
const EVENTS: PolicyRule = { apiGroups: [''], resources: ['events'], verbs: ['create'] };

interface EventObject {
  reason: string;
  message: string;
  type: string;
  involvedObject: { kind: string; name: string; uid?: string };
  source?: { component?: string };
}

async function eventsOn(info: ClusterInfo, lease: string): Promise<EventObject[]> {
  const selector = encodeURIComponent(`involvedObject.kind=Lease,involvedObject.name=${lease}`);
  const r = await apiRequest(target(info, 'admin'), 'GET', `/api/v1/namespaces/default/events?fieldSelector=${selector}`);
  assert.equal(r.status, 200, r.text);
  return (r.body as { items: EventObject[] }).items;
}

describe('Events on the Lease', () => {
  it('records "became leader" and "stopped leading" with the reason, as client-go does', async (t) => {
    const info = await sharedCluster();
    const kubeconfig = await serviceAccountKubeconfig(info, 'lr-events', [LEASES, EVENTS]);
    const lr = candidates(t);
    // A graceful run: became leader, then released.
    const name = uniqueName('events');
    const once = lr.start(['--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'first', ...FAST, '--', 'true']);
    assert.equal(await once.exitCode(), 0);
    assert.ok(!once.has('events-forbidden'));
    const uid = (await readLease(info, name))!.metadata.uid;
    let events = await eventsOn(info, name);
    assert.deepEqual(events.map((e) => e.message).sort(), ['first became leader', 'first stopped leading (released)']);
    for (const e of events) {
      assert.equal(e.reason, 'LeaderElection');
      assert.equal(e.type, 'Normal');
      assert.equal(e.involvedObject.uid, uid, 'kubectl describe lease finds them by uid');
      assert.equal(e.source?.component, 'leader-run');
    }
    // A lost Lease: the reason is in the message.
    const lost = lr.start(['--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'second', ...FAST, '--', 'sleep', '30']);
    await lost.waitFor('child-started');
    await updateLease(info, name, (l) => ({ ...l, spec: { ...l.spec, holderIdentity: 'someone-else' } }));
    assert.equal(await lost.exitCode(), 75);
    await until(
      async () => (events = await eventsOn(info, name)).some((e) => e.message === 'second stopped leading (holder-changed)'),
      5000,
      'the loss recorded',
    );
    assert.ok(events.some((e) => e.message === 'second became leader'));
  });

  it('without RBAC for events: one warning, and the run is otherwise the same', async (t) => {
    const info = await sharedCluster();
    const kubeconfig = await serviceAccountKubeconfig(info, 'lr-no-events', [LEASES]);
    const name = uniqueName('no-events');
    const lr = candidates(t).start(['--kubeconfig', kubeconfig, '--lock-name', name, ...FAST, '--', 'true']);
    assert.equal(await lr.exitCode(), 0);
    assert.ok(lr.has('child-started'));
    assert.ok(lr.has('released'));
    const warnings = lr.records.filter((r) => r.event === 'events-forbidden');
    assert.equal(warnings.length, 1, 'said once');
    assert.match(warnings[0]!.msg, /--no-events/);
    assert.deepEqual(await eventsOn(info, name), []);
  });

  it('--no-events (or LEADER_RUN_EVENTS=false) records none and asks for no permission', async (t) => {
    const info = await sharedCluster();
    const kubeconfig = await serviceAccountKubeconfig(info, 'lr-events', [LEASES, EVENTS]);
    const lr = candidates(t);
    const a = uniqueName('no-events-flag');
    const b = uniqueName('no-events-env');
    const flag = lr.start(['--kubeconfig', kubeconfig, '--lock-name', a, '--no-events', ...FAST, '--', 'true']);
    const env = lr.start(['--kubeconfig', kubeconfig, '--lock-name', b, ...FAST, '--', 'true'], { env: { LEADER_RUN_EVENTS: 'false' } });
    assert.equal(await flag.exitCode(), 0);
    assert.equal(await env.exitCode(), 0);
    assert.deepEqual(await eventsOn(info, a), []);
    assert.deepEqual(await eventsOn(info, b), []);
  });
});
