import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeKey, human, leaseView, tableRow } from '../../../src/cli/lease-view.ts';
import type { LeaseSnapshot } from '../../../src/lease/record.ts';

const snap = (spec: LeaseSnapshot['spec']): LeaseSnapshot => ({ uid: 'u1', resourceVersion: '1', spec, object: {} });

describe('lease view (leader-run status)', () => {
  const now = Date.parse('2026-11-21T10:00:10Z');
  it('held: held for, renewed ago and expires in as observed', () => {
    const v = leaseView(
      'default/x',
      snap({
        holderIdentity: 'a',
        leaseDurationSeconds: 15,
        acquireTime: '2026-11-21T09:58:00.000000Z',
        renewTime: '2026-11-21T10:00:08.500000Z',
        leaseTransitions: 2,
      }),
      now,
    );
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
    const v = leaseView(
      'd/x',
      snap({
        holderIdentity: 'a',
        leaseDurationSeconds: 15,
        renewTime: '2026-11-21T10:00:09.000000Z',
        strategy: 'OldestEmulationVersion',
        preferredHolder: 'b',
      }),
      now,
    );
    assert.deepEqual(tableRow(v).slice(-2), ['OldestEmulationVersion', 'b']);
    assert.equal(v.strategy, 'OldestEmulationVersion');
  });
  it('formats durations for people', () => {
    assert.deepEqual([0.84, 12.7, 185, 7800, 100_000].map(human), ['0.8s', '12s', '3m5s', '2h10m', '1d3h']);
  });
});
