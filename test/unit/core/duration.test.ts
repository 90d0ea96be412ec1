import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from '../../../src/core/duration.ts';
import { elapsedMs } from '../../../src/core/time.ts';

describe('time', () => {
  it('measures elapsed time as the larger of the monotonic and the wall clock', () => {
    assert.equal(elapsedMs({ mono: 0, wall: 0 }, { mono: 100, wall: 50 }), 100);
    assert.equal(elapsedMs({ mono: 0, wall: 0 }, { mono: 100, wall: 60_000 }), 60_000);
  });
});

describe('durations', () => {
  it('parses durations as Go writes them and refuses bare numbers', () => {
    assert.equal(parseDuration('1500ms'), 1500);
    assert.equal(parseDuration('15s'), 15_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1.5s'), 1500);
    for (const bad of ['15', '15x', '-1s', '', 's']) assert.equal(parseDuration(bad), undefined, bad);
  });

  it('formats them back the way the flags take them', () => {
    for (const [ms, text] of [
      [1500, '1500ms'],
      [15_000, '15s'],
      [120_000, '2m'],
      [90_000, '90s'],
    ] as const) {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    }
  });
});
