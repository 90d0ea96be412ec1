import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDuration } from '../../src/cli/duration.ts';
import { elapsedMs, timingProblem, type Timing } from '../../src/election/timing.ts';
import { acquireSpec, microTime, releaseSpec } from '../../src/lease/record.ts';

const ok: Timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, fenceGraceMs: 2_000 };

describe('timing rules', () => {
  it('accepts the kube-controller-manager defaults', () => {
    assert.equal(timingProblem(ok), undefined);
  });

  it('refuses unsafe sets, naming the flags and a working combination', () => {
    const cases: Array<[Partial<Timing>, RegExp]> = [
      [{ leaseDurationMs: 500 }, /--lease-duration 500ms is below 1s/],
      [{ renewDeadlineMs: 15_000 }, /--lease-duration 15s must be greater than --renew-deadline 15s/],
      [{ retryPeriodMs: 9_000 }, /--renew-deadline 10s must be greater than 1.2 × --retry-period 9s/],
      [{ fenceGraceMs: 5_000 }, /--fence-grace 5s .* exceeds --lease-duration 15s/],
    ];
    for (const [change, re] of cases) {
      const msg = timingProblem({ ...ok, ...change }) ?? '';
      assert.match(msg, re);
      const example = /for example (.*)$/.exec(msg)?.[1] ?? '';
      const flag = (f: string) => parseDuration(new RegExp(`--${f} (\\S+)`).exec(example)?.[1] ?? '') ?? NaN;
      const suggested: Timing = {
        leaseDurationMs: flag('lease-duration'),
        renewDeadlineMs: flag('renew-deadline'),
        retryPeriodMs: flag('retry-period'),
        fenceGraceMs: flag('fence-grace'),
      };
      assert.equal(timingProblem(suggested), undefined, `the suggestion ${example} must itself be valid`);
    }
  });

  it('measures elapsed time as the larger of the monotonic and the wall clock', () => {
    assert.equal(elapsedMs({ mono: 0, wall: 0 }, { mono: 100, wall: 50 }), 100);
    assert.equal(elapsedMs({ mono: 0, wall: 0 }, { mono: 100, wall: 60_000 }), 60_000);
  });

  it('parses durations as Go writes them and refuses bare numbers', () => {
    assert.equal(parseDuration('1500ms'), 1500);
    assert.equal(parseDuration('15s'), 15_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1.5s'), 1500);
    for (const bad of ['15', '15x', '-1s', '', 's']) assert.equal(parseDuration(bad), undefined, bad);
  });
});

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
