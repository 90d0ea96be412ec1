/** Issue 5 without a cluster: the run state behind the HTTP endpoints, the metrics, the stall
 *  detector, what `leader-run status` shows, and the new flags. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeKey, human, leaseView, tableRow } from '../../src/cli/lease-view.ts';
import { parseArgs, UsageError } from '../../src/cli/options.ts';
import type { Instant } from '../../src/election/timing.ts';
import type { LeaseSnapshot } from '../../src/lease/record.ts';
import { metricsFor } from '../../src/observe/metrics.ts';
import { StallDetector } from '../../src/observe/stall.ts';
import { RunState } from '../../src/observe/state.ts';

function stateAt(clock: { now: Instant }, renewDeadlineMs = 2000): RunState {
  return new RunState({ lease: 'default/x', identity: 'me', renewDeadlineMs, now: () => clock.now });
}

const snap = (spec: LeaseSnapshot['spec']): LeaseSnapshot => ({ uid: 'u1', resourceVersion: '1', spec, object: {} });

describe('run state', () => {
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
    s.attach({ observed: () => lease, stopping: () => false });
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

describe('stall detector', () => {
  it('reports a stall of at least the threshold for a while after it ends', () => {
    let now = 0;
    const d = new StallDetector(1000, 2000, () => now);
    const ticksUntil = (t: number) => {
      while (now + 100 <= t) {
        now += 100;
        d.tick();
      }
    };
    d.tick(); // next expected at 100
    ticksUntil(1000);
    assert.equal(d.problem(), undefined);
    now += 1200; // the next tick comes 1100ms late
    d.tick();
    assert.match(d.problem() ?? '', /stuck for 1100ms/);
    ticksUntil(now + 1900);
    assert.match(d.problem() ?? '', /stuck/, 'still within 2s of the stall');
    ticksUntil(now + 200);
    assert.equal(d.problem(), undefined, 'forgotten 2s after it ended');
    now += 900; // 800ms late: below the threshold
    d.tick();
    assert.equal(d.problem(), undefined);
  });
});

describe('lease view (leader-run status)', () => {
  const now = Date.parse('2026-11-21T10:00:10Z');
  it('held: held for, renewed ago and expires in as observed', () => {
    const v = leaseView('default/x', snap({ holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: '2026-11-21T09:58:00.000000Z', renewTime: '2026-11-21T10:00:08.500000Z', leaseTransitions: 2 }), now);
    assert.equal(v.state, 'held');
    assert.equal(v.heldForSeconds, 130);
    assert.equal(v.renewedAgoSeconds, 1.5);
    assert.equal(v.expiresInSeconds, 13.5);
    assert.equal(v.transitions, 2);
  });
  it('expired, released, absent', () => {
    assert.equal(leaseView('d/x', snap({ holderIdentity: 'a', leaseDurationSeconds: 5, renewTime: '2026-11-21T10:00:00.000000Z' }), now).state, 'expired');
    const released = leaseView('d/x', snap({ holderIdentity: '', leaseDurationSeconds: 1, acquireTime: '2026-11-21T10:00:00.000000Z' }), now);
    assert.equal(released.state, 'released');
    assert.equal(released.heldForSeconds, null);
    assert.equal(leaseView('d/x', null, now).state, 'absent');
  });
  it('a renewal alone is not a change; a new holder is', () => {
    const a = leaseView('d/x', snap({ holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: '2026-11-21T10:00:08.000000Z' }), now);
    const b = leaseView('d/x', snap({ holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: '2026-11-21T10:00:09.000000Z' }), now);
    const c = leaseView('d/x', snap({ holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: '2026-11-21T10:00:09.000000Z' }), now);
    assert.equal(changeKey(a), changeKey(b));
    assert.notEqual(changeKey(b), changeKey(c));
  });
  it('shows coordinated leader election fields (the test cluster drops them: its feature gate is off)', () => {
    const v = leaseView('d/x', snap({ holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: '2026-11-21T10:00:09.000000Z', strategy: 'OldestEmulationVersion', preferredHolder: 'b' }), now);
    assert.deepEqual(tableRow(v).slice(-2), ['OldestEmulationVersion', 'b']);
    assert.equal(v.strategy, 'OldestEmulationVersion');
  });
  it('formats durations for people', () => {
    assert.deepEqual([0.84, 12.7, 185, 7800, 100_000].map(human), ['0.8s', '12s', '3m5s', '2h10m', '1d3h']);
  });
});

describe('flags of issue 5', () => {
  const base = ['--lock-name', 'x', '--id', 'pod-1'];
  const parse = (args: string[]) => parseArgs([...base, ...args, '--', 'true'], '0.0.0');
  it('parses --http-addr like Go', () => {
    assert.deepEqual(parse(['--http-addr', '127.0.0.1:0']).http, { host: '127.0.0.1', port: 0, given: '--http-addr' });
    assert.deepEqual(parse(['--http-addr', ':9090']).http, { host: undefined, port: 9090, given: '--http-addr' });
    assert.deepEqual(parse(['--http-addr', '[::1]:9090']).http, { host: '::1', port: 9090, given: '--http-addr' });
    assert.equal(parse([]).http, undefined);
    for (const bad of ['9090', '127.0.0.1', 'host:99999', '::1:80', 'a:b'])
      assert.throws(() => parse(['--http-addr', bad]), (e: Error) => e instanceof UsageError && /^--http-addr ".*" is not HOST:PORT/.test(e.message), bad);
  });
  it('takes the Pod for --leader-service from POD_NAME / POD_NAMESPACE, else --id', () => {
    const saved = { n: process.env['POD_NAME'], ns: process.env['POD_NAMESPACE'] };
    try {
      delete process.env['POD_NAME'];
      delete process.env['POD_NAMESPACE'];
      assert.deepEqual(parse(['--leader-service', 'web']).routing, { service: 'web', pod: 'pod-1', podNamespace: undefined, podFrom: "--id (LEADER_RUN_ID) and the Lease's namespace" });
      process.env['POD_NAME'] = 'web-7d9f-abcde';
      process.env['POD_NAMESPACE'] = 'prod';
      assert.deepEqual(parse(['--leader-service', 'web']).routing, { service: 'web', pod: 'web-7d9f-abcde', podNamespace: 'prod', podFrom: 'POD_NAME and POD_NAMESPACE' });
      delete process.env['POD_NAME'];
      assert.throws(() => parseArgs(['--lock-name', 'x', '--leader-service', 'web', '--', 'true'], '0'), /--leader-service needs this Pod's name: set POD_NAME/);
      assert.throws(() => parse(['--leader-service', 'Web']), /--leader-service "Web" is not a valid Service name/);
    } finally {
      for (const [k, v] of [['POD_NAME', saved.n], ['POD_NAMESPACE', saved.ns]] as const) v === undefined ? delete process.env[k] : (process.env[k] = v);
    }
  });
});
