/**
 * --slots N (issue 17, part 1), against the real apiserver: a semaphore on plain Leases. At
 * most N children at once across all candidates, never two in one slot; a follower takes
 * whichever slot frees first; status shows every slot.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readLease, sharedCluster } from '../support/cluster.ts';
import { BIN, candidates, FAST, FAST_D_MS, type LedgerLine, readLedger, started, tempDir, uniqueName, workerCmd } from '../support/leader-run.ts';

interface Life {
  pid: number;
  slot: string;
  lease: string;
  token: number;
  from: number;
  to: number;
}

/** Each child's life from its ledger lines, with the slot and token it was given. */
function lives(lines: LedgerLine[]): Life[] {
  const by = new Map<number, Life>();
  for (const l of lines) {
    const env = l['env'] as { slot?: string; lease?: string; token?: string } | undefined;
    const life = by.get(l.pid) ?? { pid: l.pid, slot: '', lease: '', token: -1, from: l.mono, to: l.mono };
    if (env) Object.assign(life, { slot: env.slot ?? '', lease: env.lease ?? '', token: Number(env.token) });
    life.from = Math.min(life.from, l.mono);
    life.to = Math.max(life.to, l.mono);
    by.set(l.pid, life);
  }
  return [...by.values()].sort((a, b) => a.from - b.from);
}

/** The most children alive at one instant. */
function mostAtOnce(ls: Life[]): number {
  const edges = ls.flatMap((l) => [
    [l.from, 1],
    [l.to, -1],
  ]) as Array<[number, number]>;
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let n = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (n += d));
  return most;
}

describe('--slots', () => {
  it('five candidates on two slots: never more than two children, never two in one slot, each with its slot and token', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('slots');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t);
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--slots', '2', ...FAST];
    const runs = [1, 2, 3, 4, 5].map((i) => lr.start([...args, '--id', `slot-${i}`, ...workerCmd(ledger, '--exit-after', '1200')]));
    for (const r of runs) assert.equal(await r.exitCode(), 0);
    const ls = lives(readLedger(ledger));
    assert.equal(ls.length, 5, 'every candidate ran once');
    assert.ok(mostAtOnce(ls) <= 2, `at most two at once: ${JSON.stringify(ls)}`);
    for (const slot of ['0', '1']) {
      const mine = ls.filter((l) => l.slot === slot);
      assert.ok(mine.length >= 1, `slot ${slot} was used`);
      for (const l of mine) assert.equal(l.lease, `default/${name}-${slot}`, 'the slot’s own Lease');
      for (let i = 1; i < mine.length; i++) {
        assert.ok(mine[i - 1]!.to < mine[i]!.from, `one child at a time in slot ${slot}`);
        assert.ok(mine[i - 1]!.token < mine[i]!.token, 'that slot’s fencing tokens grow');
      }
    }
    assert.ok(ls.every((l) => l.slot === '0' || l.slot === '1'));
  });

  it('a follower takes whichever slot frees first, at once, through its watch', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('slots-free');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t);
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--slots', '2', ...FAST];
    const a = lr.start([...args, '--id', 'a', ...workerCmd(ledger)]);
    const b = lr.start([...args, '--id', 'b', ...workerCmd(ledger)]);
    await started(ledger, 2);
    const c = lr.start([...args, '--id', 'c', ...workerCmd(ledger)]);
    await c.waitFor('waiting');
    const bSlot = b.records.find((r) => r.event === 'started-leading')?.['slot'];
    b.signal('SIGTERM');
    await c.waitFor('child-started');
    const at = (run: typeof a, event: string): number => Date.parse(run.records.find((x) => x.event === event)!.time);
    assert.equal(c.records.find((r) => r.event === 'started-leading')?.['slot'], bSlot, 'the slot b freed');
    assert.ok(at(c, 'started-leading') - at(b, 'released') < FAST_D_MS, 'at once, not after an expiry');
    assert.ok(!a.has('stopped-leading'), 'the other slot is untouched');
  });

  it('-n skips only when every slot is held', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('slots-n');
    const lr = candidates(t);
    const args = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--slots', '2', ...FAST];
    const a = lr.start([...args, '--', 'sleep', '30']);
    await a.waitFor('child-started');
    const b = lr.start([...args, '-n', '--', 'sh', '-c', 'echo "$LEADER_RUN_SLOT"; exit 0']);
    assert.equal(await b.exitCode(), 0, 'the free slot');
    const c1 = lr.start([...args, '--', 'sleep', '30']);
    await c1.waitFor('child-started');
    const c = lr.start([...args, '-n', '--', 'true']);
    assert.equal(await c.exitCode(), 75, 'both held: the skip status');
    assert.ok(!c.has('child-started'));
  });

  it('status --slots shows every slot; bad or clashing --slots: 64', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('slots-status');
    const a = candidates(t).start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--slots',
      '3',
      ...FAST,
      '--id',
      'st-a',
      '--',
      'sleep',
      '30',
    ]);
    await a.waitFor('child-started');
    const slot = Number(a.records.find((r) => r.event === 'started-leading')?.['slot']);
    assert.equal((await readLease(info, `${name}-${slot}`))?.spec.holderIdentity, 'st-a');
    const r = spawnSync(process.execPath, [BIN, 'status', '--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--slots', '3', '-o', 'json'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const views = JSON.parse(r.stdout) as Array<{ lease: string; holder: string | null; state: string }>;
    assert.deepEqual(
      views.map((v) => v.lease),
      [0, 1, 2].map((k) => `default/${name}-${k}`),
    );
    assert.equal(views[slot]?.holder, 'st-a');
    assert.equal(views.filter((v) => v.holder === 'st-a').length, 1, 'one slot held, the others released');

    for (const [extra, why] of [
      [['--slots', '0'], /--slots "0" must be a whole number from 1 to 100/],
      [['--slots', '2', '--leader-service', 'svc'], /--slots and --leader-service do not go together/],
      [['--slots', '2', '--once-per', '1h'], /--slots and --once-per do not go together/],
    ] as const) {
      const bad = candidates(t).start(['--lock-name', 'x', ...extra, '--', 'true'], { env: { POD_NAME: 'p' } });
      assert.equal(await bad.exitCode(), 64);
      assert.match(bad.stderrLines.join('\n'), why);
    }
  });
});
