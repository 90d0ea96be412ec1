/**
 * The package as a user installs it: `npm pack` of this build, installed into an empty
 * project with nothing else. The bundle must run on its own (no runtime dependencies), its
 * CLI must lead and run a child against the real apiserver, and its types must compile for a
 * strict consumer with skipLibCheck off and no @types package.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sharedCluster } from '../support/cluster.ts';
import { FAST, readLedger, tempDir, uniqueName, WORKER } from '../support/leader-run.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const npm = (args: string[], cwd: string): string =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });

describe('the packed package', () => {
  it('installs alone, runs a real election from its bin, imports as a library, and type-checks strictly', async () => {
    const info = await sharedCluster();
    const dir = tempDir();
    // --ignore-scripts: dist/ is built already; rebuilding it would pull it from under the other tests.
    const tgz = npm(['pack', '--ignore-scripts', '--pack-destination', dir, repo], dir).trim().split('\n').at(-1)!;
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
    npm(['install', '--offline', path.join(dir, tgz)], dir);
    const installed = fs.readdirSync(path.join(dir, 'node_modules')).filter((n) => !n.startsWith('.'));
    assert.deepEqual(installed, ['leader-run'], 'no runtime dependencies');

    const bin = path.join(dir, 'node_modules', '.bin', 'leader-run');
    const run = (args: string[]) => execFileSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(run(['--version']), /^\d+\.\d+\.\d+\n$/);

    const ledger = path.join(dir, 'ledger');
    run([
      '--kubeconfig',
      info.kubeconfigs.candidate,
      '--lock-name',
      uniqueName('packed'),
      ...FAST,
      '--',
      process.execPath,
      WORKER,
      '--ledger',
      ledger,
      '--exit-after',
      '200',
    ]);
    assert.ok(
      readLedger(ledger).some((l) => l.ev === 'stop'),
      'the child ran to its end under the installed bin',
    );

    const keys = execFileSync(process.execPath, ['--input-type=module', '-e', 'console.log(Object.keys(await import("leader-run")).join(","))'], {
      cwd: dir,
      encoding: 'utf8',
    });
    assert.equal(keys.trim(), 'ApiError,ConfigError,LeaderElection,LeaderElectionError');

    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          skipLibCheck: false,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2023',
          lib: ['es2023'],
          types: [],
          noEmit: true,
        },
        files: ['consumer.ts'],
      }),
    );
    fs.writeFileSync(
      path.join(dir, 'consumer.ts'),
      `import { ApiError, ConfigError, LeaderElection, LeaderElectionError, type LeadingEvent } from 'leader-run';
const e = await LeaderElection.create({ lockName: 'x', stopTimeoutMs: 5000 });
e.on('started-leading', async ({ term, signal }: LeadingEvent) => {
  while (!signal.aborted && term.validForMs() > 1000) await new Promise((r) => setTimeout(r, 10));
});
e.on('error', (err: ApiError) => err.call?.verb);
try {
  await e.start();
} catch (x) {
  if (x instanceof LeaderElectionError) console.log(x.status, x.kind);
  if (x instanceof ConfigError) console.log(x.field);
}
declare function setTimeout(fn: (v: unknown) => void, ms: number): unknown;
declare const console: { log(...a: unknown[]): void };
`,
    );
    execFileSync(process.execPath, [path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8' });
  });
});
