import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';

const heap = new URL('../../../src/core/heap.ts', import.meta.url).href;

describe('heap', () => {
  it('gives back the young generation that start-up grew, and leaves no gc behind', () => {
    // In a process of its own: it changes V8 flags for a moment.
    const script = `
      import { getHeapSpaceStatistics } from 'node:v8';
      import { runInNewContext } from 'node:vm';
      import { collectStartupGarbage } from ${JSON.stringify(heap)};
      const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').physical_space_size;
      let keep = [];
      for (let i = 0; i < 400000; i++) {
        keep.push({ i, s: 'x' + i });
        if (keep.length > 50000) keep = [];
      }
      keep = null;
      const grown = young();
      collectStartupGarbage(0);
      setTimeout(() => console.log(JSON.stringify({ grown, after: young(), gc: typeof globalThis.gc, inNewContext: runInNewContext('typeof gc') })), 100);
    `;
    const r = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as Record<string, unknown>;
    assert.ok((r['grown'] as number) >= 2 * 1024 * 1024, `the young generation grew to ${r['grown']} bytes only`);
    assert.ok((r['after'] as number) < (r['grown'] as number) / 2, `${r['grown']} → ${r['after']} bytes`);
    assert.equal(r['gc'], 'undefined');
    assert.equal(r['inNewContext'], 'undefined', '--expose-gc is off again');
  });
});
