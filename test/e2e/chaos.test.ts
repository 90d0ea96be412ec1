/**
 * A short chaos run on every `npm test`: three candidates on one Lease of a private cluster,
 * one seeded fault per round (signals to the leader, its network cut or reset, the apiserver
 * frozen or killed, the Lease deleted or overwritten by an admin). No two children may ever
 * run at once, and nothing may be left behind. Then six candidates on a --slots 3 semaphore
 * (test/chaos/slots.ts): never more than three children, never two in one slot. The seed is printed; rerun a failure with
 * `npm run chaos -- --rounds 20 --seed <seed>`. LEADER_RUN_CHAOS_SEED, _ROUNDS, _SLOT_ROUNDS and _FAULTS
 * (a comma-separated list of fault kinds; default all) override the defaults.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnGuarded } from '../support/cluster.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const rounds = Number(process.env.LEADER_RUN_CHAOS_ROUNDS ?? 20);
// A new seed each run widens coverage over time; the seed is in the output to replay it.
const seed = process.env.LEADER_RUN_CHAOS_SEED ?? String(Date.now() % 1_000_000);
const faults = process.env.LEADER_RUN_CHAOS_FAULTS ? ['--faults', process.env.LEADER_RUN_CHAOS_FAULTS] : [];

/** Runs scripts/chaos.ts in a process of its own, guarded (it starts and stops its own
 *  cluster, and dies with us); resolves with its summary line, exit code and last lines. */
async function chaos(args: string[]): Promise<{ summary: string; code: number | null; context: string }> {
  const proc = spawnGuarded(process.execPath, [path.join(repo, 'scripts', 'chaos.ts'), ...args, '--seed', seed], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
  let output = '';
  proc.stdout?.setEncoding('utf8').on('data', (s: string) => (output += s));
  proc.stderr?.setEncoding('utf8').on('data', (s: string) => (output += s));
  const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  const lines = output.trimEnd().split('\n');
  const summary = lines.findLast((l) => l.startsWith('rounds=')) ?? '';
  return { summary, code, context: `\n--- chaos ${args.join(' ')} output (seed ${seed}) ---\n${lines.slice(-80).join('\n')}` };
}

it(`survives ${rounds} rounds of chaos with no overlap and nothing left over (seed ${seed})`, { timeout: 360_000 }, async (t) => {
  const r = await chaos(['--rounds', String(rounds), ...faults]);
  t.diagnostic(`seed ${seed}: ${r.summary}`);
  assert.equal(r.summary, `rounds=${rounds} overlaps=0 overlap_ms=0 leftovers=0`, `chaos found problems${r.context}`);
  assert.equal(r.code, 0, `chaos exited with ${r.code}${r.context}`);
});

const slotRounds = Number(process.env.LEADER_RUN_CHAOS_SLOT_ROUNDS ?? 10);

it(`--slots 3 with 6 candidates survives ${slotRounds} rounds: never more than 3 children, never two in one slot (seed ${seed})`, {
  timeout: 360_000,
}, async (t) => {
  const r = await chaos(['--slots', '3', '--rounds', String(slotRounds)]);
  t.diagnostic(`seed ${seed}: ${r.summary}`);
  const clean = new RegExp(`^rounds=${slotRounds} slots=3 most_at_once=[0-3] same_slot_overlaps=0 leftovers=0 leases_held=0$`);
  assert.match(r.summary, clean, `slot chaos found problems${r.context}`);
  assert.equal(r.code, 0, `slot chaos exited with ${r.code}${r.context}`);
});
