/** The tests' tiny C programs (test/fixtures/native), compiled with gcc on first use into a
 *  cache outside the repository, keyed by their source. gcc is required: without it the
 *  tests that need these programs fail, loudly, rather than being skipped. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/native');

export type NativeFixture = 'zthread' | 'cworker' | 'rootworker' | 'ptyjob' | 'hopper';

/** The path of the compiled fixture. */
export function nativeFixture(name: NativeFixture): string {
  const sources = [`${name}.c`, 'ledger.h'].map((f) => fs.readFileSync(path.join(SRC, f)));
  const key = createHash('sha256').update(Buffer.concat(sources)).digest('hex').slice(0, 16);
  const cache = process.env['LEADER_RUN_CACHE'] ?? path.join(process.env['XDG_CACHE_HOME'] ?? path.join(os.homedir(), '.cache'), 'leader-run');
  const out = path.join(cache, 'fixtures', key, name);
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-pthread', '-o', tmp, path.join(SRC, `${name}.c`)], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (e) {
    throw new Error(`cannot compile test/fixtures/native/${name}.c with gcc (install gcc: apt-get install gcc): ${(e as Error).message}`);
  }
  fs.renameSync(tmp, out);
  return out;
}
