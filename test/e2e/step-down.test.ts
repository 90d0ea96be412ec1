/**
 * `leader-run step-down` (issue 16, part 1), against the real apiserver: the leader hands over
 * at once as on SIGTERM and exits 0; a client-go peer is not misled; nobody leading is 1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LeaderPeer, readLease, sharedCluster } from '../support/cluster.ts';
import { BIN, candidates, FAST, FAST_D_MS, intervals, readLedger, started, tempDir, uniqueName, workerCmd } from '../support/leader-run.ts';

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

  it('--to hands the Lease to that follower at once; the others wait', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('step-down-to');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t);
    const base = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST];
    const a = lr.start([...base, '--id', 'to-a', ...workerCmd(ledger)]);
    await started(ledger, 1);
    const b = lr.start([...base, '--id', 'to-b', ...workerCmd(ledger)]);
    const c = lr.start([...base, '--id', 'to-c', ...workerCmd(ledger)]);
    await Promise.all([b.waitFor('new-leader'), c.waitFor('new-leader')]);
    const r = stepDown(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--to', 'to-c']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^to-a stepped down; handed Lease default/${name} to to-c\n$`));
    assert.equal(await a.exitCode(), 0);
    assert.match(a.records.find((x) => x.event === 'released')?.msg ?? '', /^handed the Lease to to-c/);
    await c.waitFor('child-started');
    const at = (run: typeof a, event: string): number => Date.parse(run.records.find((x) => x.event === event)!.time);
    // At once: well inside the lease duration a plain expiry would take.
    assert.ok(at(c, 'started-leading') - at(a, 'released') < FAST_D_MS, 'taken without waiting for expiry');
    await new Promise((res) => setTimeout(res, 1000));
    assert.ok(!b.has('started-leading'), 'nobody else took it');
    const [first, second] = intervals(readLedger(ledger));
    assert.ok(first && second && first.to < second.from, 'one child at a time');
    assert.ok(Number((await readLease(info, name))?.spec.leaseTransitions) >= 2, 'tokens go on growing');
  });

  it('--to a client-go candidate: it takes the Lease at once, a leader-run follower waits', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('step-down-to-go');
    const lr = candidates(t);
    const base = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST];
    const a = lr.start([...base, '--id', 'to-a', '--', 'sleep', '30']);
    await a.waitFor('child-started');
    const peer = await LeaderPeer.start(info, { id: 'go-to', lockName: name });
    t.after(() => peer.kill('SIGKILL'));
    const b = lr.start([...base, '--id', 'to-b', '--', 'sleep', '30']);
    await Promise.all([b.waitFor('new-leader'), peer.waitFor((e) => e.event === 'new-leader')]);
    const r = stepDown(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--to', 'go-to']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await a.exitCode(), 0);
    await peer.waitFor((e) => e.event === 'started-leading', 10_000);
    await new Promise((res) => setTimeout(res, 1500));
    assert.ok(!b.has('started-leading'), 'the follower saw go-to hold the Lease and waited');
    assert.equal((await readLease(info, name))?.spec.holderIdentity, 'go-to');
  });

  it('--to a candidate that never comes: the others take over after one lease duration, not before', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('step-down-to-ghost');
    const lr = candidates(t);
    const base = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST];
    const a = lr.start([...base, '--id', 'to-a', '--', 'sleep', '30']);
    await a.waitFor('child-started');
    const b = lr.start([...base, '--id', 'to-b', '--', 'sleep', '30']);
    await b.waitFor('new-leader');
    const r = stepDown(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--to', 'ghost']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await a.exitCode(), 0);
    await b.waitFor('child-started', 20_000);
    const at = (run: typeof a, event: string): number => Date.parse(run.records.find((x) => x.event === event)!.time);
    // b saw the hand-over record after it was written, and waited D from then.
    assert.ok(at(b, 'started-leading') - at(a, 'released') >= FAST_D_MS - 250, 'the reservation held for a lease duration');
  });

  it('--to the holder itself: 64, nothing written', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('step-down-to-self');
    const a = candidates(t).start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--id', 'to-a', '--', 'sleep', '30']);
    await a.waitFor('child-started');
    const r = stepDown(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--to', 'to-a']);
    assert.equal(r.status, 64);
    assert.match(r.stderr, /--to to-a already holds Lease/);
    assert.equal(((await readLease(info, name))?.metadata['annotations'] as Record<string, string> | undefined)?.['leader-run.io/step-down'], undefined);
  });

  it('POST /step-down with --http-step-down: 202 and a hand-over; 409 on a follower; off by default', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('step-down-http');
    const lr = candidates(t);
    const base = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--http-addr', '127.0.0.1:0'];
    const a = lr.start([...base, '--id', 'http-a', '--http-step-down', '--', 'sleep', '30']);
    await a.waitFor('child-started');
    const b = lr.start([...base, '--id', 'http-b', '--http-step-down', '--', 'sleep', '30']);
    const off = lr.start([...base, '--id', 'http-off', '--', 'sleep', '30']);
    await Promise.all([b.waitFor('new-leader'), off.waitFor('new-leader')]);
    const url = async (run: typeof a, q = '') => `http://${(await run.waitFor('http-listening'))['address']}/step-down${q}`;
    assert.equal((await fetch(await url(off), { method: 'POST' })).status, 405, 'off unless asked for');
    assert.equal((await fetch(await url(b), { method: 'POST' })).status, 409, 'a follower has nothing to hand over');
    assert.equal((await fetch(await url(a, '?to=http-a'), { method: 'POST' })).status, 400, 'not to itself');
    const res = await fetch(await url(a, '?to=http-b'), { method: 'POST' });
    assert.equal(res.status, 202);
    assert.equal(await res.text(), 'stepping down to http-b\n');
    assert.equal(await a.exitCode(), 0);
    assert.equal(a.records.find((x) => x.event === 'exit')?.['cause'], 'step-down');
    await b.waitFor('child-started');
    assert.ok(!off.has('started-leading'));
  });

  it('--http-step-down without --http-addr: 64', async (t) => {
    const run = candidates(t).start(['--lock-name', 'x', '--http-step-down', '--', 'true']);
    assert.equal(await run.exitCode(), 64);
    assert.match(run.stderrLines.join('\n'), /--http-step-down needs --http-addr/);
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
