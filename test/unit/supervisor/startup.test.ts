import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../../src/kube/errors.ts';
import type { Verdict } from '../../../src/supervisor/failures.ts';
import { StartupWindow } from '../../../src/supervisor/startup.ts';
import { FakeClock } from '../../support/fake.ts';

const refused = new ApiError('unavailable', 'get Lease x: connection refused');
const denied = new ApiError('forbidden', 'get Lease x: HTTP 403', 403);
const retry: Verdict = { retry: true };
const noperm: Verdict = { retry: false, status: 77, event: 'forbidden', message: 'denied' };

describe('the start-up window', () => {
  it('retries an unreachable server until the window ends, then 69', async () => {
    const clock = new FakeClock();
    const w = new StartupWindow(clock, 30_000, '--startup-timeout', 'https://h:6443');
    assert.equal(w.failed(refused, retry).do, 'retry');
    await clock.advance(30_000);
    const d = w.failed(refused, retry);
    assert.equal(d.do, 'end');
    assert.match(d.do === 'end' ? d.fatal.message : '', /^API server unreachable for 30s \(--startup-timeout\) at https:\/\/h:6443: get Lease x/);
    assert.match(w.expired()?.message ?? '', /unreachable for 30s \(--startup-timeout\) at https:\/\/h:6443: get Lease x/);
  });

  it('never ends a run that reached the server on unreachability', async () => {
    const clock = new FakeClock();
    const w = new StartupWindow(clock, 1000, '--startup-timeout', 'https://h:6443');
    w.answered();
    await clock.advance(5000);
    assert.equal(w.failed(refused, retry).do, 'retry');
    assert.equal(w.expired(), undefined);
  });

  it('asks whether the server is starting before a denial is final, for as long as the window', async () => {
    const clock = new FakeClock();
    const w = new StartupWindow(clock, 10_000, '--startup-timeout', 'https://h:6443');
    assert.equal(w.failed(denied, noperm).do, 'ask-if-starting');
    assert.equal(w.failed(denied, noperm).do, 'retry', 'one question at a time');
    assert.equal(w.starting(true, denied, noperm).do, 'retry');
    await clock.advance(10_000);
    assert.equal(w.failed(denied, noperm).do, 'ask-if-starting');
    assert.equal(w.starting(true, denied, noperm).do, 'end', 'still denied after the window');
    assert.equal(w.failed(denied, noperm).do, 'ask-if-starting');
    assert.equal(w.starting(false, denied, noperm).do, 'end', 'a ready server that denies means it');
  });
});
