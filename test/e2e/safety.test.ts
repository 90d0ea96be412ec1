/**
 * The safety audit of December 2026 (F1–F13), one regression test per path, against the real
 * apiserver: each of these produced an overlap of two children, or left the Lease held after
 * a graceful stop, at 2e61b88. Timings are FAST (D=4s R=2s P=500ms G=500ms) unless a test says.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  apiRequest,
  type ClusterInfo,
  FaultProxy,
  holder,
  LeaderPeer,
  leasePath,
  readLease,
  sharedCluster,
  target,
  updateLease,
  writeKubeconfig,
} from '../support/cluster.ts';
import { alive, candidates, FAST, FAST_D_MS, overlaps, readLedger, started, tempDir, uniqueName, until, workerCmd } from '../support/leader-run.ts';
import { nativeFixture } from '../support/native.ts';
import { catches, known, monoNow, signalKnown, watchdogOf } from '../support/procs.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Kills `pid` when the test ends, whatever state it is in — if it is still that process:
 *  most are killed during the test, and their pids may be another's by the end. */
function reap(t: TestContext, pid: number | undefined): void {
  const p = pid ? known(pid) : undefined;
  t.after(() => {
    for (const sig of ['SIGCONT', 'SIGKILL'] as const) signalKnown(p, sig);
  });
}

async function viaProxy(t: TestContext, info: ClusterInfo): Promise<{ proxy: FaultProxy; kubeconfig: string }> {
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port: info.apiserverPort });
  t.after(() => proxy.close());
  return { proxy, kubeconfig: writeKubeconfig(info, uniqueName('via-proxy'), { user: 'candidate', server: proxy.url }) };
}

/** The pid of the first ledger line written under `name`. */
function pidOf(ledger: string, name: string): number | undefined {
  return readLedger(ledger).find((l) => l.name === name)?.pid;
}

function lastSignMono(ledger: string, pid: number): number {
  return Math.max(
    ...readLedger(ledger)
      .filter((l) => l.pid === pid)
      .map((l) => l.mono),
  );
}

/** Creates the Lease as a release leaves it, so the first leader needs no new-Lease hold. */
async function createReleased(info: ClusterInfo, name: string, leaseTransitions = 0): Promise<void> {
  const now = new Date().toISOString().replace('Z', '000Z');
  const r = await apiRequest(target(info, 'admin'), 'POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name },
    spec: { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions },
  });
  assert.equal(r.status, 201, r.text);
}

describe('F1: a process whose main thread exited while its threads run is alive', () => {
  it('kills such a grandchild when the child exits by itself, before releasing', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('zthread-exit');
    const ledger = path.join(tempDir(), 'ledger');
    const z = nativeFixture('zthread');
    const a = lr.start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--id',
      'a',
      ...FAST,
      '--',
      '/bin/sh',
      '-c',
      `"${z}" "${ledger}" a-grandchild & sleep 1; exit 0`,
    ]);
    await a.waitFor('child-started');
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await until(() => pidOf(ledger, 'a-grandchild') !== undefined, 10_000, 'the grandchild to start');
    const grandchild = pidOf(ledger, 'a-grandchild')!;
    reap(t, grandchild);
    assert.equal(await a.exitCode(), 0, "the child's own status");
    assert.ok(!alive(grandchild), 'the grandchild (main thread exited, a thread beating) is gone when leader-run exits');
    await started(ledger, 2);
    await sleep(300);
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('kills such a grandchild in a process group of its own when the lease is lost', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('zthread-fence');
    const ledger = path.join(tempDir(), 'ledger');
    const z = nativeFixture('zthread');
    const { proxy, kubeconfig } = await viaProxy(t, info);
    // set -m: the background job gets a process group of its own, inside the child's session.
    const a = lr.start([
      '--kubeconfig',
      kubeconfig,
      '--lock-name',
      name,
      '--id',
      'a',
      ...FAST,
      '--',
      '/bin/sh',
      '-c',
      `set -m; "${z}" "${ledger}" a-grandchild & wait`,
    ]);
    await until(() => pidOf(ledger, 'a-grandchild') !== undefined, 10_000, 'the grandchild to start');
    const grandchild = pidOf(ledger, 'a-grandchild')!;
    reap(t, grandchild);
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    proxy.setMode('blackhole');
    assert.equal(await a.exitCode(), 75);
    assert.ok(!alive(grandchild), 'the grandchild is gone when leader-run exits');
    await started(ledger, 2);
    await sleep(300);
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('kills a command that is itself such a process and ignores SIGTERM, after the shutdown grace', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('zthread-cmd');
    const ledger = path.join(tempDir(), 'ledger');
    const z = nativeFixture('zthread');
    const a = lr.start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--id',
      'a',
      ...FAST,
      '--shutdown-grace',
      '1s',
      '--',
      z,
      ledger,
      'a-child',
    ]);
    await until(() => pidOf(ledger, 'a-child') !== undefined, 10_000, 'the child to start');
    const child = pidOf(ledger, 'a-child')!;
    reap(t, child);
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    a.signal('SIGTERM');
    assert.equal(await a.exitCode(), 137, 'killed by our SIGKILL once the shutdown grace ran out');
    assert.ok(!alive(child), 'the child is gone when leader-run exits');
    await started(ledger, 2);
    await sleep(300);
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });
});

describe('F2: a frozen watchdog is guarded by the main process', () => {
  /** D=8s R=6s P=1s G=500ms: the ping silence (R/2 = 3s) comes well after a fence's kill
   *  instant, so these tests see the kill-deadline backstop, not the ping. */
  const SLOW = ['--lease-duration', '8s', '--renew-deadline', '6s', '--retry-period', '1s', '--fence-grace', '500ms'];

  it('the audit’s case: frozen watchdog, network cut — the child is dead before the lease can expire', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('wd-frozen-cut');
    const ledger = path.join(tempDir(), 'ledger');
    const { proxy, kubeconfig } = await viaProxy(t, info);
    const a = lr.start(['--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger, '--ignore-term')]);
    const [child] = await started(ledger, 1);
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    const wd = watchdogOf(a.pid);
    assert.ok(wd, 'found the watchdog');
    reap(t, wd);
    process.kill(wd, 'SIGSTOP');
    proxy.setMode('blackhole');
    const cut = Number(process.hrtime.bigint()) / 1e6;
    // The silent watchdog (70) or the lost lease (75) is noticed first, depending on where
    // the freeze falls between two renewals; either way the main process kills the tree.
    assert.ok([70, 75].includes((await a.exitCode(20_000))!));
    assert.ok(a.has('watchdog-failed'));
    assert.ok(!alive(child!.pid), 'the child is gone');
    assert.ok(lastSignMono(ledger, child!.pid) < cut + FAST_D_MS, 'and was gone before the lease could expire');
    assert.ok(!alive(wd), 'the stuck watchdog was killed');
    await started(ledger, 2);
    await sleep(300);
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('a fence whose watchdog is frozen: killed by the main process at the fence grace, exit 75', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('wd-frozen-lost');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...SLOW, ...workerCmd(ledger, '--ignore-term')]);
    const [child] = await started(ledger, 1);
    const wd = watchdogOf(a.pid)!;
    reap(t, wd);
    process.kill(wd, 'SIGSTOP');
    await updateLease(info, name, (l) => ({ ...l, spec: { ...l.spec, holderIdentity: 'intruder' } }));
    assert.equal(await a.exitCode(20_000), 75, 'lost leadership → 75');
    assert.ok(a.has('watchdog-failed'), 'the watchdog did not report the tree gone in time');
    assert.ok(!alive(child!.pid), 'the child is gone');
    assert.ok(!alive(wd), 'the stuck watchdog was killed');
    assert.equal(await holder(info, name), 'intruder', 'nothing of ours released over it');
  });

  it('a voluntary stop whose watchdog is frozen: killed at the shutdown grace, released, exit 70', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('wd-frozen-stop');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--id',
      'a',
      ...SLOW,
      '--shutdown-grace',
      '1s',
      ...workerCmd(ledger, '--ignore-term'),
    ]);
    const [child] = await started(ledger, 1);
    const wd = watchdogOf(a.pid)!;
    reap(t, wd);
    process.kill(wd, 'SIGSTOP');
    a.signal('SIGTERM');
    assert.equal(await a.exitCode(20_000), 70, 'the watchdog failed: an internal error');
    assert.ok(a.has('watchdog-failed'));
    assert.ok(!alive(child!.pid), 'the child is gone');
    assert.equal(await holder(info, name), '', 'the tree was confirmed gone, so the Lease was released');
  });

  it('fences, releases and exits 70 when the watchdog stops answering while the lease is fine', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('wd-frozen');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger, '--ignore-term')]);
    const [child] = await started(ledger, 1);
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    const wd = watchdogOf(a.pid)!;
    reap(t, wd);
    process.kill(wd, 'SIGSTOP');
    assert.equal(await a.exitCode(20_000), 70, 'the watchdog failed: an internal error');
    assert.ok(a.has('watchdog-failed'));
    assert.ok(a.has('released'), 'the tree was confirmed gone, so the Lease was released');
    assert.ok(!alive(child!.pid));
    await started(ledger, 2);
    await sleep(300);
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });
});

describe('F7: a watchdog dead before the child is spawned', () => {
  it('ends the term at once, releasing the Lease, when the watchdog is killed during the new-Lease hold', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('wd-dead-hold');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger)]);
    await a.waitFor('new-lease-hold');
    const wd = watchdogOf(a.pid)!;
    process.kill(wd, 'SIGKILL');
    assert.equal(await a.exitCode(10_000), 70);
    assert.ok(a.has('watchdog-failed'));
    assert.ok(!a.has('child-started'), 'no child was started without a watchdog');
    assert.equal(await holder(info, name), '', 'the Lease was released');
    assert.deepEqual(readLedger(ledger), []);
  });
});

describe('F10: signals meant for the whole unit', () => {
  it('a SIGTERM to the watchdog alone, during the hold, changes nothing', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('wd-term-hold');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger)]);
    await a.waitFor('new-lease-hold');
    // Until the watchdog's script has installed its handlers, a SIGTERM kills it (F7's case).
    // Node catches SIGTERM from its start (to restore the terminal before dying of it), so
    // SIGTERM's own bit says nothing: SIGTSTP's handler is installed after SIGTERM's.
    const wd = watchdogOf(a.pid)!;
    await until(() => catches(wd, 'SIGTSTP'), 10_000, "the watchdog's signal handlers");
    process.kill(wd, 'SIGTERM');
    await started(ledger, 1);
    a.signal('SIGTERM');
    assert.equal(await a.exitCode(10_000), 143);
    assert.equal(await holder(info, name), '', 'released');
  });

  it('SIGTERM to both processes (systemd KillMode=control-group) keeps the shutdown grace', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('unit-term');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--id',
      'a',
      ...FAST,
      '--shutdown-grace',
      '10s',
      ...workerCmd(ledger, '--term-delay', '3000'),
    ]);
    const [child] = await started(ledger, 1);
    const wd = watchdogOf(a.pid)!;
    a.signal('SIGTERM');
    process.kill(wd, 'SIGTERM');
    assert.equal(await a.exitCode(20_000), 143, "the child's own status after its graceful stop");
    const stop = readLedger(ledger).find((l) => l.pid === child!.pid && l.ev === 'stop');
    assert.ok(stop, 'the child finished its graceful stop (it was not SIGKILLed after G)');
    assert.equal(await holder(info, name), '', 'released');
  });

  it('SIGHUP to both processes is forwarded, and the term goes on', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('unit-hup');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, '--shutdown-grace', '2s', ...workerCmd(ledger)]);
    const [child] = await started(ledger, 1);
    const wd = watchdogOf(a.pid)!;
    a.signal('SIGHUP');
    process.kill(wd, 'SIGHUP');
    await until(() => readLedger(ledger).some((l) => l.ev === 'signal' && l['signal'] === 'SIGHUP'), 5_000, 'the forwarded SIGHUP');
    await sleep(1500);
    assert.ok(alive(child!.pid) && alive(wd), 'the child and the watchdog run on');
    assert.ok(!a.has('child-exited') && !a.has('stopped-leading'));
    a.signal('SIGTERM');
    assert.equal(await a.exitCode(10_000), 143);
  });
});

describe('F3: the new-Lease hold covers the longest lease it may replace', () => {
  it('holds a recreated Lease for the deleted holder’s longer lease duration (leader-run)', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('hold-long');
    const ledger = path.join(tempDir(), 'ledger');
    await createReleased(info, name);
    const a = lr.start([
      '-v',
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--id',
      'a',
      '--lease-duration',
      '30s',
      '--renew-deadline',
      '20s',
      '--retry-period',
      '8s',
      '--fence-grace',
      '2s',
      ...workerCmd(ledger),
    ]);
    const [old] = await started(ledger, 1);
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    // Right after a renewal: the old leader notices the deletion only at its next one, P = 8s later.
    const renewals = a.records.filter((r) => r.event === 'renewed').length;
    await until(() => a.records.filter((r) => r.event === 'renewed').length > renewals, 20_000, "a's next renewal");
    assert.equal((await apiRequest(target(info, 'admin'), 'DELETE', leasePath(name))).status, 200);
    assert.equal(await a.exitCode(40_000), 75);
    const [, next] = await started(ledger, 2, 60_000);
    assert.ok(next!.mono > lastSignMono(ledger, old!.pid), "b's child started only after a's was gone");
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('holds a recreated Lease for a client-go peer’s longer lease duration', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('hold-peer');
    const ledger = path.join(tempDir(), 'ledger');
    const peer = await LeaderPeer.start(info, { id: 'peer', lockName: name, leaseDuration: '30s', renewDeadline: '20s', retryPeriod: '8s' });
    t.after(() => peer.proc.kill('SIGKILL'));
    await peer.waitFor((e) => e.event === 'started-leading');
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    const renewTime = async (): Promise<string> => String((await readLease(info, name))?.spec.renewTime);
    const before = await renewTime();
    await until(async () => (await renewTime()) !== before, 20_000, "the peer's next renewal");
    assert.equal((await apiRequest(target(info, 'admin'), 'DELETE', leasePath(name))).status, 200);
    const stopped = await peer.waitFor((e) => e.event === 'stopped-leading', 60_000);
    const [first] = await started(ledger, 1, 60_000);
    assert.ok(first!.wall >= stopped.ms, `b's child started ${stopped.ms - first!.wall}ms before the peer stopped leading`);
    b.signal('SIGTERM');
    await b.exitCode();
  });
});

describe('F4: only a release frees a Lease at once', () => {
  it('an admin clearing the holder does not let a follower start while the old child runs', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('admin-clear');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger, '--ignore-term')]);
    await started(ledger, 1);
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    await updateLease(info, name, (l) => ({ ...l, spec: { ...l.spec, holderIdentity: '' } }));
    assert.equal(await a.exitCode(), 75);
    await started(ledger, 2);
    await sleep(300);
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('a Lease deleted and recreated empty, first seen by a fresh candidate, waits for the old child', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('recreated-empty');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger, '--ignore-term')]);
    await started(ledger, 1);
    await sleep(700);
    const admin = target(info, 'admin');
    assert.equal((await apiRequest(admin, 'DELETE', leasePath(name))).status, 200);
    const created = await apiRequest(admin, 'POST', `/apis/coordination.k8s.io/v1/namespaces/default/leases`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name },
      spec: {},
    });
    assert.equal(created.status, 201);
    const c = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'c', ...FAST, ...workerCmd(ledger)]);
    assert.equal(await a.exitCode(), 75);
    await started(ledger, 2);
    await sleep(300);
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    c.signal('SIGTERM');
    await c.exitCode();
  });
});

describe('F5: no spawn on an expired lease', () => {
  it('a leader frozen at the end of the new-Lease hold does not start its child on waking', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('hold-freeze');
    const ledger = path.join(tempDir(), 'ledger');
    const worker = nativeFixture('cworker');
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, '--', worker, ledger, 'a-child']);
    const won = await a.waitFor('started-leading');
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, '--', worker, ledger, 'b-child']);
    await b.waitFor('new-leader');
    // Frozen within the last second of the 4s hold, for longer than D − R.
    await sleep(Math.max(0, Date.parse(won.time) + FAST_D_MS - 400 - Date.now()));
    a.signal('SIGSTOP');
    await until(() => pidOf(ledger, 'b-child') !== undefined, 30_000, "b's child to start");
    await sleep(1000);
    a.signal('SIGCONT');
    assert.equal(await a.exitCode(), 75);
    assert.equal(pidOf(ledger, 'a-child'), undefined, 'a never started its child');
    assert.ok(!a.has('child-started'));
    b.signal('SIGTERM');
    await b.exitCode();
  });
});

describe('F8: release survives a metadata-only write', () => {
  it('releases after an annotation was added since the last renewal', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('annotated');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start([
      '-v',
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--id',
      'a',
      '--lease-duration',
      '8s',
      '--renew-deadline',
      '5s',
      '--retry-period',
      '2s',
      '--fence-grace',
      '1s',
      ...workerCmd(ledger),
    ]);
    await started(ledger, 1);
    const renewals = a.records.filter((r) => r.event === 'renewed').length;
    await until(() => a.records.filter((r) => r.event === 'renewed').length > renewals, 10_000, 'a renewal');
    await updateLease(info, name, (l) => ({ ...l, metadata: { ...l.metadata, annotations: { 'example.com/owner': 'team-a' } } }));
    a.signal('SIGTERM');
    assert.equal(await a.exitCode(), 143);
    assert.ok(a.has('released'));
    assert.equal(await holder(info, name), '', 'the Lease is free for the next candidate at once');
  });
});

describe('F9: a stop while an acquire’s answer was lost', () => {
  it('releases the write that landed', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('lost-answer');
    const ledger = path.join(tempDir(), 'ledger');
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await started(ledger, 1);
    const { proxy, kubeconfig } = await viaProxy(t, info);
    const a = lr.start(['--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger)]);
    await a.waitFor('new-leader');
    await sleep(500); // the watch is up, on the connection the first read opened
    // From now on a's connections carry its next requests but lose the answers: its acquire
    // (on the watch's connection over HTTP/2, on a fresh one over HTTP/1.1) lands unanswered.
    proxy.setMode('lose-replies');
    b.signal('SIGTERM');
    await b.exitCode();
    await until(async () => (await holder(info, name)) === 'a', 10_000, "a's acquire to land");
    a.signal('SIGTERM');
    proxy.setMode('pass');
    assert.equal(await a.exitCode(), 143, 'no child ran: 128 + SIGTERM');
    assert.ok(!a.has('child-started'));
    assert.equal(await holder(info, name), '', 'the write that landed was released');
  });
});

describe('F12: the fencing token on a recreated Lease', () => {
  it('goes on from the largest leaseTransitions seen on the object it replaced', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('token');
    const ledger = path.join(tempDir(), 'ledger');
    const admin = target(info, 'admin');
    await createReleased(info, name, 41);
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger)]);
    const [first] = await started(ledger, 1);
    assert.equal((first!['env'] as { token: string }).token, '42');
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    assert.equal((await apiRequest(admin, 'DELETE', leasePath(name))).status, 200);
    assert.equal(await a.exitCode(), 75);
    const [, next] = await started(ledger, 2);
    assert.ok(Number((next!['env'] as { token: string }).token) > 42, 'the token still grows across the recreated object');
    b.signal('SIGTERM');
    await b.exitCode();
  });
});

describe('F13: what leader-run did itself is reported as its own', () => {
  it('a watchdog killed under a running child: the tree is killed, the Lease released, exit 70', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('wd-killed');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger, '--grandchildren', '2')]);
    const [child] = await started(ledger, 1);
    process.kill(watchdogOf(a.pid)!, 'SIGKILL');
    assert.equal(await a.exitCode(), 70, 'not 137: that SIGKILL was our own');
    assert.ok(a.has('watchdog-failed'));
    for (const pid of [child!.pid, ...(child!['grandchildren'] as number[])]) assert.ok(!alive(pid));
    assert.equal(await holder(info, name), '', 'released');
  });
});

describe('F15: a descendant leader-run may not signal', () => {
  it('gives up killing it after a bound, says so, and does not release', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('eperm');
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const ledger = path.join(dir, 'ledger');
    writeFileSync(ledger, '', { mode: 0o666 });
    chmodSync(ledger, 0o666);
    // A setuid-root program that takes every uid (as su does): the unprivileged leader-run
    // that starts it cannot signal it any more.
    const root = path.join(dir, 'rootworker');
    copyFileSync(nativeFixture('rootworker'), root);
    chownSync(root, 0, 0);
    chmodSync(root, 0o4755);
    const ca = path.join(dir, 'ca.crt');
    copyFileSync(info.caFile, ca);
    chmodSync(ca, 0o644);
    const kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, readFileSync(writeKubeconfig(info, uniqueName('nobody'), { user: 'candidate', caFile: ca })), { mode: 0o644 });
    const a = lr.start(['--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'a', ...FAST, '--shutdown-grace', '500ms', '--', root, ledger, 'a-root'], {
      uid: 65534,
      gid: 65534,
    });
    await until(() => pidOf(ledger, 'a-root') !== undefined, 10_000, 'the setuid child to start');
    const child = pidOf(ledger, 'a-root')!;
    reap(t, child);
    a.signal('SIGTERM');
    assert.equal(await a.exitCode(20_000), 70, 'an internal error: the tree could not be confirmed gone');
    const err = a.records.find((r) => r.event === 'unkillable');
    assert.ok(err && String(err.msg).includes(String(child)), 'the error names the process');
    assert.equal(await holder(info, name), 'a', 'not released: the Lease is left to expire');
  });
});

describe('F11: a guard that needs neither process', () => {
  it('the direct child dies with the watchdog even when leader-run dies with it', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('both-killed');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger)]);
    const [child] = await started(ledger, 1);
    reap(t, child!.pid);
    const wd = watchdogOf(a.pid)!;
    process.kill(wd, 'SIGKILL');
    a.signal('SIGKILL');
    await until(() => !alive(child!.pid), 5_000, 'the orphaned child to die of its parent-death signal');
  });
});

describe('F16: a process that keeps forking away from the tree', () => {
  it('no other candidate leads while a generation of it runs', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('hopper');
    const dir = tempDir();
    const ledger = path.join(dir, 'ledger');
    const hops = path.join(dir, 'hops');
    const stop = path.join(dir, 'stop');
    // Each generation beats, starts the next in a session of its own (found by the term's
    // mark only) and exits: the one a look at /proc lists may be gone by the time its stat is
    // read, and its successor, mid-exec, may not show its environment yet.
    const hopper = ['BEAT_US=0', nativeFixture('hopper'), hops, 'a/hop', String(monoNow() + 300_000), stop].join(' ');
    t.after(() => writeFileSync(stop, ''));
    const count = (): number => (existsSync(hops) ? (readFileSync(hops, 'utf8').match(/\n/g) ?? []).length : 0);
    const a = lr.start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--id',
      'a',
      ...FAST,
      '--shutdown-grace',
      '500ms',
      '--shell',
      '--',
      `${hopper}; exec sleep 1000`,
    ]);
    await a.waitFor('child-started');
    await until(() => count() > 20, 10_000, 'the hopper to hop');
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    a.signal('SIGTERM');
    // However long a takes to catch every generation, the Lease stays its own meanwhile.
    await started(ledger, 1, 120_000);
    const atStart = count();
    await sleep(300);
    assert.equal(count(), atStart, `a generation ran on after b's child started (a: ${a.records.map((r) => r.event).join(', ')})`);
    assert.ok(a.has('child-gone'), 'a confirmed its tree gone before releasing');
  });
});
