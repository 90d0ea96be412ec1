/**
 * Cron-style runs (issue 17), against the real apiserver: --min-hold keeps a Lease whose
 * child finished early, so a slightly late candidate does not run the same tick again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sharedCluster } from '../support/cluster.ts';
import { candidates, FAST, uniqueName } from '../support/leader-run.ts';

describe('--min-hold', () => {
  it('keeps the Lease until min-hold after winning it; a late candidate runs only after the release', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('min-hold');
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST];
    // A first run leaves the Lease released, so the next one starts its child at once.
    assert.equal(await lr.start([...args, '--', 'true']).exitCode(), 0);

    const early = lr.start([...args, '--id', 'early', '--min-hold', '6s', '--', 'true']);
    await early.waitFor('child-started');
    const late = lr.start([...args, '--id', 'late', '--', 'true']);
    assert.equal(await early.exitCode(), 0, 'the child’s status');
    assert.equal(await late.exitCode(), 0);

    const at = (run: typeof early, event: string): number => Date.parse(run.records.find((r) => r.event === event)!.time);
    assert.ok(early.has('min-hold'));
    // The hold counts from the winning write, sent just before "started-leading" is logged.
    assert.ok(at(early, 'released') - at(early, 'started-leading') >= 5900, 'held for --min-hold after winning');
    assert.ok(at(late, 'child-started') >= at(early, 'released'), 'the late candidate ran only after the release');
  });

  it('a stop during min-hold releases at once, with the child’s status', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('min-hold-stop');
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST];
    assert.equal(await lr.start([...args, '--', 'true']).exitCode(), 0);
    const run = lr.start([...args, '--min-hold', '60s', '--', 'sh', '-c', 'exit 3']);
    await run.waitFor('min-hold');
    run.signal('SIGTERM');
    assert.equal(await run.exitCode(), 3);
    assert.ok(run.has('released'));
  });

  it('refuses a malformed --min-hold (64), as every duration', async (t) => {
    const run = candidates(t).start(['--lock-name', 'x', '--min-hold', '5', '--', 'true']);
    assert.equal(await run.exitCode(), 64);
    assert.match(run.stderrLines.join('\n'), /--min-hold "5" is not a duration/);
  });
});
