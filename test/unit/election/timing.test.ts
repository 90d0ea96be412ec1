import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDuration } from '../../../src/core/duration.ts';
import { Elector } from '../../../src/election/elector.ts';
import { checkTiming, deadlines, TIMING_FLAGS, type Timing, TimingError, timingMessage } from '../../../src/election/timing.ts';
import { FakeClock, MemoryStore } from '../../support/fake.ts';

const ok: Timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, fenceGraceMs: 2_000 };
const flags = (t: Timing) => {
  const p = checkTiming(t);
  return p && timingMessage(p, (f) => TIMING_FLAGS[f]);
};

describe('timing rules', () => {
  it('accepts the kube-controller-manager defaults', () => {
    assert.equal(checkTiming(ok), undefined);
  });

  it('refuses unsafe sets, naming the flags and a working combination', () => {
    const cases: Array<[Partial<Timing>, RegExp]> = [
      [{ leaseDurationMs: 500 }, /--lease-duration 500ms is below 1s/],
      [{ renewDeadlineMs: 15_000 }, /--lease-duration 15s must be greater than --renew-deadline 15s/],
      [{ retryPeriodMs: 9_000 }, /--renew-deadline 10s must be greater than 1.2 × --retry-period 9s/],
      [{ fenceGraceMs: 5_000 }, /--fence-grace 5s .* exceeds --lease-duration 15s/],
    ];
    for (const [change, re] of cases) {
      const msg = flags({ ...ok, ...change }) ?? '';
      assert.match(msg, re);
      const example = /for example (.*)$/.exec(msg)?.[1] ?? '';
      const flag = (f: string) => parseDuration(new RegExp(`--${f} (\\S+)`).exec(example)?.[1] ?? '') ?? NaN;
      const suggested: Timing = {
        leaseDurationMs: flag('lease-duration'),
        renewDeadlineMs: flag('renew-deadline'),
        retryPeriodMs: flag('retry-period'),
        fenceGraceMs: flag('fence-grace'),
      };
      assert.equal(checkTiming(suggested), undefined, `the suggestion ${example} must itself be valid`);
    }
  });

  it('is data each caller words with its own names', () => {
    const p = checkTiming({ ...ok, retryPeriodMs: 9_000 })!;
    assert.equal(p.rule, 'deadline-not-above-retry');
    assert.match(
      timingMessage(p, (f) => f),
      /^renewDeadlineMs 10s must be greater than 1.2 × retryPeriodMs 9s/,
    );
  });

  it('is checked by the elector itself', () => {
    const clock = new FakeClock();
    const lock = new MemoryStore(clock).lockFor('a');
    const events = { startedLeading: () => {}, stoppedLeading: () => {} };
    assert.throws(() => new Elector({ identity: 'a', timing: { ...ok, fenceGraceMs: 5_000 } }, lock, clock, events), TimingError);
  });

  it('derives every deadline from D, R, P and G', () => {
    const d = deadlines(ok);
    assert.equal(d.followerRequestMs, 5_000);
    assert.equal(d.termAfterMs, 10_000);
    assert.equal(d.killAfterMs, 12_000);
    assert.equal(d.watchdogSilenceMs, 5_000);
    assert.ok(d.watchdogPingMs < d.watchdogSilenceMs / 2, 'several pings before a watchdog counts as silent');
    assert.equal(d.renewRetryMs, 500);
  });
});
