/** The library API, imported as users import it (the package's own name → dist/). */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { readLease, sharedCluster, updateLease } from '../support/cluster.ts';
import { uniqueName, until } from '../support/leader-run.ts';
import type { LeaderElection as LeaderElectionType } from '../../src/index.ts';

const { LeaderElection } = (await import('leader-run' as string)) as { LeaderElection: typeof LeaderElectionType };
const timing = { leaseDurationMs: 4000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
const elections: LeaderElectionType[] = [];
after(async () => {
  for (const e of elections) await e.stop().catch(() => {});
});

describe('library: import { LeaderElection } from "leader-run"', () => {
  it('elects one, aborts its signal when the Lease is taken from it, and releases on stop()', async () => {
    const info = await sharedCluster();
    const lockName = uniqueName('lib');
    const make = async (identity: string) => {
      const e = await LeaderElection.create({ lockName, identity, kubeconfig: info.kubeconfigs.candidate, ...timing });
      elections.push(e);
      return e;
    };
    const a = await make('lib-a');
    const leadA = new Promise<AbortSignal>((r) => a.once('started-leading', ({ signal }) => r(signal)));
    void a.start();
    const signalA = await leadA; // after the new-Lease hold (D)
    assert.equal(a.leading, true);
    const b = await make('lib-b');
    const seen = new Promise<string>((r) => b.once('new-leader', ({ holder }) => r(holder)));
    void b.start();
    assert.equal(await seen, 'lib-a');

    // Someone else takes the Lease: a's term ends and its signal aborts, at its next renewal.
    const stopped = new Promise<string>((r) => a.once('stopped-leading', ({ reason }) => r(reason)));
    await updateLease(info, lockName, (l) => ({ ...l, spec: { ...l.spec, holderIdentity: 'intruder', leaseDurationSeconds: 1 } }));
    assert.equal(await stopped, 'holder-changed');
    assert.equal(signalA.aborted, true);

    // b waits for the intruder's record to expire, leads, and releases on stop().
    await until(() => b.leading, 20_000, 'b to lead');
    await b.stop();
    assert.equal((await readLease(info, lockName))?.spec.holderIdentity ?? '', '');
  });

  it('refuses an unsafe timing up front, naming the option', async () => {
    await assert.rejects(LeaderElection.create({ lockName: 'x', leaseDurationMs: 4000, renewDeadlineMs: 4000 }), /leaseDurationMs 4s must be greater than renewDeadlineMs 4s/);
  });
});
