import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acquireSpec, isReleased, microTime, releaseSpec } from '../../../src/lease/record.ts';

describe('lease record', () => {
  it('writes MicroTime with exactly six fractional digits', () => {
    assert.equal(microTime(Date.UTC(2026, 10, 21, 10, 0, 0, 123)), '2026-11-21T10:00:00.123000Z');
  });

  it('advances transitions on acquire and keeps them on release', () => {
    const prev = {
      uid: 'u',
      resourceVersion: '1',
      object: {},
      spec: { holderIdentity: 'x', leaseTransitions: 3, strategy: 's', preferredHolder: 'p' },
    };
    const mine = acquireSpec(prev, 'me', 15, 0);
    assert.equal(mine.leaseTransitions, 4);
    assert.equal(mine.strategy, 's');
    assert.equal(mine.preferredHolder, 'p');
    const rel = releaseSpec({ ...prev, spec: mine }, 0);
    assert.equal(rel.holderIdentity, '');
    assert.equal(rel.leaseDurationSeconds, 1);
    assert.equal(rel.leaseTransitions, 4);
  });
});

describe('what frees a Lease at once', () => {
  it('only a record with the shape of a release', () => {
    assert.equal(isReleased({ holderIdentity: '', leaseDurationSeconds: 1 }), true);
    assert.equal(isReleased({ leaseDurationSeconds: 1 }), true);
    assert.equal(isReleased({ holderIdentity: '', leaseDurationSeconds: 15 }), false, 'an admin cleared the holder');
    assert.equal(isReleased({}), false, 'recreated empty');
    assert.equal(isReleased({ holderIdentity: 'x', leaseDurationSeconds: 1 }), false);
  });

  it('a recreated Lease goes on from the transitions of the one it replaced', () => {
    assert.equal(acquireSpec(null, 'me', 15, 0, 41).leaseTransitions, 42);
    assert.equal(acquireSpec(null, 'me', 15, 0).leaseTransitions, 0);
  });
});
