/**
 * leader-run in a terminal (issue 14, item 5), against the real apiserver: the child joins
 * leader-run's job, as a shell's command would — it can prompt on /dev/tty, Ctrl-C reaches it
 * once, Ctrl-Z stops it with leader-run while the watchdog keeps the lease deadline on it.
 * Each leader-run runs as the foreground job of a terminal of its own (ptyjob.c).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sharedCluster } from '../support/cluster.ts';
import { candidates, FAST, type LeaderRun, overlaps, readLedger, started, tempDir, uniqueName, until, workerCmd } from '../support/leader-run.ts';
import { childrenOf, known, running, signalKnown, statFields, watchdogOf } from '../support/procs.ts';

/** The fields of /proc/<pid>/stat this file looks at. */
function job(pid: number): { state: string; pgrp: number; session: number; tpgid: number } {
  const f = statFields(pid);
  assert.ok(f, `process ${pid} is gone`);
  return { state: f[0]!, pgrp: Number(f[2]), session: Number(f[3]), tpgid: Number(f[5]) };
}

/** Stopped (T), or waiting in vfork (D) for a child of its own that is stopped. */
function stoppedWithItsJob(pid: number): boolean {
  const state = job(pid).state;
  return state === 'T' || (state === 'D' && childrenOf(pid).some((c) => statFields(c)?.[0] === 'T'));
}

const onScreen = (lr: LeaderRun, text: string, what = JSON.stringify(text)): Promise<void> =>
  until(() => lr.screen.includes(text), 30_000, `${what} on the terminal; it shows ${JSON.stringify(lr.screen.slice(-200))}`);
const said = (lr: LeaderRun, line: string): Promise<void> => until(() => lr.stderrLines.includes(line), 30_000, `ptyjob to say ${JSON.stringify(line)}`);

/** A child that says each SIGINT it gets (once "ready"), then exits 3 after about `seconds`. */
const countsInterrupts = (seconds: number): string[] => [
  '--',
  'sh',
  '-c',
  `trap 'n=$((n+1)); echo "INT $n"' INT; echo ready; i=0; while [ $i -lt ${seconds * 10} ]; do sleep 0.1; i=$((i+1)); done; echo done; exit 3`,
];

describe('in a terminal', () => {
  it('the child is in leader-run’s job and can prompt on /dev/tty; --no-terminal keeps it apart', async (t) => {
    const info = await sharedCluster();
    const kc = ['--kubeconfig', info.kubeconfigs.candidate];
    const prompt = ['--', 'sh', '-c', 'printf "password: " > /dev/tty && read pw < /dev/tty && echo "got $pw"'];
    const lr = candidates(t).start([...kc, '--lock-name', uniqueName('tty'), ...FAST, ...prompt], { terminal: true });
    const child = Number((await lr.waitFor('child-started')).pid);
    const [main, kid] = [job(lr.pid), job(child)];
    assert.equal(kid.pgrp, main.pgrp, "the child shares leader-run's process group");
    assert.equal(kid.session, main.session, 'and session, whose terminal it has');
    assert.equal(kid.tpgid, kid.pgrp, "and that group is the terminal's foreground");
    await onScreen(lr, 'password: ');
    lr.type('s3cret\n');
    assert.equal(await lr.exitCode(), 0);
    assert.match(lr.screen, /got s3cret/);

    // The child says its own session and pid first: it may be gone before /proc can be read.
    const sayWho = ['--', 'sh', '-c', `echo "pid $$ sid $(cut -d' ' -f6 /proc/$$/stat)"; ${prompt[3]}`];
    const apart = candidates(t).start([...kc, '--lock-name', uniqueName('tty-off'), '--no-terminal', ...FAST, ...sayWho], { terminal: true });
    assert.notEqual(await apart.exitCode(), 0, 'it has no terminal to prompt on');
    const who = /pid (\d+) sid (\d+)/.exec(apart.screen);
    assert.ok(who, apart.screen);
    assert.equal(who[2], who[1], 'with --no-terminal the child leads a session of its own');
  });

  it('Ctrl-C reaches the child once, from the terminal; a SIGINT to leader-run alone is passed on', async (t) => {
    const info = await sharedCluster();
    const kc = ['--kubeconfig', info.kubeconfigs.candidate];
    const lr = candidates(t);
    const keyed = lr.start([...kc, '--lock-name', uniqueName('tty-int'), ...FAST, '--shutdown-grace', '20s', ...countsInterrupts(3)], { terminal: true });
    await onScreen(keyed, 'ready');
    keyed.type('\x03');
    await keyed.waitFor('signal');
    assert.equal(await keyed.exitCode(), 3, 'it stopped by itself: its status');
    assert.match(keyed.screen, /INT 1/);
    assert.doesNotMatch(keyed.screen, /INT 2/, 'the terminal gave it Ctrl-C; leader-run did not send it again');

    const killed = lr.start([...kc, '--lock-name', uniqueName('tty-kill-int'), ...FAST, '--shutdown-grace', '20s', ...countsInterrupts(3)], { terminal: true });
    await onScreen(killed, 'ready');
    killed.signal('SIGINT'); // `kill -INT` from elsewhere: only leader-run got it
    await killed.waitFor('signal');
    assert.equal(await killed.exitCode(), 3);
    assert.match(killed.screen, /INT 1/, 'passed on to the child');
    assert.doesNotMatch(killed.screen, /INT 2/);
  });

  it('a third Ctrl-C kills the child at once', async (t) => {
    const info = await sharedCluster();
    const ignores = ['--', 'sh', '-c', `trap '' INT; echo ready; sleep 60`];
    const lr = candidates(t).start(
      ['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', uniqueName('tty-3int'), ...FAST, '--shutdown-grace', '60s', ...ignores],
      { terminal: true },
    );
    await onScreen(lr, 'ready');
    for (let i = 0; i < 3; i++) {
      lr.type('\x03');
      await until(() => lr.records.filter((r) => r.event === 'signal').length > 0, 10_000, 'the stop to begin');
      await new Promise((r) => setTimeout(r, 200));
    }
    const killedAt = await lr.waitFor('child-killed', 10_000);
    assert.equal(killedAt.level, 'warn');
    assert.equal(await lr.exitCode(), 137, 'the child was killed');
  });

  it('Ctrl-Z stops leader-run and the child together, not the watchdog; fg goes on', async (t) => {
    const info = await sharedCluster();
    const ticks = ['--', 'sh', '-c', 'i=0; while [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; echo done'];
    const lr = candidates(t).start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', uniqueName('tty-tstp'), ...FAST, ...ticks], {
      terminal: true,
    });
    const child = Number((await lr.waitFor('child-started')).pid);
    lr.type('\x1a');
    await said(lr, 'ptyjob: stopped');
    const watchdog = watchdogOf(lr.pid);
    assert.ok(watchdog);
    assert.equal(job(lr.pid).state, 'T', 'leader-run is stopped');
    // The child got the same SIGTSTP. A shell caught in vfork waits (D) for its vfork child,
    // which stopped too before it could exec: stopped all the same. Checked within R, before
    // the watchdog's deadline would fence the stopped job.
    await until(() => stoppedWithItsJob(child), 1_000, 'the child to stop with it');
    assert.notEqual(job(watchdog).state, 'T', 'the watchdog keeps watching the deadline');
    lr.foreground();
    await said(lr, 'ptyjob: continued');
    assert.equal(await lr.exitCode(), 0, 'a short stop costs nothing: the Lease was renewed on waking');
    assert.match(lr.screen, /done/);
  });

  it('an orphan of the tree that cleared its environment is still found: no release while it runs', async (t) => {
    const info = await sharedCluster();
    // The child leaves a process with no mark behind and exits: its parent is gone, its session
    // is the terminal's; only its process group (the job) says it is the tree's.
    // (It ignores SIGHUP, so the terminal's hang-up when the test's shell exits cannot stop it.)
    const leaves = ['--', 'sh', '-c', `env -i sh -c "trap '' HUP; exec sleep 300" & echo "orphan $!"`];
    const lr = candidates(t).start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', uniqueName('tty-orphan'), ...FAST, ...leaves], {
      terminal: true,
    });
    await onScreen(lr, 'orphan ');
    const orphan = known(Number(/orphan (\d+)/.exec(lr.screen)![1]));
    t.after(() => signalKnown(orphan, 'SIGKILL'));
    assert.equal(await lr.exitCode(), 0);
    assert.ok(!running(orphan.pid), 'stopped with the tree before the Lease was released');
    assert.ok(lr.has('child-gone') && lr.has('released'));
  });

  it('stopped past the renew deadline, the child is stopped by the deadline, and another leads after', async (t) => {
    const info = await sharedCluster();
    const kc = ['--kubeconfig', info.kubeconfigs.candidate];
    const name = uniqueName('tty-long-stop');
    const ledger = path.join(tempDir(), 'ledger');
    const lr = candidates(t);
    const stopped = lr.start([...kc, '--lock-name', name, '--id', 'at-terminal', ...FAST, ...workerCmd(ledger, '--name', 'at-terminal')], { terminal: true });
    await started(ledger, 1);
    const next = lr.start([...kc, '--lock-name', name, '--id', 'next', ...FAST, ...workerCmd(ledger, '--name', 'next')]);
    await next.waitFor('campaigning');
    stopped.type('\x1a');
    await said(stopped, 'ptyjob: stopped');
    await started(ledger, 2);
    const mine = readLedger(ledger).filter((l) => l.name === 'at-terminal');
    assert.ok(
      mine.some((l) => l.ev === 'sigterm'),
      'the stopped child was continued to handle its SIGTERM',
    );
    assert.deepEqual(overlaps(readLedger(ledger)), [], 'the next child started only after the stopped one was gone');
    stopped.foreground();
    assert.equal(await stopped.exitCode(), 75, 'woken, it finds the Lease lost');
    next.signal('SIGTERM');
    assert.equal(await next.exitCode(), 143);
    assert.deepEqual(overlaps(readLedger(ledger)), []);
  });
});
