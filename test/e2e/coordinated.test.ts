/**
 * --coordinated (issue 16, part 2: KEP-4355), against the real apiserver with
 * CoordinatedLeaderElection on: leader-run registers a LeaseCandidate, leads only when the
 * API server's controller names it, honours preferredHolder by stopping its child and
 * releasing at once, and shares a Lease with client-go's own coordinated candidate both ways.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { apiRequest, LeaderPeer, readLease, sharedCluster, target, updateLease } from '../support/cluster.ts';
import { candidates, FAST, overlaps, readLedger, started, tempDir, uniqueName, workerCmd } from '../support/leader-run.ts';

const candidatePath = (name: string) => `/apis/coordination.k8s.io/v1beta1/namespaces/default/leasecandidates/${name}`;

describe('--coordinated', () => {
  it('the controller names one candidate; on its release it names the next, which starts at once; candidates withdraw on exit', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('coord');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t);
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--coordinated'];
    const a = lr.start([...args, '--id', `${name}-a`, ...workerCmd(ledger, '--exit-after', '1500')]);
    await a.waitFor('candidate-registered');
    // Equal versions: the oldest candidate wins, by creationTimestamp, which has whole seconds.
    await new Promise((r) => setTimeout(r, 1100));
    const b = lr.start([...args, '--id', `${name}-b`, ...workerCmd(ledger, '--exit-after', '500')]);
    assert.equal(await a.exitCode(), 0);
    assert.equal(await b.exitCode(), 0);
    const lines = readLedger(ledger);
    assert.equal(lines.filter((l) => l.ev === 'start').length, 2, 'both ran, one after the other');
    assert.deepEqual(overlaps(lines), []);
    const at = (run: typeof a, event: string): number => Date.parse(run.records.find((x) => x.event === event)!.time);
    // b was named after a's release and had seen it: no hold.
    assert.ok(!b.has('new-lease-hold'), 'after a release, no hold');
    assert.ok(at(b, 'child-started') >= at(a, 'released'));
    const lease = await readLease(info, name);
    assert.equal(lease?.spec.leaseTransitions, 2, 'each term moved leaseTransitions: the fencing token grows');
    for (const id of ['a', 'b']) assert.equal((await apiRequest(target(info, 'admin'), 'GET', candidatePath(`${name}-${id}`))).status, 404, `${id} withdrew`);
  });

  it('preferredHolder: an older emulation version takes over; the leader stops its child and releases at once', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('coord-pref');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t);
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--coordinated', '--binary-version', '1.36.0'];
    const a = lr.start([...args, '--id', `${name}-new`, ...workerCmd(ledger)]);
    await started(ledger, 1);
    const b = lr.start([...args, '--id', `${name}-old`, '--emulation-version', '1.35.0', ...workerCmd(ledger)]);
    assert.equal(await a.exitCode(), 0, 'a planned handover');
    assert.ok(a.has('step-down') && a.has('released'));
    await b.waitFor('child-started');
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    assert.equal((await readLease(info, name))?.spec.holderIdentity, `${name}-old`);
    b.signal('SIGTERM');
    assert.equal(await b.exitCode(), 143);
  });

  it('with client-go’s coordinated candidate, both ways: never two at once', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    for (const first of ['client-go', 'leader-run'] as const) {
      const name = uniqueName(`coord-go-${first}`);
      const ledger = path.join(tempDir(), 'ledger');
      const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--coordinated', '--binary-version', '1.36.0'];
      // The first to lead runs 1.36.0; the second, emulating 1.35.0, is preferred.
      const peerVersions = first === 'client-go' ? { binaryVersion: '1.36.0' } : { binaryVersion: '1.36.0', emulationVersion: '1.35.0' };
      const lrVersion = first === 'client-go' ? ['--emulation-version', '1.35.0'] : [];
      let peer: LeaderPeer | undefined;
      let run: ReturnType<typeof lr.start> | undefined;
      const startPeer = async () => {
        peer = await LeaderPeer.start(info, { id: `${name}-go`, lockName: name, ledger, coordinated: peerVersions });
        t.after(() => peer?.kill('SIGKILL'));
      };
      if (first === 'client-go') {
        await startPeer();
        await peer!.waitFor((e) => e.event === 'started-leading', 30_000);
        run = lr.start([...args, '--id', `${name}-lr`, ...lrVersion, ...workerCmd(ledger)]);
        // client-go lets a preferred-away Lease expire; leader-run then holds until that
        // record, seen unchanged, would have expired by its own observation.
        await run.waitFor('child-started', 60_000);
        await peer!.waitFor((e) => e.event === 'stopped-leading', 10_000);
      } else {
        run = lr.start([...args, '--id', `${name}-lr`, ...workerCmd(ledger)]);
        await started(ledger, 1);
        await startPeer();
        assert.equal(await run.exitCode(), 0, 'leader-run hands over on preferredHolder');
        await peer!.waitFor((e) => e.event === 'started-leading', 30_000);
      }
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(overlaps(readLedger(ledger)), [], `${first} first`);
      peer!.kill('SIGTERM');
      run.signal('SIGTERM');
      await run.exitCode();
    }
  });

  it('bad versions, or --coordinated with --slots: 64', async (t) => {
    for (const [extra, why] of [
      [['--coordinated', '--binary-version', '1.36'], /--binary-version "1.36" is not a version; write it as X.Y.Z/],
      [['--coordinated', '--binary-version', '1.35.0', '--emulation-version', '1.36.0'], /--emulation-version 1.36.0 is above --binary-version 1.35.0/],
      [['--binary-version', '1.36.0'], /--binary-version needs --coordinated/],
      [['--coordinated', '--slots', '2'], /--slots and --coordinated do not go together/],
    ] as const) {
      const run = candidates(t).start(['--lock-name', 'x', ...extra, '--', 'true']);
      assert.equal(await run.exitCode(), 64, extra.join(' '));
      assert.match(run.stderrLines.join('\n'), why);
    }
  });
});

describe('--coordinated safety', () => {
  it('named while a predecessor may still lead (the controller judges expiry by wall clocks): the child waits until that record, seen unchanged, has expired', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('coord-skew');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t);
    const base = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST];
    // A leader that is not coordinated holds the Lease, its child running.
    const old = lr.start([...base, '--id', 'old', ...workerCmd(ledger, '--ignore-term', '--term-delay', '0')]);
    await started(ledger, 1);
    const c = lr.start([...base, '--coordinated', '--id', `${name}-c`, ...workerCmd(ledger)]);
    await c.waitFor('waiting');
    // As a controller whose clock runs ahead of the old leader's would: name c at once.
    await updateLease(info, name, (l) => {
      l.spec.holderIdentity = `${name}-c`;
      l.spec.renewTime = new Date().toISOString().replace('Z', '000Z');
      l.spec.leaseDurationSeconds = 5;
      return l;
    });
    await c.waitFor('child-started', 30_000);
    await old.exitCode();
    assert.deepEqual(overlaps(readLedger(ledger)), [], 'the old child was gone before the new one started');
    assert.ok(c.has('new-lease-hold'), 'held');
    assert.equal(await old.exitCode(), 75, 'the old leader was fenced');
  });
});
