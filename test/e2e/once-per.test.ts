/**
 * --once-per (issue 17, part 2), against the real apiserver: a success is recorded on the
 * Lease in the write that releases it; later candidates in the same window skip; a failure or
 * a crash is not recorded, so another candidate runs the window again.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LAST_SUCCESS_ANNOTATION, lastSuccessValue, microTime } from '../../src/lease/record.ts';
import { type LeaseObject, readLease, sharedCluster, updateLease } from '../support/cluster.ts';
import { candidates, FAST, intervals, readLedger, started, tempDir, uniqueName, workerCmd } from '../support/leader-run.ts';

// Windows run from the Unix epoch; one this long has a boundary every ~417 days, so no test
// straddles one.
const WINDOW = '10000h';

function lastSuccess(lease: LeaseObject | undefined): Record<string, unknown> | undefined {
  const raw = (lease?.metadata['annotations'] as Record<string, string> | undefined)?.[LAST_SUCCESS_ANNOTATION];
  return raw === undefined ? undefined : (JSON.parse(raw) as Record<string, unknown>);
}

/** A command that appends a line to `file` and exits with `status`. */
function mark(file: string, status = 0): string[] {
  return ['--', 'sh', '-c', `echo ran >> '${file}'; exit ${status}`];
}

const runs = (file: string): number => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
};

describe('--once-per', () => {
  it('records a success in the release; a later run in the window skips, with the skip status, silently under -q', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('once-per');
    const file = path.join(tempDir(), 'runs');
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--once-per', WINDOW];
    const first = lr.start([...args, '--id', 'op-a', ...mark(file)]);
    assert.equal(await first.exitCode(), 0);
    assert.match(first.records.find((r) => r.event === 'released')?.msg ?? '', /recording this window's run as done/);
    const lease = await readLease(info, name);
    assert.equal(lease?.spec.holderIdentity, '', 'released');
    const rec = lastSuccess(lease);
    assert.equal(rec?.['holder'], 'op-a');
    assert.equal(rec?.['fencingToken'], lease?.spec.leaseTransitions);
    assert.ok(Date.parse(String(rec?.['started'])) <= Date.parse(String(rec?.['finished'])));

    const quiet = lr.start([...args, '-q', ...mark(file)]);
    assert.equal(await quiet.exitCode(), 75, 'the skip status: --wait-timeout-exit-code');
    assert.deepEqual(quiet.stderrLines, [], 'nothing under -q');
    const told = lr.start([...args, '--wait-timeout-exit-code', '0', ...mark(file)]);
    assert.equal(await told.exitCode(), 0);
    assert.ok(told.has('once-per-skip') && !told.has('child-started'));
    assert.equal(told.records.find((r) => r.event === 'exit')?.['cause'], 'once-per');
    assert.equal(runs(file), 1, 'the child ran once');
    assert.equal(lastSuccess(await readLease(info, name))?.['holder'], 'op-a', 'a skip leaves the record as it was');
  });

  it('a candidate that waited while the run went on skips when it wins the Lease', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('once-per-wait');
    const ledger = path.join(tempDir(), 'ledger');
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--once-per', WINDOW];
    const a = lr.start([...args, '--id', 'op-a', ...workerCmd(ledger, '--exit-after', '1500')]);
    await started(ledger, 1);
    const b = lr.start([...args, '--id', 'op-b', ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    assert.equal(await a.exitCode(), 0);
    assert.equal(await b.exitCode(), 75);
    assert.ok(b.has('started-leading') && b.has('once-per-skip') && !b.has('child-started'));
    assert.equal(intervals(readLedger(ledger)).length, 1, 'one child for the window');
  });

  it('a failed run is not recorded: the next candidate runs', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('once-per-fail');
    const file = path.join(tempDir(), 'runs');
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--once-per', WINDOW];
    assert.equal(await lr.start([...args, ...mark(file, 3)]).exitCode(), 3);
    assert.equal(lastSuccess(await readLease(info, name)), undefined);
    assert.equal(await lr.start([...args, ...mark(file)]).exitCode(), 0);
    assert.equal(runs(file), 2);
    assert.ok(lastSuccess(await readLease(info, name)));
  });

  it('a crash in the middle of a run is not recorded: once the Lease expires, another candidate runs the window again', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('once-per-crash');
    const ledger = path.join(tempDir(), 'ledger');
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--once-per', WINDOW];
    const a = lr.start([...args, '--id', 'op-a', ...workerCmd(ledger)]);
    await started(ledger, 1);
    const b = lr.start([...args, '--id', 'op-b', ...workerCmd(ledger, '--exit-after', '200')]);
    await b.waitFor('new-leader');
    a.signal('SIGKILL'); // the watchdog is left to fence the child at the lease deadline
    assert.equal(await b.exitCode(), 0);
    assert.ok(b.has('child-started'), 'the window ran again');
    const [first, second] = intervals(readLedger(ledger));
    assert.ok(first && second && first.to < second.from, 'one child at a time');
    assert.equal(lastSuccess(await readLease(info, name))?.['holder'], 'op-b');
  });

  it('a record from an earlier window does not skip; the window is judged by the current --once-per', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('once-per-window');
    const file = path.join(tempDir(), 'runs');
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST];
    assert.equal(await lr.start([...args, '--', 'true']).exitCode(), 0);
    const twoHoursAgo = Date.now() - 2 * 3_600_000;
    await updateLease(info, name, (l) => {
      const value = lastSuccessValue({ started: microTime(twoHoursAgo), finished: microTime(twoHoursAgo + 1000), holder: 'earlier', fencingToken: 0 });
      l.metadata['annotations'] = { ...(l.metadata['annotations'] as object), [LAST_SUCCESS_ANNOTATION]: value };
      return l;
    });
    assert.equal(await lr.start([...args, '--once-per', '1h', ...mark(file)]).exitCode(), 0);
    assert.equal(runs(file), 1, 'two hours ago is another 1h window');
    // Recorded now: in a 10000h window, both that run and this try fall in one window.
    const skip = lr.start([...args, '--once-per', WINDOW, ...mark(file)]);
    assert.equal(await skip.exitCode(), 75);
    assert.equal(runs(file), 1);
  });

  it('refuses a malformed --once-per (64), as every duration', async (t) => {
    const run = candidates(t).start(['--lock-name', 'x', '--once-per', 'daily', '--', 'true']);
    assert.equal(await run.exitCode(), 64);
    assert.match(run.stderrLines.join('\n'), /--once-per "daily" is not a duration/);
  });
});
