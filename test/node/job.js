// The child the node suite runs under leader-run in each Pod (the image's `node job.js`):
// it appends `<epoch ms> start|exit <pod>` to a ledger on the node's disk, so the test sees
// every term of every replica on one clock. It exits promptly on SIGTERM, as a job should.
import fs from 'node:fs';
import os from 'node:os';

const ledger = process.env.LEDGER ?? '/ledger/ledger.log';
const me = os.hostname();
const note = (what) => fs.appendFileSync(ledger, `${Date.now()} ${what} ${me} ${process.pid}\n`);
note('start');
const beat = setInterval(() => note('beat'), 1000);
process.on('SIGTERM', () => {
  clearInterval(beat);
  note('exit');
  process.exit(0);
});
