/** The library API, imported as users import it (the package's own name → dist/). */
import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { LeaderElection as LeaderElectionType } from '../../src/index.ts';
import { type ClusterInfo, readLease, sharedCluster, spawnGuarded, updateLease } from '../support/cluster.ts';
import { BIN, candidates, FAST, overlaps, readLedger, started, tempDir, uniqueName, until, workerCmd } from '../support/leader-run.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
    const leadA = new Promise<{ aborted: boolean }>((r) => a.once('started-leading', ({ signal }) => r(signal)));
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
    await assert.rejects(
      LeaderElection.create({ lockName: 'x', leaseDurationMs: 4000, renewDeadlineMs: 4000 }),
      /leaseDurationMs 4s must be greater than renewDeadlineMs 4s/,
    );
  });
});

/** A library leader in a process of its own (test/fixtures/library-worker.ts). */
class LibraryProcess {
  readonly proc: ChildProcess;
  readonly events: Array<Record<string, unknown>> = [];
  readonly exited: Promise<number | null>;
  constructor(args: string[]) {
    this.proc = spawnGuarded(process.execPath, [LIBRARY_WORKER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      try {
        this.events.push(JSON.parse(l) as Record<string, unknown>);
      } catch {}
    });
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }
  has(event: string): Record<string, unknown> | undefined {
    return this.events.find((e) => e['event'] === event);
  }
}

const LIBRARY_WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'library-worker.ts');

describe('library: drain before release (the safety audit’s F6)', () => {
  const lib = (t: TestContext, info: ClusterInfo, name: string, ledger: string, who: string, stopDelayMs = 0): LibraryProcess => {
    const p = new LibraryProcess([
      '--ledger',
      ledger,
      '--name',
      who,
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      name,
      '--stop-delay',
      String(stopDelayMs),
    ]);
    t.after(() => {
      p.proc.kill('SIGCONT');
      p.proc.kill('SIGKILL');
    });
    return p;
  };

  it('SIGTERM → stop(): the Lease is released only once the work (2 s to wind down) has settled', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('lib-drain');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lib(t, info, name, ledger, 'lib-a', 2000);
    await started(ledger, 1);
    const b = candidates(t).start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    a.proc.kill('SIGTERM');
    assert.equal(await a.exited, 0);
    assert.equal((a.has('stopped-leading') as { released?: boolean })?.released, true);
    await started(ledger, 2);
    await sleep(200);
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('leader-run step-down --to: the library leader’s work drains, then the Lease goes to that candidate', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('lib-step-down');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lib(t, info, name, ledger, 'lib-a', 1000);
    await started(ledger, 1);
    const lr = candidates(t);
    const base = ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST];
    const b = lr.start([...base, '--id', 'b', ...workerCmd(ledger)]);
    const c = lr.start([...base, '--id', 'c', ...workerCmd(ledger)]);
    await Promise.all([b.waitFor('new-leader'), c.waitFor('new-leader')]);
    const r = spawnSync(process.execPath, [BIN, 'step-down', '--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--to', 'c'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await a.exited, 0);
    const stopped = a.has('stopped-leading') as { reason?: string; released?: boolean } | undefined;
    assert.deepEqual([stopped?.reason, stopped?.released], ['step-down', true]);
    assert.ok(a.has('aborted'), 'the work was told');
    await c.waitFor('child-started');
    await sleep(200);
    assert.deepEqual(overlaps(readLedger(ledger)), [], 'the work had drained first');
    assert.ok(!b.has('started-leading'));
  });

  it('two library processes: the second leads only after the first one’s work is done', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('lib-two');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lib(t, info, name, ledger, 'lib-a', 1000);
    await started(ledger, 1);
    const b = lib(t, info, name, ledger, 'lib-b', 0);
    await until(() => b.proc.pid !== undefined, 1000, 'b to start');
    await sleep(1500);
    a.proc.kill('SIGTERM');
    await a.exited;
    await started(ledger, 2);
    await sleep(200);
    assert.deepEqual(overlaps(readLedger(ledger)), []);
    b.proc.kill('SIGTERM');
    await b.exited;
  });

  it('a lost Lease: the work is told at once and stops beating; nothing is released over the new holder', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('lib-lost');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lib(t, info, name, ledger, 'lib-a', 300);
    await started(ledger, 1);
    await updateLease(info, name, (l) => ({ ...l, spec: { ...l.spec, holderIdentity: 'intruder' } }));
    assert.equal(await a.exited, 0);
    assert.equal((a.has('stopped-leading') as { reason?: string })?.reason, 'holder-changed');
    assert.equal((await readLease(info, name))?.spec.holderIdentity, 'intruder');
  });

  it('a frozen library leader does not work on after waking once the lease has moved on', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('lib-frozen');
    const ledger = path.join(tempDir(), 'ledger');
    const a = lib(t, info, name, ledger, 'lib-a', 0);
    await started(ledger, 1);
    const b = candidates(t).start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await b.waitFor('new-leader');
    a.proc.kill('SIGSTOP');
    await started(ledger, 2, 30_000);
    await sleep(300);
    a.proc.kill('SIGCONT');
    await a.exited;
    await sleep(200);
    assert.deepEqual(overlaps(readLedger(ledger)), [], 'it checked validForMs() before each unit of work');
    b.signal('SIGTERM');
    await b.exitCode();
  });
});

describe('library: its failures and its words', () => {
  it('start() rejects on a permanent error, with the CLI’s status and advice', async () => {
    const info = await sharedCluster();
    const denied = await LeaderElection.create({ lockName: uniqueName('lib-403'), kubeconfig: info.kubeconfigs.nobody, ...timing });
    await assert.rejects(
      denied.start(),
      (e: Error & { kind?: string; status?: number }) => e.name === 'LeaderElectionError' && e.status === 77 && /examples\/rbac\.yaml/.test(e.message),
    );
    const nowhere = await LeaderElection.create({
      lockName: uniqueName('lib-ns'),
      lockNamespace: 'no-such-namespace',
      kubeconfig: info.kubeconfigs.admin,
      ...timing,
    });
    await assert.rejects(
      nowhere.start(),
      (e: Error & { status?: number }) => e.status === 78 && /namespace no-such-namespace \(option lockNamespace\) does not exist/.test(e.message),
    );
  });

  it('refuses what the CLI refuses, naming its own options', async () => {
    await assert.rejects(LeaderElection.create({ lockName: 'Not_A_Name' }), /lockName "Not_A_Name" is not a valid Lease name/);
    await assert.rejects(
      LeaderElection.create({ lockName: 'x', kubeconfig: '/no/such/file' }),
      (e: Error) => e.name === 'ConfigError' && /^option kubeconfig: \/no\/such\/file does not exist/.test(e.message),
    );
    await assert.rejects(
      LeaderElection.create({ lockName: 'x', leaseDurationMs: 4000, renewDeadlineMs: 3900 }),
      (e: Error) => !/fenceGrace|--/.test(e.message),
    );
  });

  it('is not leading during the new-Lease hold', async () => {
    const info = await sharedCluster();
    const e = await LeaderElection.create({ lockName: uniqueName('lib-hold'), kubeconfig: info.kubeconfigs.candidate, ...timing });
    elections.push(e);
    let begun = false;
    e.on('started-leading', () => {
      begun = true;
    });
    void e.start();
    await sleep(1500);
    assert.equal(e.leading, false, 'holding: the work may not run yet');
    await until(() => begun, 10_000, 'the term to begin');
    assert.equal(e.leading, true);
  });
});
