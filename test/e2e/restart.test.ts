/** An apiserver restart must not make candidates give up: while its authorizer warms up it
 *  denies everything, and a denial then is not the user's RBAC. (Found by the chaos run.) */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type Cluster, startCluster } from '../support/cluster.ts';
import { FAST, LeaderRun, tempDir, uniqueName } from '../support/leader-run.ts';

let cluster: Cluster | undefined;
after(() => cluster?.stop());

describe('apiserver restart', () => {
  it('candidates started while it warms up wait for it instead of exiting 77', { timeout: 180_000 }, async () => {
    cluster = await startCluster({ dir: tempDir() });
    await cluster.stopApiserver({ signal: 'SIGKILL' });
    const up = cluster.startApiserver();
    const runs: LeaderRun[] = [];
    for (let i = 0; i < 12; i++) {
      runs.push(
        new LeaderRun([
          '--kubeconfig',
          cluster.info.kubeconfigs.candidate,
          '--lock-name',
          uniqueName('restart'),
          ...FAST,
          '--startup-timeout',
          '30s',
          '--',
          'true',
        ]),
      );
      await new Promise((r) => setTimeout(r, 150));
    }
    await up;
    const statuses = await Promise.all(runs.map((r) => r.exitCode(90_000)));
    assert.deepEqual(
      statuses,
      runs.map(() => 0),
      runs.map((r) => r.stderrLines.filter((l) => l.includes('"error"')).join('\n')).join('\n'),
    );
  });
});
