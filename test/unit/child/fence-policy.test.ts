import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, type FenceState } from '../../../src/child/fence-policy.ts';

const deadlines = { termAfterMs: 2000, killAfterMs: 2500, fenceGraceMs: 500, confirmBudgetMs: 500, checkMs: 100 };
const base: FenceState = { anchor: { mono: 0, wall: 0 }, deadlines, imposedKillAt: Infinity, termSent: false, childExited: false, treeRunning: () => true };
const at = (mono: number, wall = mono) => ({ mono, wall });

describe('the watchdog’s decision', () => {
  const rows: Array<[string, Partial<FenceState>, { mono: number; wall: number }, ReturnType<typeof decide>]> = [
    ['a fresh lease: look again within the check interval', {}, at(0), { do: 'wait', ms: 100 }],
    ['just before R: wait exactly until R', {}, at(1950), { do: 'wait', ms: 50 }],
    ['at R: SIGTERM', {}, at(2000), { do: 'term' }],
    ['SIGTERM sent: wait until R + G', { termSent: true }, at(2100), { do: 'wait', ms: 100 }],
    ['at R + G: SIGKILL', { termSent: true }, at(2500), { do: 'kill', forced: true }],
    ['a stop with a grace ending earlier', { termSent: true, imposedKillAt: 1200 }, at(1200), { do: 'kill', forced: true }],
    [
      'asked to stop, the child gone, nothing left running: confirm now',
      { termSent: true, childExited: true, treeRunning: () => false },
      at(300),
      { do: 'kill', forced: false },
    ],
    ['the child gone but a grandchild runs: wait', { termSent: true, childExited: true }, at(300), { do: 'wait', ms: 100 }],
    ['the wall clock jumped (suspend): SIGTERM at once', {}, at(10, 60_000), { do: 'term' }],
    ['the wall clock jumped past R + G with SIGTERM sent: SIGKILL at once', { termSent: true }, at(10, 60_000), { do: 'kill', forced: true }],
    ['the wall clock stepped back: the monotonic clock still counts', {}, at(2000, -5000), { do: 'term' }],
    ['no anchor yet (a stop before any): only the imposed kill', { anchor: null, termSent: true, imposedKillAt: 500 }, at(100), { do: 'wait', ms: 100 }],
  ];
  for (const [what, s, now, want] of rows) it(what, () => assert.deepEqual(decide({ ...base, ...s }, now, 100), want));
});
