/**
 * `leader-run check` (issue 16, part 4), against the real apiserver: one line per check, exit
 * 0 or the status a run would give, and nothing written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { EXAMPLE_RULES, freePort, type PolicyRule, readLease, serviceAccountKubeconfig, sharedCluster, writeKubeconfig } from '../support/cluster.ts';
import { BIN, uniqueName } from '../support/leader-run.ts';

const LEASES: PolicyRule = { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update'] };
const EVENTS: PolicyRule = { apiGroups: [''], resources: ['events'], verbs: ['create'] };

function check(args: string[], env: Record<string, string> = {}): { status: number | null; lines: string[]; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'check', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, lines: r.stdout.trimEnd().split('\n'), stderr: r.stderr };
}

describe('leader-run check', () => {
  it('everything a run needs: one ok line per check, exit 0, and no Lease written', async () => {
    const info = await sharedCluster();
    const kubeconfig = await serviceAccountKubeconfig(info, 'lr-check-all', [LEASES, EVENTS]);
    const name = uniqueName('check');
    const r = check(['--kubeconfig', kubeconfig, '--lock-name', name, '--lease-duration', '6s']);
    assert.equal(r.status, 0, r.lines.join('\n'));
    assert.ok(
      r.lines.every((l) => l.startsWith('ok ')),
      r.lines.join('\n'),
    );
    assert.match(r.lines[0]!, /D=6s R=4s .*derived from --lease-duration 6s/);
    for (const verb of ['get', 'create', 'update', 'watch'])
      assert.ok(
        r.lines.some((l) => l.startsWith(`ok    may ${verb} leases`)),
        verb,
      );
    assert.ok(r.lines.some((l) => /may create events/.test(l)));
    assert.equal(r.stderr, '');
    assert.equal(await readLease(info, name), undefined, 'a check writes no Lease');
  });

  it('a missing permission: 77 and which verb; optional ones only warn', async () => {
    const info = await sharedCluster();
    const getOnly = await serviceAccountKubeconfig(info, 'lr-check-get-only', [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get'] }]);
    const r = check(['--kubeconfig', getOnly, '--lock-name', uniqueName('check')]);
    assert.equal(r.status, 77, r.lines.join('\n'));
    assert.ok(r.lines.some((l) => l.startsWith('ok    may get leases')));
    assert.ok(r.lines.some((l) => l.startsWith('fail  may not create leases')));
    assert.ok(r.lines.some((l) => l.startsWith('fail  may not update leases')));
    assert.ok(r.lines.some((l) => l.startsWith('warn  may not watch leases') && /polls/.test(l)));
    assert.ok(r.lines.some((l) => l.startsWith('warn  may not create events')));
    // Leases alone suffice for a run: 0, with the events warning.
    const leasesOnly = await serviceAccountKubeconfig(info, 'lr-check-leases', [LEASES]);
    const ok = check(['--kubeconfig', leasesOnly, '--lock-name', uniqueName('check')]);
    assert.equal(ok.status, 0, ok.lines.join('\n'));
    assert.ok(!check(['--kubeconfig', leasesOnly, '--lock-name', uniqueName('check'), '--no-events']).lines.some((l) => /events/.test(l)));
  });

  it("examples/rbac.yaml as written: everything for its own Lease, nothing for another's", async () => {
    const info = await sharedCluster();
    const asWritten = await serviceAccountKubeconfig(info, 'lr-check-example', EXAMPLE_RULES);
    const own = check(['--kubeconfig', asWritten, '--lock-name', 'nightly-report']);
    assert.equal(own.status, 0, own.lines.join('\n'));
    assert.ok(
      own.lines.every((l) => l.startsWith('ok ')),
      own.lines.join('\n'),
    );
    const other = check(['--kubeconfig', asWritten, '--lock-name', uniqueName('check')]);
    assert.equal(other.status, 77, other.lines.join('\n'));
    assert.ok(
      other.lines.some((l) => l.startsWith('ok    may create leases')),
      'create is not narrowed by name',
    );
    for (const verb of ['get', 'update'])
      assert.ok(
        other.lines.some((l) => l.startsWith(`fail  may not ${verb} leases`)),
        verb,
      );
  });

  it('--slots: each slot’s Lease by name; a Role naming only some of them fails on the others', async () => {
    const info = await sharedCluster();
    const name = uniqueName('check-slots');
    const some = await serviceAccountKubeconfig(info, 'lr-check-slots', [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [`${name}-0`, `${name}-1`], verbs: ['get', 'watch', 'update'] },
    ]);
    const two = check(['--kubeconfig', some, '--lock-name', name, '--slots', '2', '--no-events']);
    assert.equal(two.status, 0, two.lines.join('\n'));
    for (const k of [0, 1])
      assert.ok(
        two.lines.some((l) => l.startsWith(`ok    may update leases.coordination.k8s.io/${name}-${k} `)),
        String(k),
      );
    const three = check(['--kubeconfig', some, '--lock-name', name, '--slots', '3', '--no-events']);
    assert.equal(three.status, 77, three.lines.join('\n'));
    assert.ok(three.lines.some((l) => l.startsWith(`fail  may not update leases.coordination.k8s.io/${name}-2 `)));
  });

  it('--coordinated: its LeaseCandidate, and no create on leases (the controller creates the Lease)', async () => {
    const info = await sharedCluster();
    const leasesOnly = await serviceAccountKubeconfig(info, 'lr-check-leases', [LEASES]);
    const r = check(['--kubeconfig', leasesOnly, '--lock-name', uniqueName('check'), '--coordinated', '--id', 'cand-1', '--no-events']);
    assert.equal(r.status, 77, r.lines.join('\n'));
    for (const what of [
      'get leasecandidates.coordination.k8s.io/cand-1',
      'create leasecandidates.coordination.k8s.io ',
      'update leasecandidates',
      'delete leasecandidates',
    ])
      assert.ok(
        r.lines.some((l) => l.startsWith(`fail  may not ${what}`)),
        what,
      );
    assert.ok(!r.lines.some((l) => /create leases/.test(l)));
    const asWritten = await serviceAccountKubeconfig(info, 'lr-check-example', EXAMPLE_RULES);
    const ok = check(['--kubeconfig', asWritten, '--lock-name', 'nightly-report', '--coordinated', '--id', 'cand-1']);
    assert.equal(ok.status, 0, ok.lines.join('\n'));
  });

  it('--leader-service: get and update on the Pod and the Service', async () => {
    const info = await sharedCluster();
    const leasesOnly = await serviceAccountKubeconfig(info, 'lr-check-leases', [LEASES]);
    const r = check(['--kubeconfig', leasesOnly, '--lock-name', uniqueName('check'), '--leader-service', 'web-leader', '--no-events'], { POD_NAME: 'web-0' });
    assert.equal(r.status, 77, r.lines.join('\n'));
    for (const what of ['get pods/web-0', 'update pods/web-0', 'get services/web-leader', 'update services/web-leader'])
      assert.ok(
        r.lines.some((l) => l.startsWith(`fail  may not ${what} `)),
        what,
      );
  });

  it('the status a run would give: 64 bad flags, 78 bad kubeconfig, 77 refused credentials, 69 unreachable', async () => {
    const info = await sharedCluster();
    const bad = check(['--lock-name', 'x', '--lease-duration', '3s', '--renew-deadline', '3s']);
    assert.equal(bad.status, 64);
    assert.deepEqual(bad.lines.length, 1);
    assert.match(bad.lines[0]!, /^fail {2}flags: --lease-duration 3s/);
    const noFile = check(['--lock-name', 'x', '--kubeconfig', '/nonexistent/kubeconfig']);
    assert.equal(noFile.status, 78);
    assert.match(noFile.lines.at(-1)!, /^fail {2}kubeconfig: --kubeconfig: \/nonexistent\/kubeconfig does not exist/);
    const badToken = writeKubeconfig(info, uniqueName('check-bad-token'), { user: { token: 'not-a-valid-token' } });
    const refused = check(['--lock-name', 'x', '--kubeconfig', badToken]);
    assert.equal(refused.status, 77, refused.lines.join('\n'));
    assert.match(refused.lines.at(-1)!, /did not accept the credentials/);
    const down = writeKubeconfig(info, uniqueName('check-down'), { user: 'admin', server: `https://127.0.0.1:${await freePort()}` });
    const unreachable = check(['--lock-name', 'x', '--kubeconfig', down]);
    assert.equal(unreachable.status, 69, unreachable.lines.join('\n'));
    assert.match(unreachable.lines.at(-1)!, /^fail {2}API server unreachable/);
    assert.ok(
      [bad, noFile, refused, unreachable].every((x) => !/\n\s+at /.test(x.stderr + x.lines.join('\n'))),
      'no stack trace',
    );
  });

  it('--help is its own', () => {
    const r = spawnSync(process.execPath, [BIN, 'help', 'check'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^Usage: leader-run check/);
  });
});
