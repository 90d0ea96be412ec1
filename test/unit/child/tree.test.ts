import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ProcessTree, parseStat, TERM_MARK } from '../../../src/child/tree.ts';
import { nativeFixture } from '../../support/native.ts';
import { known, running, signalKnown, statFields } from '../../support/procs.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every process whose environment holds `mark`, by a plain scan of /proc. */
function markedPids(mark: string): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        return readFileSync(`/proc/${n}/environ`, 'latin1').split('\0').includes(mark);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('the process tree', () => {
  it('reads the fields after the last parenthesis of the command name', () => {
    const rest = '0 -1 4194560 95 0 0 0 0 0 0 0 20 0 1 0 7117';
    assert.deepEqual(parseStat(`42 (a) b (c)) S 1 42 42 ${rest}`), { state: 'S', ppid: 1, pgrp: 42, session: 42, start: 7117, kthread: false });
  });

  it('counts a process whose main thread exited as running while a thread runs, and kills it', async () => {
    const z = spawn(nativeFixture('zthread'), ['/dev/null', 'z'], { detached: true, stdio: 'ignore' });
    try {
      await sleep(100);
      assert.equal(statFields(z.pid!)?.[0], 'Z', 'its own stat reads Z');
      const tree = new ProcessTree(z.pid!);
      assert.deepEqual(tree.running(), [z.pid]);
      assert.deepEqual(await tree.kill(500), { unkillable: [] });
      assert.ok(!running(z.pid!));
    } finally {
      z.kill('SIGKILL');
    }
  });

  it('finds by its mark a daemon that left the session after its parent exited', async () => {
    const mark = `${TERM_MARK}=test-${process.pid}`;
    // sh starts a daemon in a session of its own (setsid) and exits at once.
    const sh = spawn('/bin/sh', ['-c', 'setsid sleep 30 >/dev/null 2>&1 & echo $!'], {
      detached: true,
      env: { ...process.env, [TERM_MARK]: `test-${process.pid}` },
    });
    let out = '';
    sh.stdout!.on('data', (d) => (out += d));
    // 'close', not 'exit': the pid it printed may still be unread when it exits (the daemon
    // holds none of its output open).
    await new Promise((r) => sh.on('close', r));
    const daemon = Number(out.trim());
    const daemonProcess = known(daemon);
    try {
      await sleep(50);
      assert.ok(running(daemon), `the daemon sh printed (${JSON.stringify(out)}) runs`);
      assert.ok(new ProcessTree(sh.pid!, mark).running().includes(daemon), 'found though it is in no session of ours and its parent is gone');
      const since = parseStat(readFileSync(`/proc/${daemon}/stat`, 'latin1')).start;
      const tree = new ProcessTree(sh.pid!, mark, { since });
      assert.ok(tree.running().includes(daemon), 'and found when only processes started since the child are read for the mark');
      await tree.kill(500);
      assert.ok(!running(daemon));
    } finally {
      signalKnown(daemonProcess, 'SIGKILL'); // reaped by init once killed: its pid may be another's now
    }
  });

  it('looks for the mark only in processes started no earlier than the child', async () => {
    const mark = `${TERM_MARK}=since-${process.pid}`;
    const marked = spawn('sleep', ['30'], { detached: true, stdio: 'ignore', env: { ...process.env, [TERM_MARK]: `since-${process.pid}` } });
    try {
      await sleep(50);
      const { start } = parseStat(readFileSync(`/proc/${marked.pid}/stat`, 'latin1'));
      assert.ok(new ProcessTree(null, mark, { since: start }).running().includes(marked.pid!), 'started at the instant given: a member');
      assert.ok(new ProcessTree(null, mark).running().includes(marked.pid!), 'no instant given: every process is looked at');
      assert.deepEqual(new ProcessTree(null, mark, { since: start + 1 }).running(), [], 'started before the child: not looked at');
    } finally {
      marked.kill('SIGKILL');
    }
  });

  it('sends several signals with one look at the tree: a stopped shell gets SIGTERM and is continued', async () => {
    const sh = spawn('/bin/sh', ['-c', 'trap "echo TERM" TERM; trap "echo CONT; exit 0" CONT; while :; do sleep 0.05; done'], { detached: true });
    let out = '';
    sh.stdout!.on('data', (d) => (out += d));
    try {
      await sleep(100);
      sh.kill('SIGSTOP');
      for (let i = 0; statFields(sh.pid!)?.[0] !== 'T'; i++) {
        assert.ok(i < 200, 'the shell stopped');
        await sleep(10);
      }
      new ProcessTree(sh.pid!).signal(['SIGTERM', 'SIGCONT']);
      await new Promise((r) => sh.on('close', r));
      assert.equal(out, 'TERM\nCONT\n', 'the stopped shell was continued and ran both traps');
    } finally {
      sh.kill('SIGKILL');
    }
  });

  it('finds by its mark a process whose main thread exited, in no session of ours', async () => {
    const mark = `${TERM_MARK}=z-${process.pid}`;
    const z = spawn(nativeFixture('zthread'), ['/dev/null', 'z'], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, [TERM_MARK]: `z-${process.pid}` },
    });
    try {
      await sleep(100);
      assert.equal(statFields(z.pid!)?.[0], 'Z', 'its own stat reads Z');
      const tree = new ProcessTree(null, mark);
      assert.deepEqual(tree.running(), [z.pid], 'its threads still hold the environment');
      assert.deepEqual(await tree.kill(500), { unkillable: [] });
      assert.ok(!running(z.pid!));
    } finally {
      z.kill('SIGKILL');
    }
  });

  it('does not call a tree gone while a process of it keeps forking away into sessions of its own, and kills it', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hopper-'));
    const hops = path.join(dir, 'hops');
    const stop = path.join(dir, 'stop');
    const mark = `${TERM_MARK}=hop-${process.pid}`;
    const count = (): number => (existsSync(hops) ? readFileSync(hops, 'utf8').split('\n').length - 1 : 0);
    // Each generation beats, starts the next in a new session (marked only) and exits.
    const until = String(Number(process.hrtime.bigint()) / 1e6 + 60_000);
    const first = spawn(nativeFixture('hopper'), [hops, 'hop', until, stop], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, [TERM_MARK]: `hop-${process.pid}` },
    });
    try {
      for (let i = 0; count() < 20; i++) {
        assert.ok(i < 500, 'the hopper hops');
        await sleep(10);
      }
      const tree = new ProcessTree(null, mark);
      for (let i = 0; i < 200; i++) assert.notDeepEqual(tree.running(), [], `look ${i}: the hopper runs`);
      assert.deepEqual(await tree.kill(500), { unkillable: [] });
      const atGone = count();
      await sleep(200);
      assert.equal(count(), atGone, 'no generation ran after the tree was reported gone');
      assert.deepEqual(markedPids(mark), [], 'nothing carries the mark');
    } finally {
      writeFileSync(stop, '');
      first.kill('SIGKILL');
      await sleep(100);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a pid that cannot be a child of ours', () => {
    assert.throws(() => new ProcessTree(0), RangeError);
    assert.throws(() => new ProcessTree(1), RangeError);
  });
});
