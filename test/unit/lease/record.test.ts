import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  acquireSpec,
  isReleased,
  LAST_SUCCESS_ANNOTATION,
  lastSuccessAnnotations,
  lastSuccessOf,
  microTime,
  releaseSpec,
  windowStart,
  withAnnotations,
} from '../../../src/lease/record.ts';

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

describe('--once-per record', () => {
  const snap = (annotations?: Record<string, string>) => ({ uid: 'u', resourceVersion: '1', spec: {}, object: { metadata: { annotations } } });

  it('round-trips through an annotation added to the snapshot a write sends', () => {
    const run = { startedWall: Date.UTC(2026, 11, 2, 3, 0, 1), finishedWall: Date.UTC(2026, 11, 2, 3, 5), fencingToken: 9 };
    const s = withAnnotations(snap({ keep: 'me' }), lastSuccessAnnotations(run, 'pod-a'));
    assert.deepEqual(lastSuccessOf(s), { started: microTime(run.startedWall), finished: microTime(run.finishedWall), holder: 'pod-a', fencingToken: 9 });
    assert.equal((s.object.metadata as { annotations: Record<string, string> }).annotations['keep'], 'me');
  });

  it('a missing or malformed record is none', () => {
    assert.equal(lastSuccessOf(null), null);
    assert.equal(lastSuccessOf(snap()), null);
    assert.equal(lastSuccessOf(snap({ [LAST_SUCCESS_ANNOTATION]: 'not json' })), null);
    assert.equal(lastSuccessOf(snap({ [LAST_SUCCESS_ANNOTATION]: '{"started":"yesterday"}' })), null);
  });

  it('windows are aligned to the Unix epoch: 1h on the hour, 1d at 00:00 UTC', () => {
    assert.equal(windowStart(Date.UTC(2026, 11, 2, 3, 59, 59), 3_600_000), Date.UTC(2026, 11, 2, 3));
    assert.equal(windowStart(Date.UTC(2026, 11, 2, 23, 0), 86_400_000), Date.UTC(2026, 11, 2));
  });
});
