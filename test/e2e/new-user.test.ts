/**
 * What a new user tripped on (issue 14), against the real apiserver: kubeconfig lists, try
 * once, booleans, timings from D, Ctrl-C, signals, logs, and the small things.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sharedCluster } from '../support/cluster.ts';
import { alive, BIN, candidates, FAST, readLedger, started, tempDir, uniqueName, until, workerCmd } from '../support/leader-run.ts';
import { statFields, watchdogOf } from '../support/procs.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A kubeconfig whose cluster, user and context are all called `default`, as k3s writes it. */
function k3sStyle(from: string, to: string, server?: string): string {
  // Only the naming keys change: a value such as the CA file's path may contain a name too.
  let text = fs.readFileSync(from, 'utf8').replace(/^(\s*(?:- )?(?:name|cluster|user|current-context): )"?[^"\s]+"?$/gm, '$1default');
  if (server) text = text.replace(/server: .*/, `server: ${server}`);
  fs.writeFileSync(to, text);
  return to;
}

describe('new-user findings', () => {
  it('KUBECONFIG=a:b with the same names in both: the first definition wins, as kubectl does', async (t) => {
    const info = await sharedCluster();
    const dir = tempDir();
    const a = k3sStyle(info.kubeconfigs.candidate, path.join(dir, 'a.yaml'));
    const b = k3sStyle(info.kubeconfigs.candidate, path.join(dir, 'b.yaml'), 'https://127.0.0.1:1');
    const env = { KUBECONFIG: `${a}:${b}` };
    const lr = candidates(t).start(['--lock-name', uniqueName('kc-list'), ...FAST, '--', 'true'], { env });
    assert.equal(await lr.exitCode(), 0);
    assert.ok(lr.has('child-started'));
    const status = spawnSync(process.execPath, [BIN, 'status', '--lock-name', uniqueName('kc-list-status')], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    assert.equal(status.status, 1, `no such Lease, not 70: ${status.stderr}`);
  });

  it('--wait-timeout 0 (-n) tries once: a held Lease exits with the wait-timeout status, silently under -q', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('try-once');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t);
    const holder = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'holder', ...FAST, ...workerCmd(ledger)]);
    await started(ledger, 1);
    const skip = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '-n', '-q', '--wait-timeout-exit-code', '0', '--', 'true']);
    assert.equal(await skip.exitCode(), 0);
    assert.deepEqual(skip.stderrLines.filter(Boolean), [], 'nothing for cron to mail');
    holder.signal('SIGTERM');
    await holder.exitCode();
    const runs = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--wait-timeout', '0', ...FAST, '--', 'true']);
    assert.equal(await runs.exitCode(), 0, 'a free Lease: one try takes it');
    assert.ok(runs.has('child-started'));
  });

  it('a flag wins over its variable, for booleans too', async (t) => {
    const info = await sharedCluster();
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t).start(
      [
        '--kubeconfig',
        info.kubeconfigs.candidate,
        '--lock-name',
        uniqueName('bools'),
        ...FAST,
        '-q',
        '--no-shell',
        ...workerCmd(ledger, '--exit-after', '100', 'a b'),
      ],
      {
        env: { LEADER_RUN_VERBOSE: '1', LEADER_RUN_SHELL: 'true' },
      },
    );
    assert.equal(await lr.exitCode(), 0);
    assert.ok(!lr.has('campaigning'), '-q won over LEADER_RUN_VERBOSE');
    const [start] = readLedger(ledger).filter((l) => l.ev === 'start');
    assert.ok((start!['args'] as string[]).includes('a b'), '--no-shell won over LEADER_RUN_SHELL: arguments intact');
  });

  it('--lease-duration alone: R, P and G are derived from it, and the log says so', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t).start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', uniqueName('from-d'), '--lease-duration', '5s', '--', 'true']);
    const c = await lr.waitFor('campaigning');
    assert.equal(c['leaseDurationMs'], 5000);
    assert.equal(c['renewDeadlineMs'], 3300);
    assert.equal(c['retryPeriodMs'], 600);
    assert.equal(c['fenceGraceMs'], 600);
    assert.match(String(c['derived']), /--renew-deadline 3300ms, --retry-period 600ms, --fence-grace 600ms derived from --lease-duration 5s/);
    assert.equal(await lr.exitCode(), 0);
  });

  it('a third Ctrl-C kills the child at once, and says so', async (t) => {
    const info = await sharedCluster();
    const ledger = path.join(tempDir(), 'ledger');
    // The worker ignores SIGINT: only the escalation ends it before the 60 s grace.
    const lr = candidates(t).start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      uniqueName('ctrl-c'),
      ...FAST,
      '--shutdown-grace',
      '60s',
      ...workerCmd(ledger),
    ]);
    const [child] = await started(ledger, 1);
    for (let i = 0; i < 3; i++) {
      lr.signal('SIGINT');
      await sleep(200);
    }
    assert.equal(await lr.exitCode(10_000), 137);
    assert.ok(lr.has('child-killed'));
    assert.ok(!alive(child!.pid));
  });

  it('SIGHUP goes to the child’s process group by default; --forward-to session reaches every process', async (t) => {
    const info = await sharedCluster();
    for (const [target, helperSurvives] of [
      ['group', true],
      ['session', false],
    ] as const) {
      const dir = tempDir();
      // A helper outside the child's process group (a session of its own), with no HUP
      // handler; sh traps HUP.
      const script = `setsid sleep 30 & echo $! > ${dir}/helper; trap 'echo hup >> ${dir}/got' HUP; while :; do sleep 0.1; done`;
      const lr = candidates(t).start([
        '--kubeconfig',
        info.kubeconfigs.candidate,
        '--lock-name',
        uniqueName('hup'),
        ...FAST,
        '--forward-to',
        target,
        '--shutdown-grace',
        '1s',
        '--',
        '/bin/sh',
        '-c',
        script,
      ]);
      // The file exists before echo has written to it: wait for the whole line.
      const pidFile = path.join(dir, 'helper');
      await until(() => fs.existsSync(pidFile) && /^\d+\n$/.test(fs.readFileSync(pidFile, 'utf8')), 10_000, 'the helper');
      const helper = Number(fs.readFileSync(pidFile, 'utf8'));
      // $! is known right after the fork: wait until setsid has really moved it out (its
      // session is its own pid), or a busy host hangs it up while still in the group.
      await until(() => statFields(helper)?.[3] === String(helper), 5_000, 'the helper in a session of its own');
      lr.signal('SIGHUP');
      await until(() => fs.existsSync(path.join(dir, 'got')), 5_000, 'the trapped SIGHUP');
      await sleep(200);
      assert.equal(alive(helper), helperSurvives, `--forward-to ${target}`);
      lr.signal('SIGTERM');
      await lr.exitCode();
    }
  });

  it('--stop-signal: the child is asked to stop with the signal it stops on', async (t) => {
    const info = await sharedCluster();
    const dir = tempDir();
    const script = `trap 'echo usr1 > ${dir}/got; exit 7' USR1; trap '' TERM; while :; do sleep 0.1; done`;
    const lr = candidates(t).start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      uniqueName('stopsig'),
      ...FAST,
      '--stop-signal',
      'USR1',
      '--',
      '/bin/sh',
      '-c',
      script,
    ]);
    await lr.waitFor('child-started');
    await sleep(300);
    lr.signal('SIGTERM');
    assert.equal(await lr.exitCode(), 7, "the child's own status after USR1");
    assert.ok(fs.existsSync(path.join(dir, 'got')));
  });

  it('logs an on-call person can use', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('logs');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t);
    const a = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger)]);
    await started(ledger, 1);
    // A follower says who holds the Lease and when it could take over at the earliest.
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, '--', 'true']);
    const w = await b.waitFor('waiting');
    assert.equal(w['holder'], 'a');
    assert.ok(Number(w['earliestTakeoverMs']) > 0 && Number(w['earliestTakeoverMs']) <= 4000);
    // A restarted candidate whose identity is still in the Lease says why it waits.
    a.signal('SIGKILL');
    await a.exitCode();
    const again = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'a', ...FAST, '--', 'sh', '-c', 'exit 3']);
    assert.match(String((await again.waitFor('waiting')).msg), /names our identity a, but this process did not write it/);
    // A child that exits non-zero: warn, with the status as a number; the exit says why.
    assert.equal(await again.exitCode(), 3);
    const exited = again.records.find((r) => r.event === 'child-exited');
    assert.equal(exited?.level, 'warn');
    assert.equal(exited?.['status'], 3);
    assert.equal(again.records.find((r) => r.event === 'exit')?.['cause'], 'child-exit');
    b.signal('SIGTERM');
    await b.exitCode();
  });

  it('the child’s output never comes before child-started: the child waits at a gate until it is logged', async (t) => {
    const info = await sharedCluster();
    const name = uniqueName('gate');
    const lr = candidates(t);
    // A child that writes at once, to the stderr it shares with leader-run's log.
    for (let i = 0; i < 5; i++) {
      const run = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, ...FAST, '--', 'sh', '-c', 'echo first-words >&2']);
      assert.equal(await run.exitCode(), 0);
      const logged = run.stderrLines.findIndex((l) => l.includes('"child-started"'));
      const said = run.stderrLines.indexOf('first-words');
      assert.ok(logged >= 0 && said > logged, `run ${i}: child-started at line ${logged}, the child's first words at ${said}`);
      assert.equal(typeof run.records.find((r) => r.event === 'child-started')?.['pid'], 'number', 'with the pid');
    }
  });

  it('says when the shutdown grace ran out and SIGKILL was sent', async (t) => {
    const info = await sharedCluster();
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t).start([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      uniqueName('grace'),
      ...FAST,
      '--shutdown-grace',
      '500ms',
      ...workerCmd(ledger, '--ignore-term'),
    ]);
    await started(ledger, 1);
    lr.signal('SIGTERM');
    assert.equal(await lr.exitCode(), 137);
    assert.equal(lr.records.find((r) => r.event === 'child-killed')?.level, 'warn');
  });

  it('a closed stdout never crashes it; `help` works; both processes are named', async (t) => {
    const piped = spawnSync('/bin/bash', ['-o', 'pipefail', '-c', `"${process.execPath}" "${BIN}" --help | head -1`], { encoding: 'utf8' });
    assert.equal(piped.status, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr, /EPIPE/);
    assert.match(execFileSync(process.execPath, [BIN, 'help'], { encoding: 'utf8' }), /^Usage: leader-run/);
    const info = await sharedCluster();
    const lr = candidates(t).start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', uniqueName('names'), ...FAST, '--', 'sleep', '30']);
    // The child runs only once the watchdog is up and named (it starts while leader-run campaigns).
    await lr.waitFor('child-started');
    assert.equal(fs.readFileSync(`/proc/${lr.pid}/comm`, 'utf8').trim(), 'leader-run');
    assert.equal(fs.readFileSync(`/proc/${watchdogOf(lr.pid)}/comm`, 'utf8').trim(), 'leader-run-watc', 'comm holds 15 characters');
    lr.signal('SIGTERM');
    await lr.exitCode();
  });
});
