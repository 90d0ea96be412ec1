/**
 * DESIGN §3 against the real apiserver with real faults: the child tree is confirmed dead
 * before anyone else can lead, whatever happens to the network, the Lease or leader-run.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { apiRequest, type ClusterInfo, FaultProxy, leasePath, readLease, sharedCluster, target, updateLease, writeKubeconfig } from '../support/cluster.ts';
import { alive, FAST, FAST_D_MS, LeaderRun, overlaps, readLedger, started, tempDir, uniqueName, until, workerCmd } from '../support/leader-run.ts';
import { childrenOf, known, signalKnown, statFields } from '../support/procs.ts';

const R_MS = 2000;
const G_MS = 500;

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanup) await c();
});

function start(args: string[]): LeaderRun {
  const lr = new LeaderRun(args);
  cleanup.push(() => {
    lr.signal('SIGCONT');
    lr.signal('SIGKILL');
  });
  return lr;
}

async function viaProxy(info: ClusterInfo): Promise<{ proxy: FaultProxy; kubeconfig: string }> {
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port: info.apiserverPort });
  cleanup.push(() => proxy.close());
  return { proxy, kubeconfig: writeKubeconfig(info, uniqueName('via-proxy'), { user: 'candidate', server: proxy.url }) };
}

/** Wall time of the last sign of life of every process in the ledger with this name. */
function lastSign(ledger: string, pid: number): number {
  return Math.max(
    ...readLedger(ledger)
      .filter((l) => l.pid === pid)
      .map((l) => l.wall),
  );
}

describe('fencing', () => {
  it('kills the whole tree — SIGTERM-ignoring child and grandchildren — when the network is cut, before anyone else leads', async () => {
    const info = await sharedCluster();
    const name = uniqueName('tree');
    const ledger = path.join(tempDir(), 'ledger');
    const { proxy, kubeconfig } = await viaProxy(info);
    const a = start(['--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger, '--ignore-term', '--grandchildren', '3')]);
    const [child] = await started(ledger, 1);
    const b = start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    await new Promise((r) => setTimeout(r, 1000));
    proxy.setMode('blackhole');
    const cut = Date.now();
    assert.equal(await a.exitCode(), 75, 'lost leadership → EX_TEMPFAIL');
    assert.ok(a.has('child-fenced'));
    const kids = (child!['grandchildren'] as number[]) ?? [];
    assert.equal(kids.length, 3);
    for (const pid of [child!.pid, ...kids]) assert.ok(!alive(pid), `process ${pid} of the tree is gone`);
    const lastRenew = Date.parse(String((await readLease(info, name))?.spec['renewTime']));
    assert.ok(lastRenew <= cut);
    assert.ok(lastSign(ledger, child!.pid) <= lastRenew + FAST_D_MS, 'the child was gone before the lease could expire');
    const [, next] = await started(ledger, 2);
    assert.ok(next!.wall >= lastRenew + FAST_D_MS, 'b led only after the lease duration');
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('kills the tree by the deadline while leader-run is frozen with SIGSTOP', async () => {
    const info = await sharedCluster();
    const name = uniqueName('frozen');
    const ledger = path.join(tempDir(), 'ledger');
    const a = start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger, '--ignore-term')]);
    const [child] = await started(ledger, 1);
    const b = start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    await new Promise((r) => setTimeout(r, 800));
    a.signal('SIGSTOP');
    await until(() => !alive(child!.pid), 10_000, 'the watchdog to kill the child of the frozen leader-run');
    const lastRenew = Date.parse(String((await readLease(info, name))?.spec['renewTime']));
    const last = lastSign(ledger, child!.pid);
    assert.ok(last <= lastRenew + R_MS + G_MS + 500, `child's last sign of life ${last - lastRenew}ms after the last renewal`);
    const [, next] = await started(ledger, 2);
    assert.ok(next!.wall >= lastRenew + FAST_D_MS);
    a.signal('SIGCONT');
    assert.equal(await a.exitCode(), 75, 'on waking it sees the lost lease and exits EX_TEMPFAIL');
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('kills the tree when leader-run is SIGKILLed (the watchdog notices its death)', async () => {
    const info = await sharedCluster();
    const name = uniqueName('killed');
    const ledger = path.join(tempDir(), 'ledger');
    const a = start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, ...workerCmd(ledger, '--grandchildren', '2')]);
    const [child] = await started(ledger, 1);
    a.signal('SIGKILL');
    const killed = Date.now();
    const tree = [child!.pid, ...((child!['grandchildren'] as number[]) ?? [])];
    await until(() => tree.every((p) => !alive(p)), 5_000, 'the orphaned tree to be killed');
    assert.ok(Date.now() - killed < FAST_D_MS, 'well before the lease could expire');
  });

  it('keeps the lease renewed through a voluntary stop longer than the lease duration', async () => {
    const info = await sharedCluster();
    const name = uniqueName('slow-stop');
    const ledger = path.join(tempDir(), 'ledger');
    const a = start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--id',
      'a',
      ...FAST,
      '--shutdown-grace',
      '20s',
      ...workerCmd(ledger, '--term-delay', String(FAST_D_MS + 2500)),
    ]);
    const [child] = await started(ledger, 1);
    const b = start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    a.signal('SIGTERM');
    const stopAsked = Date.now();
    assert.equal(await a.exitCode(), 143, "the child's own status");
    const stop = readLedger(ledger).find((l) => l.ev === 'stop' && l.pid === child!.pid);
    assert.ok(stop && stop.wall - stopAsked >= FAST_D_MS, 'the child really took longer than D');
    assert.ok(!a.has('stopped-leading'), 'leadership was never lost meanwhile');
    const [, next] = await started(ledger, 2);
    assert.ok(next!.wall >= stop.wall, 'b led only after the child was gone and the lease released');
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('fences at once when the admin overwrites the holder, and when the Lease is deleted', async () => {
    const info = await sharedCluster();
    for (const act of ['overwrite', 'delete'] as const) {
      const name = uniqueName(act);
      const ledger = path.join(tempDir(), 'ledger');
      const a = start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, ...workerCmd(ledger)]);
      const [child] = await started(ledger, 1);
      const t0 = Date.now();
      if (act === 'overwrite') {
        await updateLease(info, name, (l) => ({ ...l, spec: { ...l.spec, holderIdentity: 'intruder' } }));
      } else {
        assert.equal((await apiRequest(target(info, 'admin'), 'DELETE', leasePath(name))).status, 200);
      }
      assert.equal(await a.exitCode(), 75, act);
      const lost = await a.waitFor('stopped-leading');
      assert.equal(lost['reason'], act === 'overwrite' ? 'holder-changed' : 'deleted');
      assert.ok(!alive(child!.pid));
      // Noticed at the next renewal (P = 500ms), not at the renew deadline.
      assert.ok(Date.parse(lost.time) - t0 < R_MS, `${act} noticed after ${Date.parse(lost.time) - t0}ms`);
      if (act === 'overwrite') assert.equal((await readLease(info, name))?.spec['holderIdentity'], 'intruder', 'nothing of ours released over it');
    }
  });

  it('fences by its timers while the credential plugin hangs', async () => {
    const info = await sharedCluster();
    const { writeFileSync, chmodSync } = await import('node:fs');
    const dir = tempDir();
    const ledger = path.join(dir, 'ledger');
    const flag = path.join(dir, 'hang');
    const plugin = path.join(dir, 'plugin.sh');
    // Hands out the candidate's token valid for one second; once `flag` exists it hangs.
    writeFileSync(
      plugin,
      `#!/bin/sh\n[ -e "${flag}" ] && exec sleep 30\n` +
        `printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}' ` +
        `"${info.tokens.candidate}" "$(date -u -d '+1 second' +%Y-%m-%dT%H:%M:%SZ)"\n`,
    );
    chmodSync(plugin, 0o755);
    const kubeconfig = writeKubeconfig(info, uniqueName('plugin'), {
      user: { entry: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } } },
    });
    const name = uniqueName('plugin');
    const a = start(['--kubeconfig', kubeconfig, '--lock-name', name, ...FAST, ...workerCmd(ledger, '--ignore-term')]);
    const [child] = await started(ledger, 1);
    await new Promise((r) => setTimeout(r, 1500));
    writeFileSync(flag, '');
    assert.equal(await a.exitCode(30_000), 75);
    assert.equal((await a.waitFor('stopped-leading'))['reason'], 'renew-deadline');
    assert.ok(!alive(child!.pid));
    const lastRenew = Date.parse(String((await readLease(info, name))?.spec['renewTime']));
    assert.ok(lastSign(ledger, child!.pid) <= lastRenew + FAST_D_MS, 'the child was gone before the lease could expire');
  });

  it('fences by its timers when its connection is reset and every redial hangs in the TLS handshake', async () => {
    const info = await sharedCluster();
    const { proxy, kubeconfig } = await viaProxy(info);
    const name = uniqueName('stall');
    const ledger = path.join(tempDir(), 'ledger');
    const a = start(['-v', '--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger, '--ignore-term')]);
    const [child] = await started(ledger, 1);
    await a.waitFor('renewed');
    const b = start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    const dialled = proxy.accepted;
    proxy.setMode('stall-handshake');
    assert.equal(await a.exitCode(30_000), 75);
    assert.equal((await a.waitFor('stopped-leading'))['reason'], 'renew-deadline');
    assert.ok(proxy.accepted > dialled, 'a dialled again into the stalled path');
    assert.ok(!alive(child!.pid));
    const [, next] = await started(ledger, 2);
    assert.ok(next!.wall > lastSign(ledger, child!.pid), "b's child started after a's was gone");
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    assert.equal(await b.exitCode(), 143);
  });

  it('a follower whose redials hung in the TLS handshake takes over once the path heals', async () => {
    const info = await sharedCluster();
    const { proxy, kubeconfig } = await viaProxy(info);
    const name = uniqueName('stall-follower');
    const ledger = path.join(tempDir(), 'ledger');
    const b = start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await started(ledger, 1);
    const a = start(['--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger)]);
    await a.waitFor('new-leader');
    const dialled = proxy.accepted;
    proxy.setMode('stall-handshake');
    // Several of the follower's read deadlines: each gives a stuck dial up and dials again.
    await until(() => proxy.accepted >= dialled + 2, 15_000, 'the follower to dial twice into the stalled path');
    proxy.setMode('pass'); // the stalled connections stay stalled; only new dials get through
    b.signal('SIGTERM');
    assert.equal(await b.exitCode(), 143);
    const [first, next] = await started(ledger, 2);
    assert.equal((next!['env'] as { identity: string }).identity, 'a');
    assert.ok(next!.wall > lastSign(ledger, first!.pid));
    a.signal('SIGTERM');
    assert.equal(await a.exitCode(), 143);
  });

  it('after the Lease is deleted under a leader, the next holder starts only once the old child is gone', async () => {
    const info = await sharedCluster();
    const name = uniqueName('deleted');
    const ledger = path.join(tempDir(), 'ledger');
    const a = start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--id',
      'a',
      ...FAST,
      ...workerCmd(ledger, '--ignore-term', '--grandchildren', '2'),
    ]);
    const [old] = await started(ledger, 1);
    const b = start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    await new Promise((r) => setTimeout(r, 700));
    assert.equal((await apiRequest(target(info, 'admin'), 'DELETE', leasePath(name))).status, 200);
    assert.equal(await a.exitCode(), 75);
    const hold = await b.waitFor('new-lease-hold');
    assert.ok(hold, 'b holds the new Lease object before starting its child');
    const [, next] = await started(ledger, 2);
    for (const pid of [old!.pid, ...((old!['grandchildren'] as number[]) ?? [])]) assert.ok(!alive(pid));
    assert.ok(next!.wall > lastSign(ledger, old!.pid), "b's child started after a's was gone");
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('forwards SIGHUP, SIGUSR1 and SIGUSR2 to the child', async () => {
    const info = await sharedCluster();
    const ledger = path.join(tempDir(), 'ledger');
    const a = start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', uniqueName('sig'), ...FAST, '--shutdown-grace', '1s', ...workerCmd(ledger)]);
    await started(ledger, 1);
    for (const s of ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) a.signal(s);
    await until(() => readLedger(ledger).filter((l) => l.ev === 'signal').length === 3, 5_000, 'three forwarded signals');
    a.signal('SIGINT');
    // The worker ignores SIGINT; the shutdown grace then ends it with SIGKILL.
    assert.equal(await a.exitCode(), 137);
    assert.ok(
      readLedger(ledger).some((l) => l.ev === 'signal' && l['signal'] === 'SIGINT'),
      'SIGINT was passed on',
    );
  });
});

describe('as PID 1 of a PID namespace (a container without an init)', () => {
  it('reaps orphaned grandchildren, and on SIGTERM stops the child, releases and exits', { timeout: 60_000 }, async () => {
    const info = await sharedCluster();
    const name = uniqueName('pid1');
    const ledger = path.join(tempDir(), 'ledger');
    const { spawnGuarded } = await import('../support/cluster.ts');
    const { BIN, WORKER } = await import('../support/leader-run.ts');
    // Two orphans: each inner shell backgrounds a short sleep and exits at once.
    const script = `sh -c "sleep 0.3 &"; sh -c "sleep 0.3 &"; exec "${process.execPath}" "${WORKER}" --ledger "${ledger}"`;
    // --kill-child: should unshare die, the kernel kills the whole namespace with it.
    const u = spawnGuarded(
      'unshare',
      [
        '--pid',
        '--fork',
        '--kill-child',
        '--mount-proc',
        process.execPath,
        BIN,
        '--kubeconfig',
        info.kubeconfigs.candidate,
        '--lock-name',
        name,
        ...FAST,
        '--',
        '/bin/sh',
        '-c',
        script,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((r) => u.on('exit', (code) => r(code)));
    cleanup.push(() => u.kill('SIGKILL'));
    await started(ledger, 1);
    await new Promise((r) => setTimeout(r, 1000));
    // The namespace's PID 1, as seen from here: the child of unshare whose inner pid is 1.
    const init = childrenOf(u.pid!).find((p) => /^NSpid:\s+\d+\s+1$/m.test(readFileSync(`/proc/${p}/status`, 'utf8')));
    assert.ok(init, 'unshare forked the namespace init');
    const initProcess = known(init);
    cleanup.push(() => signalKnown(initProcess, 'SIGKILL'));
    const zombies = childrenOf(init).filter((p) => statFields(p)?.[0] === 'Z');
    assert.deepEqual(zombies, [], 'orphans re-parented to PID 1 were reaped');
    process.kill(init, 'SIGTERM'); // what the kubelet sends a container
    const timeout = new Promise<string>((r) => setTimeout(() => r('no exit within 20s'), 20_000).unref());
    assert.equal(await Promise.race([exited, timeout]), 143, "the child's status after our SIGTERM");
    const lines = readLedger(ledger);
    assert.ok(
      lines.some((l) => l.ev === 'sigterm'),
      'the child got SIGTERM',
    );
    const lease = await readLease(info, name);
    assert.equal(lease?.spec['holderIdentity'] ?? '', '', 'the Lease was released');
  });
});
