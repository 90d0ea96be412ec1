/**
 * `leader-run step-down` (issue 16, part 1), against the real apiserver: the leader hands over
 * at once as on SIGTERM and exits 0; a client-go peer is not misled; nobody leading is 1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LeaderPeer, readLease, sharedCluster } from '../support/cluster.ts';
import { BIN, candidates, FAST, intervals, readLedger, started, tempDir, uniqueName, workerCmd } from '../support/leader-run.ts';

function stepDown(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'step-down', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('leader-run step-down', () => {
  it('the leader stops its child, releases and exits 0; the follower’s child starts only after', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('step-down');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t);
    const base = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST];
    const a = lr.start([...base, '--id', 'sd-a', ...workerCmd(ledger)]);
    await started(ledger, 1);
    const b = lr.start([...base, '--id', 'sd-b', ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    const r = stepDown(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name]);
    assert.equal(r.status, 0, r.stderr);
    // It reports the first change it sees: the release, or sd-b already leading.
    assert.match(r.stdout, new RegExp(`^sd-a stepped down; (sd-b leads Lease default/${name}|Lease default/${name} is free)\n$`));
    assert.equal(await a.exitCode(), 0, 'a planned handover is a success');
    assert.ok(a.has('step-down') && a.has('released'));
    assert.equal(a.records.find((x) => x.event === 'exit')?.['cause'], 'step-down');
    await started(ledger, 2);
    const [first, second] = intervals(readLedger(ledger));
    assert.ok(first && second && first.to < second.from, 'one child at a time');
    // The request names sd-a's term: sd-b, leading the next one, does not act on it.
    await new Promise((res) => setTimeout(res, 1500));
    assert.ok(!b.has('step-down'));
    assert.equal((await readLease(info, name))?.spec.holderIdentity, 'sd-b');
  });

  it('a client-go leader ignores the request and keeps leading, unfenced: 75 after --timeout', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('step-down-go');
    const peer = await LeaderPeer.start(info, { id: 'go-sd', lockName: name });
    t.after(() => peer.kill('SIGKILL'));
    await peer.waitFor((e) => e.event === 'started-leading');
    const follower = candidates(t).start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--', 'sleep', '30']);
    await follower.waitFor('new-leader');
    const r = stepDown(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--timeout', '3s']);
    assert.equal(r.status, 75, r.stderr);
    assert.match(r.stderr, /go-sd still holds Lease .* after 3s: it may not be leader-run/);
    assert.ok(!peer.events.some((e) => e.event === 'stopped-leading'), 'the peer kept leading');
    assert.equal((await readLease(info, name))?.spec.holderIdentity, 'go-sd');
    assert.ok(!follower.has('child-started'), 'no wrong takeover by a follower');
  });

  it('nobody holds the Lease: 1; a bad --timeout: 64', async () => {
    const info = await sharedCluster();
    const none = stepDown(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', uniqueName('nobody')]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /nobody holds Lease/);
    const bad = stepDown(['--lock-name', 'x', '--timeout', 'soon']);
    assert.equal(bad.status, 64);
    assert.match(bad.stderr, /^leader-run step-down: --timeout "soon" is not a duration/);
  });
});
