import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Instant } from '../../../src/core/time.ts';
import type { LeaseSnapshot } from '../../../src/lease/record.ts';
import { metricsFor } from '../../../src/ops/metrics.ts';
import { type LeaderView, StatusBoard } from '../../../src/ops/status-board.ts';

function stateAt(clock: { now: Instant }, renewDeadlineMs = 2000): StatusBoard {
  return new StatusBoard({ lease: 'default/x', identity: 'me', renewDeadlineMs, now: () => clock.now });
}

const snap = (spec: LeaseSnapshot['spec']): LeaseSnapshot => ({ uid: 'u1', resourceVersion: '1', spec, object: {} });
const view = (l: LeaseSnapshot): LeaderView => ({
  holder: l.spec.holderIdentity || null,
  since: l.spec.acquireTime ?? null,
  transitions: l.spec.leaseTransitions ?? null,
});

describe('status board', () => {
  it('is healthy while renewals keep within the renew deadline, and not once one is overdue', () => {
    const clock = { now: { mono: 1000, wall: 50_000 } };
    const s = stateAt(clock);
    assert.equal(s.health().ok, true, 'a follower is healthy');
    s.startedLeading({ mono: 1000, wall: 50_000 });
    clock.now = { mono: 2900, wall: 51_900 };
    assert.equal(s.health().ok, true);
    s.renewed({ mono: 2900, wall: 51_900 }, 5);
    clock.now = { mono: 5000, wall: 54_000 };
    const h = s.health();
    assert.equal(h.ok, false);
    assert.match(h.reason, /last successful renewal was 2100ms ago \(renew deadline 2000ms\)/);
    s.notLeading();
    assert.equal(s.health().ok, true, 'no longer leading: nothing to renew');
  });

  it('counts wall-clock time too (a host that slept)', () => {
    const clock = { now: { mono: 0, wall: 0 } };
    const s = stateAt(clock);
    s.startedLeading({ mono: 0, wall: 0 });
    clock.now = { mono: 100, wall: 60_000 };
    assert.equal(s.health().ok, false);
  });

  it('is ready until a stop begins, leading or not', () => {
    const s = stateAt({ now: { mono: 0, wall: 0 } });
    let stopping = false;
    s.attach({ observed: () => null, stopping: () => stopping });
    assert.deepEqual(s.ready(), { ok: true, reason: 'ok' });
    stopping = true;
    assert.deepEqual(s.ready(), { ok: false, reason: 'stopping' });
  });

  it('shows the leader from the last Lease read', () => {
    const s = stateAt({ now: { mono: 0, wall: 0 } });
    assert.deepEqual(s.leader(), { lease: 'default/x', holder: null, self: 'me', leading: false, since: null, transitions: null });
    let lease = snap({ holderIdentity: 'other', acquireTime: '2026-11-21T10:00:00.000000Z', leaseTransitions: 4 });
    s.attach({ observed: () => view(lease), stopping: () => false });
    assert.deepEqual(s.leader(), { lease: 'default/x', holder: 'other', self: 'me', leading: false, since: '2026-11-21T10:00:00.000000Z', transitions: 4 });
    lease = snap({ holderIdentity: '', acquireTime: '2026-11-21T10:01:00.000000Z', leaseTransitions: 4 });
    assert.equal(s.leader().holder, null);
    assert.equal(s.leader().since, null, 'a released Lease has no holder to be held since');
  });
});

describe('metrics', () => {
  it('exports client-go’s leader gauge and our counters and histograms', async () => {
    const s = stateAt({ now: { mono: 0, wall: 0 } });
    const m = metricsFor(s, 'x');
    assert.match(await m.text(), /^leader_election_master_status\{name="x"\} 0$/m);
    s.startedLeading({ mono: 0, wall: 0 });
    s.renewed({ mono: 0, wall: 0 }, 12);
    s.renewFailed();
    s.notLeading();
    s.fenced(700);
    s.childExited(143);
    const text = await m.text();
    for (const line of [
      'leader_election_master_status{name="x"} 0',
      'leader_run_leader_transitions_total 1',
      'leader_run_renew_duration_seconds_bucket{le="0.025"} 1',
      'leader_run_renew_duration_seconds_count 1',
      'leader_run_renew_failures_total 1',
      'leader_run_fence_duration_seconds_bucket{le="1"} 1',
      'leader_run_fence_duration_seconds_bucket{le="0.5"} 0',
      'leader_run_child_exits_total{status="143"} 1',
    ])
      assert.ok(text.split('\n').includes(line), `missing ${line} in\n${text}`);
    assert.doesNotMatch(text, /^process_|^nodejs_/m, 'only our registry');
    assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
  });
});
