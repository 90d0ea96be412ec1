/** The supervisor as a table: each way a run ends, and each row of the README's exit-status
 *  table, driven through events with a fake clock in milliseconds. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Instant } from '../../../src/core/time.ts';
import type { Term } from '../../../src/election/elector.ts';
import type { Effect, RunEvent } from '../../../src/supervisor/events.ts';
import { exitStatusFor, Supervisor, type SupervisorConfig } from '../../../src/supervisor/supervisor.ts';

const R = 2000;
const cfg: SupervisorConfig = { renewDeadlineMs: R, shutdownGraceMs: 1000, routing: false, waitTimeoutMs: 5000, waitTimeoutExitCode: 3, commandText: 'job' };
const term = (holdMs = 0): Term => ({ identity: 'me', uid: 'u1', fencingToken: 7, holdMs });
const at = (mono: number): Instant => ({ mono, wall: 1_000_000 + mono });

/** Feeds events (each at its time, default 10 ms after the last) and returns what happened. */
function drive(steps: Array<RunEvent | [number, RunEvent]>, config: Partial<SupervisorConfig> = {}) {
  const s = new Supervisor({ ...cfg, ...config });
  const effects: Effect[] = [];
  let now = 0;
  for (const step of steps) {
    const [t, e] = Array.isArray(step) ? step : [now + 10, step];
    now = t;
    effects.push(...s.handle(e, at(now)));
  }
  const kinds = effects.filter((e) => e.type !== 'log').map((e) => e.type);
  const logged = effects.flatMap((e) => (e.type === 'log' ? [e.event] : []));
  const exit = effects.find((e) => e.type === 'exit');
  return { s, effects, kinds, logged, status: exit?.type === 'exit' ? exit.status : undefined };
}

const leading = (holdMs = 0): RunEvent => ({ type: 'leading', term: term(holdMs), anchor: at(0) });
const running: RunEvent[] = [leading(), { type: 'spawned', pid: 42 }];
const gone: RunEvent = { type: 'tree-gone', unkillable: [] };
const released: RunEvent = { type: 'released', released: true };
const exited = (code: number | null, signal: NodeJS.Signals | null = null): RunEvent => ({ type: 'child-exited', exit: { code, signal } });

describe('supervisor: the ways a run ends', () => {
  it('1. the child exits by itself: its tree is stopped, then the Lease released, then its status', () => {
    const r = drive([...running, exited(3), gone, released]);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'release', 'exit']);
    assert.equal(r.status, 3);
    assert.deepEqual(r.logged, ['child-started', 'child-exited', 'child-gone', 'released']);
  });

  it('2. the lease is lost while the child runs: fence, then release, 75', () => {
    const r = drive([...running, { type: 'lost', reason: 'renew-deadline', detail: 'x' }, exited(null, 'SIGTERM'), gone, released]);
    assert.deepEqual(r.kinds, ['spawn', 'fence', 'release', 'exit']);
    assert.equal(r.status, 75);
    assert.ok(r.logged.includes('child-fenced'));
  });

  it('3. the lease is lost during a voluntary stop: the stop becomes a fence, 75', () => {
    const r = drive([
      ...running,
      { type: 'stop-signal', signal: 'SIGTERM' },
      { type: 'lost', reason: 'holder-changed', detail: 'x' },
      exited(143),
      gone,
      released,
    ]);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'fence', 'release', 'exit']);
    assert.equal(r.status, 75);
  });

  it('4. a stop signal before leading: stop campaigning, 128 + N', () => {
    const r = drive([
      { type: 'stop-signal', signal: 'SIGINT' },
      { type: 'campaign-stopped', leading: false, releasedLost: false },
    ]);
    assert.deepEqual(r.kinds, ['stop-campaigning', 'exit']);
    assert.equal(r.status, 130);
  });

  it('5. a stop signal while the child runs: the child stops, the Lease is released, the child’s status', () => {
    const r = drive([...running, { type: 'stop-signal', signal: 'SIGTERM' }, exited(143), gone, released]);
    const stop = r.effects.find((e) => e.type === 'stop-tree');
    assert.deepEqual(stop, { type: 'stop-tree', signal: 'SIGTERM', graceMs: 1000 });
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'release', 'exit']);
    assert.equal(r.status, 143);
  });

  it('6. a second stop signal is passed on to the child', () => {
    const r = drive([...running, { type: 'stop-signal', signal: 'SIGTERM' }, { type: 'stop-signal', signal: 'SIGINT' }]);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'forward']);
    assert.equal(r.s.phase, 'stopping');
  });

  it('a third Ctrl-C kills at once', () => {
    const sigint: RunEvent = { type: 'stop-signal', signal: 'SIGINT' };
    const r = drive([...running, sigint, sigint, sigint]);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'forward', 'stop-tree']);
    assert.deepEqual(r.effects.filter((e) => e.type === 'stop-tree').at(-1), { type: 'stop-tree', signal: 'SIGKILL', graceMs: 0 });
    assert.ok(r.logged.includes('child-killed'));
  });

  it('--stop-signal: the child is asked to stop with it, whatever leader-run got', () => {
    const r = drive([...running, { type: 'stop-signal', signal: 'SIGTERM' }], { stopSignal: 'SIGQUIT' });
    assert.deepEqual(
      r.effects.find((e) => e.type === 'stop-tree'),
      { type: 'stop-tree', signal: 'SIGQUIT', graceMs: 1000 },
    );
  });

  it('says why it exits, so a child’s own 75 is told from a lost Lease', () => {
    const own = drive([...running, exited(75), gone, released]).effects.find((e) => e.type === 'exit');
    const lost = drive([...running, { type: 'lost', reason: 'deleted', detail: '' }, gone, released]).effects.find((e) => e.type === 'exit');
    assert.deepEqual(own, { type: 'exit', status: 75, cause: 'child-exit' });
    assert.deepEqual(lost, { type: 'exit', status: 75, cause: 'lost' });
  });

  it('trying once: a held Lease is a quiet skip', () => {
    const r = drive(
      [
        { type: 'wait-timeout', holder: 'other' },
        { type: 'campaign-stopped', leading: false, releasedLost: false },
      ],
      { waitTimeoutMs: 0 },
    );
    const log = r.effects.find((e) => e.type === 'log');
    assert.equal(log?.type === 'log' && log.level, 'info');
    assert.equal(r.status, 3);
  });

  it('7. pointing the Service at this Pod fails: release, the routing status; no child', () => {
    const fatal = { status: 77, event: 'forbidden' as const, message: 'no' };
    const r = drive([leading(), { type: 'routing-failed', fatal }, released], { routing: true });
    assert.deepEqual(r.kinds, ['route-here', 'release', 'exit']);
    assert.equal(r.status, 77);
  });

  it('8. spawning the child fails: release, 127', () => {
    const r = drive([leading(), { type: 'spawn-failed', status: 127, message: 'not found' }, released]);
    assert.deepEqual(r.kinds, ['spawn', 'release', 'exit']);
    assert.equal(r.status, 127);
    assert.ok(r.logged.includes('child-failed'));
  });

  it('9. a fatal API error before leading: stop campaigning, its status', () => {
    const r = drive([
      { type: 'fatal', fatal: { status: 78, event: 'tls', message: 'bad cert' } },
      { type: 'campaign-stopped', leading: false, releasedLost: false },
    ]);
    assert.deepEqual(r.kinds, ['stop-campaigning', 'exit']);
    assert.equal(r.status, 78);
  });

  it('10. --wait-timeout passes before leading: its exit code', () => {
    const r = drive([{ type: 'wait-timeout' }, { type: 'campaign-stopped', leading: false, releasedLost: false }]);
    assert.equal(r.status, 3);
    assert.deepEqual(r.logged, ['wait-timeout']);
  });

  it('11. the API server stays unreachable: 69, said once', () => {
    const r = drive([
      { type: 'fatal', fatal: { status: 69, event: 'unreachable', message: 'unreachable' } },
      { type: 'fatal', fatal: { status: 69, event: 'unreachable', message: 'again' } },
      { type: 'campaign-stopped', leading: false, releasedLost: false },
    ]);
    assert.equal(r.status, 69);
    assert.deepEqual(r.logged, ['unreachable']);
  });

  it('12. a stop during the new-Lease hold: release without a child, 128 + N', () => {
    const r = drive([leading(4000), { type: 'stop-signal', signal: 'SIGTERM' }, released, { type: 'hold-elapsed' }]);
    assert.deepEqual(r.kinds, ['start-hold', 'release', 'exit']);
    assert.equal(r.status, 143);
  });

  it('13. an acquire wins while leaving: it is released at once, no child', () => {
    const r = drive([{ type: 'stop-signal', signal: 'SIGTERM' }, leading(), { type: 'campaign-stopped', leading: true, releasedLost: false }, released]);
    assert.deepEqual(r.kinds, ['stop-campaigning', 'release', 'exit']);
    assert.equal(r.status, 143);
  });

  it('the watchdog fails while the child runs: the tree is killed without it, released, 70', () => {
    const r = drive([...running, { type: 'watchdog-failed', why: 'it exited (SIGKILL)' }, exited(null, 'SIGKILL'), gone, released]);
    assert.deepEqual(r.kinds, ['spawn', 'fence', 'release', 'exit']);
    assert.equal(r.status, 70, 'not 137: that SIGKILL was our own');
  });

  it('the watchdog fails while holding: release, 70; while campaigning: leave, 70', () => {
    assert.equal(drive([leading(4000), { type: 'watchdog-failed', why: 'x' }, released]).status, 70);
    assert.equal(
      drive([
        { type: 'watchdog-failed', why: 'x' },
        { type: 'campaign-stopped', leading: false, releasedLost: false },
      ]).status,
      70,
    );
  });

  it('the watchdog reaches the deadline first: the term ends as a loss, 75', () => {
    const r = drive([...running, { type: 'watchdog-deadline' }, exited(null, 'SIGTERM'), gone, released]);
    assert.equal(r.status, 75);
    assert.ok(r.logged.includes('watchdog-fence'));
  });

  it('no spawn on an expired lease: a hold that ends past R since the anchor loses the term', () => {
    const r = drive([[0, leading(4000)], [R + 2500, { type: 'hold-elapsed' }], released]);
    assert.deepEqual(r.kinds, ['start-hold', 'release', 'exit']);
    assert.equal(r.status, 75);
  });

  it('a renewal during the hold keeps the lease: the child starts with the newest anchor', () => {
    const r = drive([
      [0, leading(4000)],
      [3000, { type: 'renewed', anchor: at(3000) }],
      [4000, { type: 'hold-elapsed' }],
    ]);
    const spawn = r.effects.find((e) => e.type === 'spawn');
    assert.equal(spawn?.type === 'spawn' && spawn.anchor.mono, 3000);
  });

  it('the watchdog refuses the spawn (the lease expired by its clocks): 75', () => {
    const r = drive([leading(), { type: 'spawn-failed', status: 75, message: 'expired' }, released]);
    assert.equal(r.status, 75);
  });

  it('processes that refuse SIGKILL: the Lease is not released, 70', () => {
    const r = drive([...running, { type: 'stop-signal', signal: 'SIGTERM' }, { type: 'tree-gone', unkillable: [99] }]);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'abandon', 'exit']);
    assert.equal(r.status, 70);
    assert.ok(r.logged.includes('unkillable'));
  });

  it('a lost acquire answer released on leaving is said', () => {
    const r = drive([{ type: 'wait-timeout' }, { type: 'campaign-stopped', leading: false, releasedLost: true }]);
    assert.deepEqual(r.logged, ['wait-timeout', 'released']);
  });

  it('release is asked for only once no tree can run', () => {
    for (const steps of [
      [...running, exited(0)],
      [...running, { type: 'stop-signal', signal: 'SIGTERM' } as RunEvent],
      [...running, { type: 'lost', reason: 'deleted', detail: '' } as RunEvent],
      [leading(), { type: 'stop-signal', signal: 'SIGTERM' } as RunEvent],
    ]) {
      const r = drive(steps);
      assert.ok(!r.kinds.includes('release'), JSON.stringify(r.kinds));
    }
  });
});

describe('supervisor: step-down', () => {
  it('while the child runs: a voluntary stop, then the release, exit 0', () => {
    const r = drive([...running, { type: 'step-down' }, exited(null, 'SIGTERM'), gone, released]);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'release', 'exit']);
    assert.ok(r.logged.includes('step-down'));
    assert.equal(r.status, 0, 'the child died of the stop we sent: a success');
  });

  it('a child that fails on its own account while stopping keeps its status', () => {
    assert.equal(drive([...running, { type: 'step-down' }, exited(3), gone, released]).status, 3);
  });

  it('during the new-Lease hold: release without a child, 0; during --min-hold: release, the child’s status', () => {
    const held = drive([leading(4000), { type: 'step-down' }, released]);
    assert.deepEqual(held.kinds, ['start-hold', 'release', 'exit']);
    assert.equal(held.status, 0);
    const r = drive([...running, [1000, exited(4)], [1010, gone], [2000, { type: 'step-down' }], released], { minHoldMs: 5000 });
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'start-min-hold', 'release', 'exit']);
    assert.equal(r.status, 4);
  });

  it('ignored while campaigning, and once a stop or a loss is under way', () => {
    assert.deepEqual(drive([{ type: 'step-down' }]).kinds, []);
    const lost = drive([...running, { type: 'lost', reason: 'holder-changed', detail: 'x' }, { type: 'step-down' }, exited(null, 'SIGTERM'), gone, released]);
    assert.equal(lost.status, 75);
    assert.ok(!lost.logged.includes('step-down'));
  });
});

describe('supervisor: --min-hold', () => {
  const minHold = { minHoldMs: 5000 };
  it('the child finished early: the Lease is kept until min-hold after it was won, then released, the child’s status', () => {
    const r = drive([...running, [1000, exited(0)], [1010, gone], [6000, { type: 'min-hold-elapsed' }], released], minHold);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'start-min-hold', 'release', 'exit']);
    const hold = r.effects.find((e) => e.type === 'start-min-hold');
    assert.equal(hold?.type === 'start-min-hold' && hold.ms, 3990, 'counted from winning the Lease, not from the child’s end');
    assert.ok(r.logged.includes('min-hold'));
    assert.equal(r.status, 0);
  });

  it('a child that ran past min-hold: released at once', () => {
    const r = drive([...running, [7000, exited(2)], [7010, gone], released], minHold);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'release', 'exit']);
    assert.equal(r.status, 2);
  });

  it('a stop signal during min-hold releases at once; the child’s status stands', () => {
    const r = drive([...running, [1000, exited(0)], [1010, gone], [2000, { type: 'stop-signal', signal: 'SIGTERM' }], released], minHold);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'start-min-hold', 'release', 'exit']);
    assert.equal(r.status, 0);
  });

  it('a loss during min-hold: release (nothing runs), the child’s status, said at warn', () => {
    const r = drive([...running, [1000, exited(0)], [1010, gone], [2000, { type: 'lost', reason: 'holder-changed', detail: 'x' }], released], minHold);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'start-min-hold', 'release', 'exit']);
    assert.equal(r.status, 0);
    assert.ok(r.logged.includes('stopped-leading'));
  });

  it('no min-hold after a stop signal, a loss or a watchdog failure', () => {
    const signalled = drive([...running, { type: 'stop-signal', signal: 'SIGTERM' }, exited(143), gone, released], minHold);
    assert.ok(!signalled.kinds.includes('start-min-hold'));
    const stopWhileStopping = drive([...running, exited(0), { type: 'stop-signal', signal: 'SIGTERM' }, gone, released], minHold);
    assert.ok(!stopWhileStopping.kinds.includes('start-min-hold'), 'a stop asked for while the tree went');
    const lost = drive([...running, { type: 'lost', reason: 'renew-deadline', detail: 'x' }, exited(null, 'SIGTERM'), gone, released], minHold);
    assert.ok(!lost.kinds.includes('start-min-hold'));
    assert.equal(lost.status, 75);
  });
});

describe('supervisor: the README’s exit-status table', () => {
  const rows: Array<[string, Parameters<typeof exitStatusFor>, number]> = [
    ['the child exited by itself with code c', [{ kind: 'child-exit', status: 3 }, false, false], 3],
    ['the child was killed by signal N that leader-run did not send', [{ kind: 'child-exit', status: 128 + 9 }, false, false], 137],
    ['SIGTERM: the child’s status', [{ kind: 'signal', signal: 'SIGTERM', childStatus: 0 }, false, false], 0],
    ['SIGTERM: 128 + N if it died of the forwarded signal', [{ kind: 'signal', signal: 'SIGTERM', childStatus: 143 }, false, false], 143],
    ['SIGINT: 128 + N if no child ran', [{ kind: 'signal', signal: 'SIGINT', childStatus: undefined }, false, false], 130],
    ['leadership lost, child fenced', [{ kind: 'lost' }, true, false], 75],
    ['leadership lost whatever the child did', [{ kind: 'child-exit', status: 0 }, true, false], 75],
    ['--wait-timeout passed before leading', [{ kind: 'wait-timeout', status: 75 }, false, false], 75],
    ['--wait-timeout with --wait-timeout-exit-code', [{ kind: 'wait-timeout', status: 0 }, false, false], 0],
    ['API unreachable past --startup-timeout', [{ kind: 'fatal', status: 69 }, false, false], 69],
    ['401/403 for the Lease', [{ kind: 'fatal', status: 77 }, false, false], 77],
    ['no usable kubeconfig', [{ kind: 'fatal', status: 78 }, false, false], 78],
    ['command not executable', [{ kind: 'fatal', status: 126 }, false, false], 126],
    ['command not found', [{ kind: 'fatal', status: 127 }, false, false], 127],
    ['the watchdog failed', [{ kind: 'child-exit', status: 137 }, false, true], 70],
    ['processes refused SIGKILL', [{ kind: 'unkillable' }, true, true], 70],
  ];
  for (const [situation, args, status] of rows) it(`${situation} → ${status}`, () => assert.equal(exitStatusFor(...args), status));
});

describe('supervisor: --once-per', () => {
  const hour = 3_600_000;
  const oncePer = { oncePerMs: hour };
  // at(0).wall is 1_000_000: the window [0, 1h) of the Unix epoch.
  const leadingAfter = (startedWall: number): RunEvent => ({ type: 'leading', term: term(), anchor: at(0), lastSuccess: { startedWall, holder: 'other' } });
  const releaseOf = (r: ReturnType<typeof drive>) => r.effects.find((e) => e.type === 'release');

  it('a child that exits 0 by itself is recorded in the release write, with when the term was won', () => {
    const r = drive([...running, [500, exited(0)], gone, { type: 'released', released: true, recorded: true }], oncePer);
    const rel = releaseOf(r);
    assert.deepEqual(rel?.type === 'release' && rel.record, { startedWall: 1_000_000, finishedWall: 1_000_500, fencingToken: 7 });
    assert.equal(r.status, 0);
  });

  it('a failed child, a stop signal, a step-down or a loss is not recorded: another may retry', () => {
    for (const steps of [
      [...running, exited(3), gone, released],
      [...running, { type: 'stop-signal', signal: 'SIGTERM' } as RunEvent, exited(0), gone, released],
      [...running, { type: 'step-down' } as RunEvent, exited(0), gone, released],
      [...running, { type: 'lost', reason: 'modified', detail: 'x' } as RunEvent, exited(0), gone, released],
    ]) {
      const rel = releaseOf(drive(steps, oncePer));
      assert.ok(rel?.type === 'release' && rel.record === undefined);
    }
  });

  it('without --once-per nothing is recorded', () => {
    const rel = releaseOf(drive([...running, exited(0), gone, released]));
    assert.ok(rel?.type === 'release' && rel.record === undefined);
  });

  it('a term won in a window whose run is recorded: no child, released at once, the skip status', () => {
    const r = drive([leadingAfter(10), released], oncePer);
    assert.deepEqual(r.kinds, ['release', 'exit']);
    assert.equal(r.status, 3, '--wait-timeout-exit-code');
    assert.deepEqual(r.logged, ['once-per-skip', 'released']);
    const skip = r.effects.find((e) => e.type === 'log' && e.event === 'once-per-skip');
    assert.equal(skip?.type === 'log' && skip.level, 'info', 'silent under -q');
  });

  it('a record from an earlier window does not skip; nor does any record without --once-per', () => {
    assert.deepEqual(drive([leadingAfter(-1)], oncePer).kinds, ['spawn']);
    assert.deepEqual(drive([leadingAfter(10)]).kinds, ['spawn']);
  });

  it('a release that fails says the run is not recorded', () => {
    const r = drive([...running, exited(0), gone, { type: 'released', released: false }], oncePer);
    const warn = r.effects.find((e) => e.type === 'log' && e.event === 'released');
    assert.ok(warn?.type === 'log' && warn.level === 'warn' && /not recorded/.test(warn.message));
  });
});

describe('supervisor: step-down --to', () => {
  it('stops the child, then hands the Lease over in the release, 0', () => {
    const r = drive([...running, { type: 'step-down', to: 'next' }, exited(143), gone, { type: 'released', released: true, handedTo: 'next' }]);
    assert.deepEqual(r.kinds, ['spawn', 'stop-tree', 'release', 'exit']);
    const rel = r.effects.find((e) => e.type === 'release');
    assert.equal(rel?.type === 'release' && rel.handoverTo, 'next');
    assert.equal(r.status, 0);
  });

  it('a loss during the stop frees nothing and hands nothing over', () => {
    const r = drive([...running, { type: 'step-down', to: 'next' }, { type: 'lost', reason: 'modified', detail: 'x' }, exited(143), gone, released]);
    const rel = r.effects.find((e) => e.type === 'release');
    assert.ok(rel?.type === 'release' && rel.handoverTo === undefined);
    assert.equal(r.status, 75);
  });

  it('canStepDown: while leading, not while campaigning or stopping', () => {
    assert.equal(drive([]).s.canStepDown, false);
    assert.equal(drive(running).s.canStepDown, true);
    assert.equal(drive([...running, { type: 'stop-signal', signal: 'SIGTERM' }]).s.canStepDown, false);
  });
});
