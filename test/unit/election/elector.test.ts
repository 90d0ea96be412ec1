import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Instant } from '../../../src/core/time.ts';
import { Elector, type LossReason, type Term } from '../../../src/election/elector.ts';
import type { Timing } from '../../../src/election/timing.ts';
import { handedOverTo, LAST_SUCCESS_ANNOTATION, lastSuccessOf, STEP_DOWN_ANNOTATION, stepDownValue } from '../../../src/lease/record.ts';
import { FakeClock, type MemoryLock, MemoryStore } from '../../support/fake.ts';

const timing: Timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, fenceGraceMs: 2_000 };

interface Probe {
  elector: Elector;
  lock: MemoryLock;
  started: Array<{ term: Term; anchor: Instant; at: number }>;
  lost: Array<{ reason: LossReason; at: number }>;
  leaders: string[];
  renewals: number;
  stepDowns: number;
}

function candidate(store: MemoryStore, clock: FakeClock, identity: string): Probe {
  const lock = store.lockFor(identity);
  const p: Probe = { elector: undefined as unknown as Elector, lock, started: [], lost: [], leaders: [], renewals: 0, stepDowns: 0 };
  p.elector = new Elector({ identity, timing, random: () => 0 }, lock, clock, {
    startedLeading: (term, anchor) => p.started.push({ term, anchor, at: clock.mono }),
    stoppedLeading: (reason) => p.lost.push({ reason, at: clock.mono }),
    newLeader: (h) => p.leaders.push(h),
    renewed: () => p.renewals++,
    stepDownRequested: () => p.stepDowns++,
  });
  void p.elector.run();
  return p;
}

function setup() {
  const clock = new FakeClock();
  const store = new MemoryStore(clock);
  return { clock, store };
}

describe('elector', () => {
  it('creates an absent Lease with a client-go record and renews every retry period', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    assert.equal(a.elector.leading, true);
    assert.equal(a.started[0]?.term.fencingToken, 0);
    const spec = store.obj?.spec;
    assert.equal(spec?.holderIdentity, 'a');
    assert.equal(spec?.leaseDurationSeconds, 15);
    assert.match(spec?.renewTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    await clock.advance(10_000);
    assert.equal(a.renewals, 5);
    assert.deepEqual(a.leaders, ['a']);
    // Renewals keep acquireTime and transitions.
    assert.equal(store.obj?.spec.acquireTime, spec?.acquireTime);
    assert.equal(store.obj?.spec.leaseTransitions, 0);
  });

  it('lets exactly one of two candidates lead, and the other takes over only after D without change', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    const b = candidate(store, clock, 'b');
    await clock.advance(30_000);
    assert.equal(a.elector.leading, true);
    assert.equal(b.elector.leading, false);
    assert.deepEqual(b.leaders, ['a']);

    // a's network goes dark: its renewals hang.
    a.lock.mode = 'hang';
    const lastSend = store.writes.filter((w) => w.by === 'a').at(-1)?.at ?? 0;
    await clock.advance(30_000);
    assert.equal(a.lost[0]?.reason, 'renew-deadline');
    assert.ok((a.lost[0]?.at ?? Infinity) <= lastSend + timing.renewDeadlineMs, 'a gives up by anchor + R');
    assert.equal(b.elector.leading, true);
    const bStart = b.started[0]?.at ?? 0;
    assert.ok(bStart >= lastSend + timing.leaseDurationMs, `b leads at ${bStart - lastSend}ms after a's last write, not before D`);
    assert.equal(b.started[0]?.term.fencingToken, 1, 'the fencing token grows with the term');
  });

  it('gives up at anchor + R by its timer even while a request hangs', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    const anchor = a.elector.anchor?.mono ?? 0;
    a.lock.mode = 'hang';
    await clock.advance(timing.renewDeadlineMs - 1);
    assert.equal(a.lost.length, 0);
    await clock.advance(1);
    assert.equal(a.lost[0]?.reason, 'renew-deadline');
    assert.equal(a.lost[0]?.at, anchor + timing.renewDeadlineMs);
  });

  it('fences at once when the wall clock shows a suspend longer than R', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(1_000);
    a.lock.mode = 'hang'; // the network is gone after the sleep too
    clock.suspend(60_000);
    await clock.advance(1_000); // the guard's wall-clock check (the watchdog checks every 100 ms)
    assert.equal(a.lost[0]?.reason, 'renew-deadline');
  });

  it('loses leadership immediately when another holder appears', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(500);
    store.overwrite({ holderIdentity: 'intruder' });
    await clock.advance(2_000);
    assert.equal(a.lost[0]?.reason, 'holder-changed');
  });

  it('treats deletion, re-creation and a foreign write as loss', async () => {
    for (const [act, reason] of [
      ['delete', 'deleted'],
      ['recreate', 'recreated'],
      ['modify', 'modified'],
    ] as const) {
      const { clock, store } = setup();
      const a = candidate(store, clock, 'a');
      await clock.advance(500);
      if (act === 'delete') store.delete();
      if (act === 'recreate') {
        const spec = store.obj?.spec ?? {};
        store.delete();
        store.create(spec, 'someone');
      }
      if (act === 'modify') store.overwrite({ renewTime: '2020-01-01T00:00:00.000000Z' });
      await clock.advance(2_000);
      assert.equal(a.lost[0]?.reason, reason, act);
    }
  });

  it('keeps leading through a metadata-only change', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(500);
    store.label('team', 'x');
    await clock.advance(20_000);
    assert.equal(a.lost.length, 0);
    assert.equal(a.elector.leading, true);
  });

  it('says once when the Lease asks this term to step down; a request for another term is nothing', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(500);
    for (const other of [
      { holder: 'a', transitions: 9 },
      { holder: 'b', transitions: 0 },
    ]) {
      store.annotate(STEP_DOWN_ANNOTATION, stepDownValue(other));
      await clock.advance(5_000);
      assert.equal(a.stepDowns, 0, JSON.stringify(other));
    }
    store.annotate(STEP_DOWN_ANNOTATION, stepDownValue({ holder: 'a', transitions: 0 }));
    await clock.advance(5_000);
    store.label('again', 'x');
    await clock.advance(5_000);
    assert.equal(a.stepDowns, 1, 'once');
    assert.equal(a.elector.leading, true, 'the elector only says so: stopping is the run’s decision');
    assert.equal(a.lost.length, 0, 'a metadata-only write is no loss');
  });

  it('hands over with --to: the named candidate takes the record at once, another waits a lease duration', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(500);
    const b = candidate(store, clock, 'b');
    await clock.advance(100);
    assert.equal(await a.elector.release({ handoverTo: 'c' }), true);
    const handed = store.snapshot();
    assert.equal(handed?.spec.holderIdentity, 'c');
    assert.equal(handed?.spec.leaseTransitions, 1, 'a new term');
    assert.equal(handedOverTo(handed, 'c'), true);
    assert.equal(handedOverTo(handed, 'b'), false);
    const c = candidate(store, clock, 'c');
    await clock.advance(100);
    assert.equal(c.elector.leading, true, 'at once');
    assert.equal(c.started[0]?.term.holdMs, 0, 'as after a release');
    assert.equal(handedOverTo(store.snapshot(), 'c'), false, 'its own acquire no longer matches the hand-over record');
    assert.equal(b.started.length, 0);

    // Nobody named: the others wait as for any holder.
    assert.equal(await c.elector.release({ handoverTo: 'ghost' }), true);
    await clock.advance(14_000);
    assert.equal(b.started.length, 0, 'not before the lease duration');
    await clock.advance(5_000);
    assert.equal(b.started.length, 1);
  });

  it('does not miss a release that the watch delivers at once after a read', async () => {
    const { clock, store } = setup();
    // a releases as soon as it leads: the release can land between b's read and b's watch.
    const a: Elector = new Elector({ identity: 'a', timing, random: () => 0 }, store.lockFor('a'), clock, {
      startedLeading: () => void a.release(),
      stoppedLeading: () => {},
    });
    const b = { at: [] as number[] };
    const eb = new Elector({ identity: 'b', timing, random: () => 0 }, store.lockFor('b'), clock, {
      startedLeading: () => b.at.push(clock.mono),
      stoppedLeading: () => {},
    });
    void a.run();
    void eb.run();
    await clock.advance(100);
    assert.equal(b.at.length, 1, 'taken at once, not after the lease duration');
  });

  it('treats a record naming its own identity that it did not write as foreign', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 4, renewTime: 'x', acquireTime: 'x' }, 'old-a');
    const a = candidate(store, clock, 'a');
    await clock.advance(14_999);
    assert.equal(a.elector.leading, false);
    await clock.advance(2_500);
    assert.equal(a.elector.leading, true);
    assert.equal(a.started[0]?.term.fencingToken, 5, 'a new term even for the same identity');
  });

  it('honours the longer of the record duration and its own', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: 'slow', leaseDurationSeconds: 40, leaseTransitions: 0 }, 'slow');
    const a = candidate(store, clock, 'a');
    await clock.advance(39_000);
    assert.equal(a.elector.leading, false);
    await clock.advance(3_000);
    assert.equal(a.elector.leading, true);
  });

  it('takes a released Lease at once, keeping strategy and preferredHolder', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 7, strategy: 'OldestEmulationVersion', preferredHolder: 'p' }, 'go');
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    assert.equal(a.elector.leading, true);
    assert.equal(store.obj?.spec.leaseTransitions, 8);
    assert.equal(store.obj?.spec.strategy, 'OldestEmulationVersion');
    assert.equal(store.obj?.spec.preferredHolder, 'p');
  });

  it('adopts its own acquire whose reply was lost, anchored at the send time', async () => {
    const { clock, store } = setup();
    const lockA = store.lockFor('a');
    lockA.mode = 'drop-reply';
    const lost: LossReason[] = [];
    const started: Instant[] = [];
    const e = new Elector({ identity: 'a', timing, random: () => 0 }, lockA, clock, {
      startedLeading: (_t, anchor) => started.push(anchor),
      stoppedLeading: (r) => lost.push(r),
    });
    void e.run();
    const sent = clock.mono;
    await clock.advance(100);
    lockA.mode = 'ok';
    await clock.advance(timing.renewDeadlineMs + timing.retryPeriodMs);
    assert.equal(e.leading, true);
    assert.equal(started[0]?.mono, sent);
    assert.deepEqual(lost, []);
  });

  it('releases as client-go does, and only while the Lease holds its last write', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(3_000);
    assert.equal(await a.elector.release(), true);
    assert.equal(store.obj?.spec.holderIdentity, '');
    assert.equal(store.obj?.spec.leaseDurationSeconds, 1);
    assert.equal(store.obj?.spec.leaseTransitions, 0);

    const b = candidate(store, clock, 'b');
    await clock.advance(100);
    assert.equal(b.elector.leading, true);
    store.overwrite({ holderIdentity: 'c' });
    assert.equal(await b.elector.release(), false, 'someone else wrote: nothing to release');
    assert.equal(store.obj?.spec.holderIdentity, 'c');
  });

  it('a release can carry annotations in the same write, and they survive the next terms', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(3_000);
    store.annotate('other', 'kept');
    // The annotation made the Lease's version move: the release starts from the new one.
    assert.equal(await a.elector.release({ annotations: { [LAST_SUCCESS_ANNOTATION]: 'x' } }), true);
    assert.equal(store.obj?.spec.holderIdentity, '');
    assert.deepEqual(store.obj?.annotations, { other: 'kept', [LAST_SUCCESS_ANNOTATION]: 'x' });
    const b = candidate(store, clock, 'b');
    await clock.advance(100);
    assert.equal(b.elector.leading, true);
    assert.equal(b.started[0] && lastSuccessOf(store.snapshot()), null, 'not a LastSuccess record');
    assert.deepEqual(store.obj?.annotations, { other: 'kept', [LAST_SUCCESS_ANNOTATION]: 'x' }, 'acquiring keeps them');
  });

  it('stops campaigning without leaving a Lease it does not know it holds', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: 'x', leaseDurationSeconds: 15, leaseTransitions: 0 }, 'x');
    const a = candidate(store, clock, 'a');
    await clock.advance(3_000);
    await a.elector.stopCampaigning();
    await clock.advance(30_000);
    assert.equal(a.elector.leading, false);
    assert.equal(store.obj?.spec.holderIdentity, 'x');
  });
});

describe('elector with a watch', () => {
  it('makes no periodic reads while the watch delivers the renewals', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    const b = candidate(store, clock, 'b');
    await clock.advance(60_000);
    assert.equal(a.elector.leading, true);
    assert.equal(b.lock.calls.filter((c) => c === 'get').length, 1, 'one read at start, then only the watch');
    assert.equal(a.lock.calls.filter((c) => c === 'get').length, 1, 'the leader read once, before it led, and never since');
    assert.equal(a.lock.calls.filter((c) => c === 'update').length, 30, 'one write per retry period: 30 a minute');
  });

  it('takes a released Lease at once, without waiting for a poll', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    const b = candidate(store, clock, 'b');
    await clock.advance(5_000);
    const released = clock.mono;
    assert.equal(await a.elector.release(), true);
    await clock.advance(0);
    assert.equal(b.elector.leading, true);
    assert.equal(b.started[0]?.at, released);
  });

  it('takes over a dead leader at the expiry instant, after confirming with a read', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    const b = candidate(store, clock, 'b');
    await clock.advance(3_000);
    a.lock.mode = 'hang';
    const lastWrite = store.writes.filter((w) => w.by === 'a').at(-1)?.at ?? 0;
    await clock.advance(30_000);
    const at = b.started[0]?.at ?? Infinity;
    assert.ok(at >= lastWrite + timing.leaseDurationMs, 'not before D');
    assert.ok(at <= lastWrite + timing.leaseDurationMs + timing.retryPeriodMs, `promptly: ${at - lastWrite}ms after the last write`);
  });

  it('goes back to polling when the watch breaks', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    const lockB = store.lockFor('b');
    lockB.watchMode = 'break';
    const e = new Elector({ identity: 'b', timing, random: () => 0 }, lockB, clock, { startedLeading: () => {}, stoppedLeading: () => {} });
    void e.run();
    await clock.advance(20_000);
    assert.ok(lockB.calls.filter((c) => c === 'get').length >= 9, 'reads every retry period');
    assert.ok(a.elector.leading);
  });

  it('stays safe with a watch that stalls: the compare-and-set refuses a stale takeover', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    const lockB = store.lockFor('b');
    lockB.watchMode = 'stall';
    let bLed = false;
    const e = new Elector({ identity: 'b', timing, random: () => 0 }, lockB, clock, { startedLeading: () => (bLed = true), stoppedLeading: () => {} });
    void e.run();
    await clock.advance(60_000);
    assert.equal(bLed, false, 'b never led while a kept renewing');
    assert.equal(a.lost.length, 0);
    assert.equal(a.elector.leading, true);
  });
});

describe('renewal attempts', () => {
  it('abandons a renewal stuck on a dead connection in time to retry, and keeps the lease', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(1_000);
    a.lock.mode = 'hang'; // the connection in use is dead...
    await clock.advance(timing.renewDeadlineMs / 3 + timing.retryPeriodMs);
    a.lock.mode = 'ok'; // ...a fresh one works
    await clock.advance(timing.renewDeadlineMs);
    assert.deepEqual(a.lost, []);
    assert.equal(a.elector.leading, true);
  });
});

describe('release races', () => {
  it('releases even when a renewal is in flight at that moment', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(1_000);
    a.lock.latencyMs = 300; // the next renewal is answered slowly...
    await clock.advance(1_100); // ...and is in flight now
    const released = a.elector.release();
    await clock.advance(1_000); // the renewal's answer, then the release's own
    assert.equal(await released, true);
    assert.equal(store.obj?.spec.holderIdentity, '');
  });

  it('releases from its own renewal whose answer was lost', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(1_000);
    a.lock.mode = 'drop-reply'; // the renewal lands, its answer never comes
    await clock.advance(1_100);
    a.lock.mode = 'ok';
    const released = a.elector.release();
    await clock.advance(5_000);
    assert.equal(await released, true);
    assert.equal(store.obj?.spec.holderIdentity, '');
  });
});

describe('a Lease object new to the holder', () => {
  it('holds a Lease it had to create for D before the work may start', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    assert.equal(a.started[0]?.term.holdMs, timing.leaseDurationMs);
  });

  it('does not hold an existing Lease it takes over', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 3 }, 'go');
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    assert.equal(a.started[0]?.term.holdMs, 0);
  });

  it('when the Lease is deleted under its leader, the next holder starts work only after the old leader has fenced', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    const b = candidate(store, clock, 'b');
    await clock.advance(3_000);
    store.delete(); // an admin's kubectl delete lease
    await clock.advance(10_000);
    const bStart = b.started[0];
    assert.ok(bStart, 'b took the new Lease object');
    assert.equal(bStart.term.holdMs, timing.leaseDurationMs);
    const aLost = a.lost[0];
    assert.ok(aLost?.reason === 'deleted' || aLost?.reason === 'recreated', String(aLost?.reason));
    // a fences within G of noticing; b's work may start only at its anchor + D.
    assert.ok((aLost?.at ?? Infinity) + timing.fenceGraceMs < bStart.anchor.mono + bStart.term.holdMs);
  });

  it('holds a replacement object created free by someone else after one it saw', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: 'x', leaseDurationSeconds: 15, leaseTransitions: 0 }, 'x');
    const a = candidate(store, clock, 'a');
    await clock.advance(1_000);
    store.delete();
    store.create({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 }, 'admin');
    await clock.advance(1_000);
    assert.equal(a.started[0]?.term.holdMs, timing.leaseDurationMs);
  });
});

describe('many candidates', () => {
  it('losers of the race for a released Lease wait for the watch instead of reading', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    const others = ['b', 'c', 'd', 'e'].map((id) => candidate(store, clock, id));
    await clock.advance(5_000);
    const readsBefore = others.map((o) => o.lock.calls.filter((c) => c === 'get').length);
    assert.equal(await a.elector.release(), true);
    await clock.advance(3_000);
    assert.equal(others.filter((o) => o.elector.leading).length, 1, 'exactly one took it');
    const extraReads = others.map((o, i) => o.lock.calls.filter((c) => c === 'get').length - readsBefore[i]!);
    assert.deepEqual(extraReads, [0, 0, 0, 0], 'no read after losing the race');
  });
});

describe('the safety audit, at the elector (F3, F4, F8, F9, F12, F14)', () => {
  it('holds a recreated Lease for the longest lease duration seen on the object it replaced (F3)', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: 'old', leaseDurationSeconds: 40, renewTime: 'x', leaseTransitions: 5 }, 'old');
    const b = candidate(store, clock, 'b');
    await clock.advance(1_000);
    store.delete();
    await clock.advance(100);
    assert.equal(b.elector.leading, true, 'b recreated the Lease');
    assert.equal(b.started[0]?.term.holdMs, 40_000, 'held for the old 40 s lease, not its own 15 s');
  });

  it('takes a free record at once only if it has the shape of a release (F4)', async () => {
    for (const [spec, hold] of [
      [{ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 2 }, 0],
      [{ holderIdentity: '', leaseDurationSeconds: 30, leaseTransitions: 2 }, 30_000],
      [{}, timing.leaseDurationMs],
    ] as const) {
      const { clock, store } = setup();
      store.create({ ...spec }, 'admin');
      const a = candidate(store, clock, 'a');
      await clock.advance(100);
      assert.equal(a.elector.leading, true, JSON.stringify(spec));
      assert.equal(a.started[0]?.term.holdMs, hold, JSON.stringify(spec));
    }
  });

  it('holds an admin-cleared record after a holder it watched, for that holder’s duration (F4)', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(100);
    const b = candidate(store, clock, 'b');
    await clock.advance(1_000);
    store.overwrite({ holderIdentity: '' });
    await clock.advance(100);
    assert.equal(b.elector.leading, true);
    assert.equal(b.started[0]?.term.holdMs, timing.leaseDurationMs);
    await clock.advance(1_000);
    assert.equal(a.lost[0]?.reason, 'holder-changed');
  });

  it('releases after a metadata-only write since its last renewal (F8)', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(2_100);
    store.label('team', 'a');
    assert.equal(await a.elector.release(), true);
    assert.equal(store.obj?.spec.holderIdentity, '');
  });

  it('releases an acquire that landed unanswered when campaigning stops (F9)', async () => {
    const { clock, store } = setup();
    const lockA = store.lockFor('a');
    lockA.mode = 'drop-reply';
    const e = new Elector({ identity: 'a', timing, random: () => 0 }, lockA, clock, { startedLeading: () => {}, stoppedLeading: () => {} });
    void e.run();
    await clock.advance(100);
    assert.equal(store.obj?.spec.holderIdentity, 'a', 'the write landed');
    lockA.mode = 'ok';
    const stopped = e.stopCampaigning();
    await clock.advance(timing.renewDeadlineMs);
    assert.equal(await stopped, true);
    assert.equal(e.leading, false);
    assert.equal(store.obj?.spec.holderIdentity, '', 'released');
  });

  it('goes on with the fencing token past the objects it replaced (F12)', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 41 }, 'admin');
    const a = candidate(store, clock, 'a');
    await clock.advance(100);
    assert.equal(a.started[0]?.term.fencingToken, 42);
    const b = candidate(store, clock, 'b');
    await clock.advance(100);
    store.delete();
    await clock.advance(3_000);
    assert.equal(b.elector.leading, true);
    assert.equal(b.started[0]?.term.fencingToken, 43);
  });

  it('reports a renewal it adopted after a missed answer, so the watchdog gets its anchor (F14)', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(2_100);
    const before = a.renewals;
    a.lock.mode = 'drop-reply'; // the renewal lands, its answer never comes
    await clock.advance(2_000);
    a.lock.mode = 'ok';
    await clock.advance(4_000);
    assert.equal(a.elector.leading, true);
    assert.ok(a.renewals > before + 1, 'the adopted renewal was reported');
  });

  it('knows how long its lease is certainly valid, by both clocks (F5)', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(0);
    assert.equal(a.elector.validForMs(), timing.renewDeadlineMs);
    a.lock.mode = 'hang';
    await clock.advance(4_000);
    assert.equal(a.elector.validForMs(), timing.renewDeadlineMs - 4_000);
    clock.suspend(60_000);
    assert.equal(a.elector.validForMs(), 0, 'a host that slept has nothing left');
  });
});

describe('the new-Lease hold, bounded', () => {
  it('does not hold a recreated Lease it has seen for longer than the longest lease it replaced', async () => {
    const { clock, store } = setup();
    const a = candidate(store, clock, 'a');
    await clock.advance(100);
    const b = candidate(store, clock, 'b');
    const c = candidate(store, clock, 'c');
    await clock.advance(1_000);
    store.delete(); // a fences at its next renewal; b or c recreates and holds
    await clock.advance(100);
    const first = [b, c].find((p) => p.elector.leading)!;
    const other = first === b ? c : b;
    assert.equal(first.started[0]?.term.holdMs, timing.leaseDurationMs);
    await clock.advance(30_000);
    assert.equal(await first.elector.release(), true);
    await clock.advance(100);
    assert.equal(other.elector.leading, true, 'took over the release');
    assert.equal(other.started[0]?.term.holdMs, 0, 'the old object is long gone: no hold');
    assert.ok(a.lost[0]?.reason === 'deleted' || a.lost[0]?.reason === 'recreated');
  });
});

describe('elector: --coordinated', () => {
  function coordinated(store: MemoryStore, clock: FakeClock, identity: string) {
    const p = { started: [] as Array<{ term: Term; at: number }>, stepDowns: 0, elector: undefined as unknown as Elector };
    p.elector = new Elector({ identity, timing, random: () => 0, coordinated: true }, store.lockFor(identity), clock, {
      startedLeading: (term) => p.started.push({ term, at: clock.mono }),
      stoppedLeading: () => {},
      stepDownRequested: () => p.stepDowns++,
    });
    void p.elector.run();
    return p;
  }

  it('never creates the Lease, nor takes a free or expired one', async () => {
    const { clock, store } = setup();
    const c = coordinated(store, clock, 'c');
    await clock.advance(10_000);
    assert.equal(store.snapshot(), null, 'not created');
    store.create({ holderIdentity: '', leaseDurationSeconds: 1 }, 'someone');
    await clock.advance(30_000);
    assert.equal(store.obj?.spec.holderIdentity, '', 'a free Lease is not taken');
    assert.deepEqual(c.started, []);
  });

  it('claims a record the controller wrote naming it: its own duration, transitions + 1; at once after a release', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 4, strategy: 'OldestEmulationVersion' }, 'old');
    const c = coordinated(store, clock, 'c');
    await clock.advance(100);
    store.overwrite({ holderIdentity: 'c', leaseDurationSeconds: 5, renewTime: 'controller' });
    await clock.advance(100);
    assert.equal(c.started.length, 1);
    assert.equal(c.started[0]?.term.fencingToken, 5, 'leaseTransitions moves, so the token grows');
    assert.equal(c.started[0]?.term.holdMs, 0, 'the last record seen was a release');
    assert.equal(store.obj?.spec.leaseDurationSeconds, 15);
    assert.equal(store.obj?.spec.strategy, 'OldestEmulationVersion', 'kept');
  });

  it('named while the predecessor’s record is fresh: held until that record, seen unchanged, expires', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: 'old', leaseDurationSeconds: 15, renewTime: 'r1' }, 'old');
    const c = coordinated(store, clock, 'c');
    await clock.advance(3_000);
    store.overwrite({ renewTime: 'r2' }); // old renews, seen at 3 s
    await clock.advance(1_000);
    store.overwrite({ holderIdentity: 'c', leaseDurationSeconds: 5, renewTime: 'controller' }); // at 4 s
    await clock.advance(100);
    const hold = c.started[0]?.term.holdMs ?? 0;
    assert.ok(hold >= 15_000 - 1_000 - 100 && hold <= 15_000, `held ${hold} ms: until 3 s + D, not from the controller's word`);
  });

  it('a claim whose answer was lost, found landed: still held for the predecessor', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: 'old', leaseDurationSeconds: 15, renewTime: 'r1' }, 'old');
    const lock = store.lockFor('c');
    const started: Term[] = [];
    const c = new Elector({ identity: 'c', timing, random: () => 0, coordinated: true }, lock, clock, {
      startedLeading: (term) => started.push(term),
      stoppedLeading: () => {},
    });
    void c.run();
    await clock.advance(3_000);
    store.overwrite({ renewTime: 'r2' }); // old renews, seen at 3 s
    await clock.advance(1_000);
    lock.mode = 'drop-reply'; // the claim lands; its answer never comes
    store.overwrite({ holderIdentity: 'c', leaseDurationSeconds: 5, renewTime: 'controller' });
    await clock.advance(50);
    lock.mode = 'ok';
    await clock.advance(8_000);
    assert.equal(started.length, 1, 'it found its own claim and leads');
    assert.ok((started[0]?.holdMs ?? 0) >= 10_000, `held ${started[0]?.holdMs} ms for the predecessor seen at 3 s`);
  });

  it('a preferredHolder other than itself asks it to step down, once', async () => {
    const { clock, store } = setup();
    store.create({ holderIdentity: '', leaseDurationSeconds: 1 }, 'old');
    const c = coordinated(store, clock, 'c');
    await clock.advance(100);
    store.overwrite({ holderIdentity: 'c', leaseDurationSeconds: 5, renewTime: 'controller' });
    await clock.advance(100);
    store.overwrite({ preferredHolder: 'c' });
    await clock.advance(5_000);
    assert.equal(c.stepDowns, 0, 'itself preferred: nothing');
    store.overwrite({ preferredHolder: 'better' });
    await clock.advance(5_000);
    store.label('again', 'x');
    await clock.advance(5_000);
    assert.equal(c.stepDowns, 1);
    assert.equal(c.elector.leading, true, 'the run decides; the elector only says so');
  });
});
