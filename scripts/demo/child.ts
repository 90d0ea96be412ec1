/**
 * The demo's "work", run by leader-run while it leads: a line a second on stdout, and signs of
 * life in a ledger (the line format of test/fixtures/worker.ts, so `overlaps` can read it) from
 * which the demo proves that no two of these ever ran at once.
 *
 *   node child.ts LEDGER
 */
import { appendFileSync } from 'node:fs';

const ledger = process.argv[2] ?? '';
const name = process.env['LEADER_RUN_IDENTITY'] ?? String(process.pid);
const token = process.env['LEADER_RUN_FENCING_TOKEN'] ?? '?';
// The host's monotonic clock is shared by all processes, so lives compare across children.
const mono = (): number => Number(process.hrtime.bigint()) / 1e6;

function write(ev: string, extra: Record<string, unknown> = {}): void {
  if (!ledger) return;
  try {
    appendFileSync(ledger, `${JSON.stringify({ ev, name, pid: process.pid, mono: mono(), wall: Date.now(), ...extra })}\n`);
  } catch {
    // The demo was interrupted and removed its directory: nobody is left to read the ledger.
  }
}

write('start', { token });
console.log(`started with fencing token ${token}`);
// Frequent beats bound how long after its last sign of life a SIGKILLed child could have lived.
const beat = setInterval(() => write('beat'), 25);
let seconds = 0;
const tick = setInterval(() => console.log(`working… ${++seconds}s`), 1000);

process.on('SIGTERM', () => {
  clearInterval(beat);
  clearInterval(tick);
  console.log('SIGTERM: finished cleanly');
  write('stop', { why: 'sigterm' });
  // A graceful stop counts as success: leader-run passes this status on (or 75 if fenced).
  process.exit(0);
});
