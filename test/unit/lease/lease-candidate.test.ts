import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CANDIDATE_NAME, compareVersions, VERSION, versionOf } from '../../../src/lease/lease-candidate.ts';

describe('LeaseCandidate versions and names', () => {
  it('versions are strict X.Y.Z, compared by number', () => {
    assert.ok(VERSION.test('1.36.0'));
    for (const bad of ['1.36', 'v1.36.0', '1.36.0-rc.1', '01.2.3']) assert.ok(!VERSION.test(bad), bad);
    assert.ok(compareVersions('1.35.9', '1.36.0') < 0);
    assert.ok(compareVersions('1.10.0', '1.9.0') > 0, 'numbers, not strings');
    assert.equal(compareVersions('1.36.0', '1.36.0'), 0);
  });

  it('a gitVersion gives its X.Y.Z', () => {
    assert.equal(versionOf('v1.36.3'), '1.36.3');
    assert.equal(versionOf('v1.31.4+k3s1'), '1.31.4');
    assert.equal(versionOf('master'), undefined);
  });

  it('a candidate name is what the API accepts as one (the default identity fits)', () => {
    assert.ok(CANDIDATE_NAME.test('host-1_0123abcd'));
    assert.ok(!CANDIDATE_NAME.test('pod/name'));
  });
});
