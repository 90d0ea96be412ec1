/** leader-run end to end against the real apiserver: the ordinary paths of issue 3. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { type ClusterInfo, LeaderPeer, readLease, sharedCluster, writeKubeconfig } from '../support/cluster.ts';
import { alive, FAST, FAST_D_MS, intervals, LeaderRun, overlaps, readLedger, started, tempDir, uniqueName, until, workerCmd } from '../support/leader-run.ts';

const running: LeaderRun[] = [];
const peers: LeaderPeer[] = [];
function leaderRun(info: ClusterInfo, name: string, id: string, ledger: string, ...extra: string[]): LeaderRun {
  const lr = new LeaderRun(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', id, ...FAST, ...workerCmd(ledger, ...extra)]);
  running.push(lr);
  return lr;
}
after(async () => {
  for (const lr of running) lr.signal('SIGKILL');
  for (const p of peers) p.kill('SIGKILL');
});

describe('leader-run', () => {
  it('acquires, gives the child its environment, exits with its status and releases', async () => {
    const info = await sharedCluster();
    const name = uniqueName('solo');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = leaderRun(info, name, 'solo', ledger, '--exit-after', '1500', '--exit-code', '3');
    await lr.waitFor('child-started');
    const held = await readLease(info, name);
    assert.equal(held?.spec.holderIdentity, 'solo');
    const [start] = await started(ledger, 1);
    assert.equal(await lr.exitCode(), 3);
    assert.deepEqual(start?.['env'], { identity: 'solo', lease: `default/${name}`, uid: held?.metadata.uid, token: '0' });
    const released = await readLease(info, name);
    assert.equal(released?.spec.holderIdentity ?? '', '');
    assert.equal(released?.spec.leaseDurationSeconds, 1);
    assert.equal(released?.spec.leaseTransitions, 0, 'release keeps the transitions');
    assert.ok(lr.has('released'));
  });

  it('runs one child at a time among three; SIGTERM stops the child before the Lease is released', async () => {
    const info = await sharedCluster();
    const name = uniqueName('three');
    const ledger = path.join(tempDir(), 'ledger');
    const cands = ['a', 'b', 'c'].map((id) => leaderRun(info, name, id, ledger));
    await until(() => cands.some((c) => c.has('child-started')), 30_000, 'a leader');
    const leader = cands.find((c) => c.has('child-started'))!;
    await new Promise((r) => setTimeout(r, 1500));
    leader.signal('SIGTERM');
    assert.equal(await leader.exitCode(), 143, "the child's status: killed by our SIGTERM");
    const lines = readLedger(ledger);
    const child = lines.find((l) => l.ev === 'start')!;
    assert.ok(
      lines.some((l) => l.ev === 'sigterm' && l.pid === child.pid),
      'the child received SIGTERM',
    );
    const stop = lines.find((l) => l.ev === 'stop' && l.pid === child.pid)!;
    const released = await leader.waitFor('released');
    assert.ok(stop.wall <= Date.parse(released.time), 'the child was gone before the Lease was released');
    const others = cands.filter((c) => c !== leader);
    await until(() => others.some((c) => c.has('child-started')), 30_000, 'a new leader');
    await started(ledger, 2);
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    const token = (l: { [k: string]: unknown }) => Number((l['env'] as { token: string }).token);
    const starts = readLedger(ledger).filter((l) => l.ev === 'start');
    assert.ok(token(starts[1]!) > token(starts[0]!), 'the next term has a larger fencing token');
    for (const c of others) c.signal('SIGTERM');
    for (const c of others) await c.exitCode();
  });

  it('after SIGKILL of the leader, nobody leads before the lease duration has passed', async () => {
    const info = await sharedCluster();
    const name = uniqueName('crash');
    const ledger = path.join(tempDir(), 'ledger');
    const a = leaderRun(info, name, 'a', ledger);
    await a.waitFor('child-started');
    const b = leaderRun(info, name, 'b', ledger);
    await b.waitFor('new-leader');
    await new Promise((r) => setTimeout(r, 1200));
    a.signal('SIGKILL');
    await a.exited;
    const lastRenew = Date.parse((await readLease(info, name))?.spec.renewTime ?? '');
    await b.waitFor('child-started', 30_000);
    await started(ledger, 2);
    const lines = readLedger(ledger);
    const [first, second] = intervals(lines);
    assert.ok(first && second);
    assert.ok(!alive(first.pid), "the dead leader's child is gone");
    const bStart = lines.find((l) => l.ev === 'start' && l.pid === second.pid)!;
    assert.ok(bStart.wall >= lastRenew + FAST_D_MS, `b's child started ${bStart.wall - lastRenew}ms after a's last renewal`);
    assert.deepEqual(overlaps(lines), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('passes arguments with spaces and quotes unchanged when --shell is off', async () => {
    const info = await sharedCluster();
    const name = uniqueName('args');
    const ledger = path.join(tempDir(), 'ledger');
    const odd = ['a b', "it's", '"quoted"', '$HOME', '*', '; rm -rf /', ''];
    const lr = leaderRun(info, name, 'args', ledger, '--exit-after', '10', '--name', 'x', ...odd);
    assert.equal(await lr.exitCode(), 0);
    const start = readLedger(ledger).find((l) => l.ev === 'start');
    assert.deepEqual(((start?.['args'] ?? []) as string[]).slice(-odd.length), odd);
  });

  it('runs the command through /bin/sh -c with --shell', async () => {
    const info = await sharedCluster();
    const lr = new LeaderRun(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', uniqueName('shell'), ...FAST, '--shell', '--', 'exit $((2+3))']);
    running.push(lr);
    assert.equal(await lr.exitCode(), 5);
  });

  it("keeps Node's compile cache under TMPDIR, not in the child's environment; NODE_DISABLE_COMPILE_CACHE turns it off", async () => {
    const info = await sharedCluster();
    const name = uniqueName('cache'); // released by each run: only the first waits out D
    const run = async (env: NodeJS.ProcessEnv): Promise<Record<string, string>> => {
      const out = path.join(tempDir(), 'env');
      const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--', 'sh', '-c', 'env > "$0"', out];
      const lr = new LeaderRun(args, { env });
      running.push(lr);
      assert.equal(await lr.exitCode(), 0, lr.stderrLines.join('\n'));
      return Object.fromEntries(
        fs
          .readFileSync(out, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    };
    const cached = (dir: string): string[] =>
      fs.existsSync(path.join(dir, 'node-compile-cache')) ? fs.readdirSync(path.join(dir, 'node-compile-cache'), { recursive: true }).map(String) : [];
    const on = tempDir();
    const childEnv = await run({ TMPDIR: on });
    assert.ok(cached(on).length > 0, `nothing cached under ${on}`);
    assert.equal(childEnv['TMPDIR'], on);
    assert.ok(!Object.keys(childEnv).some((k) => k.startsWith('NODE_COMPILE_CACHE')), "the child's environment names no cache");
    const off = tempDir();
    await run({ TMPDIR: off, NODE_DISABLE_COMPILE_CACHE: '1' });
    assert.deepEqual(cached(off), []);
    // Node 24.9 spins for good making a cache directory under /proc: leader-run does not try.
    await run({ TMPDIR: '/proc/no-such-dir' });
  });

  // The build loads these providers only when a request needs one (scripts/build.ts); the
  // API server accepts the token only if the real provider put it in the header.
  for (const provider of ['gcp', 'azure']) {
    it(`authenticates with a kubeconfig user of the ${provider} auth-provider`, async () => {
      const info = await sharedCluster();
      const kubeconfig = writeKubeconfig(info, uniqueName(provider), {
        user: { entry: { 'auth-provider': { name: provider, config: { 'access-token': info.tokens.candidate } } } },
      });
      const name = uniqueName(provider);
      const lr = new LeaderRun(['--kubeconfig', kubeconfig, '--lock-name', name, '--id', provider, ...FAST, '--shell', '--', 'exit 4']);
      running.push(lr);
      assert.equal(await lr.exitCode(), 4);
      assert.ok(lr.has('child-started'));
      assert.equal((await readLease(info, name))?.spec.leaseTransitions, 0, 'it held the Lease it created');
    });
  }
});

describe('interoperability with client-go', () => {
  it('hands over both ways after a release, never both leading', async () => {
    const info = await sharedCluster();
    const name = uniqueName('interop');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = leaderRun(info, name, 'lr-1', ledger);
    await lr.waitFor('child-started');
    await started(ledger, 1);
    const peer = await LeaderPeer.start(info, { id: 'go-1', lockName: name });
    peers.push(peer);
    await peer.waitFor((e) => e.event === 'new-leader' && e.leader === 'lr-1');
    lr.signal('SIGTERM');
    await lr.exitCode();
    const goLead = await peer.waitFor((e) => e.event === 'started-leading');
    const lrChild = intervals(readLedger(ledger))[0]!;
    const lrStop = readLedger(ledger)
      .filter((l) => l.pid === lrChild.pid)
      .at(-1)!;
    assert.ok(goLead.ms >= lrStop.wall, 'client-go led only after our child was gone');

    // And back: client-go releases on SIGTERM; leader-run takes the released record.
    const lr2 = leaderRun(info, name, 'lr-2', ledger);
    await lr2.waitFor('new-leader');
    peer.kill('SIGTERM');
    const goStop = await peer.waitFor((e) => e.event === 'stopped-leading');
    await lr2.waitFor('child-started');
    await started(ledger, 2);
    const second = intervals(readLedger(ledger))[1]!;
    const secondStart = readLedger(ledger).find((l) => l.ev === 'start' && l.pid === second.pid)!;
    assert.ok(secondStart.wall >= goStop.ms, 'our child started after client-go stopped leading');
    const lease = await readLease(info, name);
    assert.equal(lease?.spec.holderIdentity, 'lr-2');
    assert.equal(lease?.spec.leaseTransitions, 2, 'each handover advanced the transitions');
    lr2.signal('SIGTERM');
    await lr2.exitCode();
  });

  it('takes over from each other after a crash, only after the lease expired', async () => {
    const info = await sharedCluster();
    const name = uniqueName('interop-crash');
    const ledger = path.join(tempDir(), 'ledger');
    const peer = await LeaderPeer.start(info, { id: 'go-1', lockName: name });
    peers.push(peer);
    await peer.waitFor((e) => e.event === 'started-leading');
    const lr = leaderRun(info, name, 'lr-1', ledger);
    await lr.waitFor('new-leader');
    peer.kill('SIGKILL');
    await peer.exited;
    const goLast = Date.parse((await readLease(info, name))?.spec.renewTime ?? '');
    await lr.waitFor('child-started', 30_000);
    const [start] = (await started(ledger, 1)) as [ReturnType<typeof readLedger>[number]];
    assert.ok(start.wall >= goLast + FAST_D_MS, `took over ${start.wall - goLast}ms after client-go's last renewal`);

    const peer2 = await LeaderPeer.start(info, { id: 'go-2', lockName: name });
    peers.push(peer2);
    await peer2.waitFor((e) => e.event === 'new-leader' && e.leader === 'lr-1');
    await new Promise((r) => setTimeout(r, 1000));
    lr.signal('SIGKILL');
    await lr.exited;
    const goLead = await peer2.waitFor((e) => e.event === 'started-leading', 30_000);
    await until(() => !alive(start.pid), 5_000, "the killed leader's child to be gone");
    const lastBeat = readLedger(ledger)
      .filter((l) => l.pid === start.pid)
      .at(-1)!;
    assert.ok(goLead.ms > lastBeat.wall, 'client-go led only after our child was gone');
    peer2.kill('SIGTERM');
    await peer2.exited;
  });
});
