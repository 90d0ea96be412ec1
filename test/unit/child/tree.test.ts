import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { ProcessTree, parseStat, TERM_MARK } from '../../../src/child/tree.ts';
import { nativeFixture } from '../../support/native.ts';
import { known, running, signalKnown, statFields } from '../../support/procs.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the process tree', () => {
  it('reads the fields after the last parenthesis of the command name', () => {
    const rest = '0 -1 4194560 95 0 0 0 0 0 0 0 20 0 1 0 7117';
    assert.deepEqual(parseStat(`42 (a) b (c)) S 1 42 42 ${rest}`), { state: 'S', ppid: 1, pgrp: 42, session: 42, start: 7117 });
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
      const tree = new ProcessTree(sh.pid!, mark);
      assert.ok(tree.running().includes(daemon), 'found though it is in no session of ours and its parent is gone');
      await tree.kill(500);
      assert.ok(!running(daemon));
    } finally {
      signalKnown(daemonProcess, 'SIGKILL'); // reaped by init once killed: its pid may be another's now
    }
  });

  it('refuses a pid that cannot be a child of ours', () => {
    assert.throws(() => new ProcessTree(0), RangeError);
    assert.throws(() => new ProcessTree(1), RangeError);
  });
});
