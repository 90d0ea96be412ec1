import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Campaign } from '../../../src/election/campaign.ts';
import type { Timing } from '../../../src/election/timing.ts';
import { FakeClock, MemoryStore } from '../../support/fake.ts';

const timing: Timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, fenceGraceMs: 2_000 };

function candidate(stores: MemoryStore[], clock: FakeClock, identity: string) {
  const p = { won: [] as number[], lost: 0, campaign: undefined as unknown as Campaign };
  p.campaign = new Campaign(
    { identity, timing, random: () => 0 },
    stores.map((s) => s.lockFor(identity)),
    clock,
    {
      startedLeading: (_term, _anchor, _won, slot) => p.won.push(slot),
      stoppedLeading: () => p.lost++,
    },
  );
  void p.campaign.run();
  return p;
}

describe('campaign over slots', () => {
  it('each candidate holds one slot at most; a third waits, and takes the slot that frees', async () => {
    const clock = new FakeClock();
    const stores = [new MemoryStore(clock), new MemoryStore(clock)];
    const a = candidate(stores, clock, 'a');
    await clock.advance(100);
    const b = candidate(stores, clock, 'b');
    await clock.advance(100);
    const c = candidate(stores, clock, 'c');
    await clock.advance(5_000);
    assert.equal(a.won.length, 1);
    assert.equal(b.won.length, 1);
    assert.notEqual(a.won[0], b.won[0], 'two slots, two holders');
    assert.deepEqual(c.won, []);
    assert.deepEqual(stores.map((s) => s.obj?.spec.holderIdentity).sort(), ['a', 'b'], 'a holds only its own slot: the other slot it campaigned for went to b');

    assert.equal(await b.campaign.release(), true);
    await clock.advance(100);
    assert.deepEqual(c.won, b.won, 'the freed slot, at once');
    assert.equal(a.won.length, 1, 'a does not take a second one');
  });

  it('a candidate whose writes win two slots keeps one and gives the other back', async () => {
    const clock = new FakeClock();
    const stores = [new MemoryStore(clock), new MemoryStore(clock)];
    // Both Leases free: its first tries go out together and both land.
    const a = candidate(stores, clock, 'a');
    await clock.advance(100);
    assert.deepEqual(a.won, [0]);
    assert.equal(stores[0]!.obj?.spec.holderIdentity, 'a');
    assert.equal(stores[1]!.obj?.spec.holderIdentity, '', 'released');
    assert.equal(stores[1]!.obj?.spec.leaseDurationSeconds, 1, 'as a release, so the next takes it at once');
    assert.equal(a.campaign.leading, true);
  });

  it('stopCampaigning before leading stops every slot', async () => {
    const clock = new FakeClock();
    const stores = [new MemoryStore(clock), new MemoryStore(clock)];
    const a = candidate(stores, clock, 'a');
    const b = candidate(stores, clock, 'b');
    await clock.advance(100);
    const c = candidate(stores, clock, 'c');
    await clock.advance(100);
    await c.campaign.stopCampaigning();
    assert.equal(await b.campaign.release(), true);
    await clock.advance(20_000);
    assert.deepEqual(c.won, [], 'stopped: it takes nothing');
    assert.equal(a.lost, 0);
  });
});
