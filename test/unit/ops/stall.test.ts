import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StallDetector } from '../../../src/ops/stall.ts';

describe('stall detector', () => {
  it('reports a stall of at least the threshold for a while after it ends', () => {
    let now = 0;
    const d = new StallDetector(1000, 2000, () => now);
    const ticksUntil = (t: number) => {
      while (now + 100 <= t) {
        now += 100;
        d.tick();
      }
    };
    d.tick(); // next expected at 100
    ticksUntil(1000);
    assert.equal(d.problem(), undefined);
    now += 1200; // the next tick comes 1100ms late
    d.tick();
    assert.match(d.problem() ?? '', /stuck for 1100ms/);
    ticksUntil(now + 1900);
    assert.match(d.problem() ?? '', /stuck/, 'still within 2s of the stall');
    ticksUntil(now + 200);
    assert.equal(d.problem(), undefined, 'forgotten 2s after it ended');
    now += 900; // 800ms late: below the threshold
    d.tick();
    assert.equal(d.problem(), undefined);
  });
});
