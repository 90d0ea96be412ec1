// `npm run chaos -- --rounds N --seed S [--candidates C] [--no-peer] [--faults K1,K2] [--keep]`: leader-run
// candidates and a client-go peer on one Lease of a private cluster, a seeded fault every round; prints what it saw and ends
// with `rounds=N overlaps=K overlap_ms=M leftovers=L`. Exits 1 on any overlap or leftover
// (or a stuck run), 130 when interrupted. See test/chaos/chaos.ts.
// With `--slots N` (default 6 candidates): the same for a --slots semaphore, ending with
// `rounds=R slots=N most_at_once=M same_slot_overlaps=0 leftovers=0 leases_held=0`; see test/chaos/slots.ts.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FAULT_KINDS, type FaultKind, runChaos } from '../test/chaos/chaos.ts';
import { failedCount, report } from '../test/chaos/report.ts';
import { runSlotChaos, SLOT_FAULTS, type SlotFault, slotReport } from '../test/chaos/slots.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function usage(msg: string): never {
  console.error(
    `chaos: ${msg}\nusage: npm run chaos -- --rounds N [--seed S] [--candidates C] [--no-peer] [--faults K1,K2,...] [--keep] [--slots N]\n` +
      `fault kinds: ${FAULT_KINDS.join(', ')}\nwith --slots: ${SLOT_FAULTS.join(', ')}`,
  );
  process.exit(64);
}

let values: { rounds?: string; seed?: string; candidates?: string; faults?: string; keep?: boolean; 'no-peer'?: boolean; slots?: string };
try {
  ({ values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '30' },
      seed: { type: 'string' },
      candidates: { type: 'string' },
      slots: { type: 'string' },
      faults: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'no-peer': { type: 'boolean', default: false },
    },
  }));
} catch (e) {
  usage((e as Error).message);
}
const rounds = Number(values.rounds);
const slots = values.slots === undefined ? undefined : Number(values.slots);
if (slots !== undefined && (!Number.isInteger(slots) || slots < 1)) usage(`--slots must be a positive integer, not ${values.slots}`);
const candidates = Number(values.candidates ?? (slots ? 6 : 3));
if (!Number.isInteger(rounds) || rounds < 1) usage(`--rounds must be a positive integer, not ${values.rounds}`);
if (!Number.isInteger(candidates) || candidates < 2) usage(`--candidates must be an integer of at least 2, not ${values.candidates}`);
const seed = values.seed ?? String(Date.now() % 1_000_000);
const kinds = (values.faults ?? '').split(',').filter(Boolean) as FaultKind[];
for (const k of kinds) if (!(slots ? (SLOT_FAULTS as readonly string[]) : FAULT_KINDS).includes(k)) usage(`unknown fault kind ${k}`);

// The CLI runs dist/: a missing or stale build would test nothing, or old code.
const newest = (dir: string): number =>
  Math.max(
    0,
    ...fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => fs.statSync(path.join(e.parentPath, e.name)).mtimeMs),
  );
const dist = path.join(repo, 'dist');
if (!fs.existsSync(dist) || newest(dist) === 0) usage('dist/ is missing: run `npm run build` first');
if (newest(path.join(repo, 'src')) > newest(dist)) console.error('chaos: warning: src/ is newer than dist/ — run `npm run build`');

// Registered before anything is spawned: the first interruption stops the run and cleans
// up; a second one exits at once (the spawn guards still kill what we started).
const ac = new AbortController();
let interrupts = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (++interrupts > 1) process.exit(130);
    console.error(`\nchaos: ${sig}: stopping and cleaning up`);
    ac.abort();
  });
}

if (slots) {
  const r = await runSlotChaos({ rounds, seed, slots, candidates, kinds: kinds as unknown as SlotFault[], signal: ac.signal });
  for (const line of slotReport(r, slots)) console.log(line);
  const bad = r.failed || r.sameSlot.length > 0 || r.mostAtOnce > slots || r.leftovers.length > 0 || r.leasesHeld.length > 0;
  process.exit(ac.signal.aborted ? 130 : bad ? 1 : 0);
}

const result = await runChaos({
  rounds,
  seed,
  candidates,
  peer: !values['no-peer'],
  keep: values.keep ?? false,
  kinds,
  signal: ac.signal,
  out: (l) => console.log(l),
});
for (const line of report(result)) console.log(line);
process.exitCode = result.interrupted ? 130 : failedCount(result) > 0 || result.failed ? 1 : 0;
