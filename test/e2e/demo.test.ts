/**
 * `npm run demo` is the README's first command for a newcomer, so it must work unattended:
 * with its output not a terminal (as in CI) it plays all four acts, ends by itself with
 * status 0 and its summary, prints plain lines (no cursor control), and leaves no process or
 * directory behind. It starts its own control plane, so it runs for about a minute.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnGuarded } from '../support/cluster.ts';
import { until } from '../support/leader-run.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Pids whose command line mentions `text`. */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(text)) found.push(`${pid}: ${cmd.slice(0, 160)}`);
    } catch {}
  }
  return found;
}

it('npm run demo plays its four acts, proves one child at a time, and cleans up', { timeout: 10 * 60_000 }, async () => {
  // --no-build: other tests run dist/ meanwhile, so the demo must not rewrite it.
  const demo = spawnGuarded(process.execPath, [path.join(repo, 'scripts', 'demo.ts'), '--no-build'], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  demo.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  demo.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    demo.on('close', (c, s) => resolve({ code: c, signal: s })),
  );
  const transcript = `--- stdout ---\n${out}\n--- stderr ---\n${err}`;

  assert.equal(code, 0, `the demo ended with ${signal ?? `status ${code}`}\n${transcript}`);
  assert.match(out, /^Summary$/m, transcript);
  for (const act of ['Act 1', 'Act 2', 'Act 3', 'Act 4']) assert.match(out, new RegExp(`^  ${act}  `, 'm'), transcript);
  assert.match(out, /no two children ever ran at once/, transcript);
  assert.match(out, /Result: OK/, transcript);
  assert.ok(!out.includes('\x1b['), `no cursor or colour codes when stdout is not a terminal\n${transcript}`);

  // Nothing left behind: its cluster's directory is gone and no process names it any more
  // (the spawn guards' watchers notice their program is gone within a second).
  const dir = /^.*control plane up at \S+ in [\d.]+ s \(in (.+)\)$/m.exec(out)?.[1];
  assert.ok(dir, `the demo names its cluster directory\n${transcript}`);
  assert.equal(fs.existsSync(dir), false, `${dir} was removed`);
  await until(() => processesMentioning(dir).length === 0, 5000, `no process left that names ${dir}`).catch(() => {
    assert.fail(`processes left behind:\n${processesMentioning(dir).join('\n')}`);
  });
});
