// `npm run build`: what leader-run runs, bundled by esbuild into dist/, and the library's
// type declarations from tsc. Bundling matters for start-up: importing
// @kubernetes/client-node as published loads its whole generated API (~0.3 s, ~50 MB);
// the bundle keeps only what we use.
import { spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(repo);
// Built aside and swapped in, so a leader-run starting meanwhile never finds dist/ half-made.
rmSync('dist.new', { recursive: true, force: true });

await build({
  entryPoints: { cli: 'src/cli/main.ts', watchdog: 'src/child/watchdog.ts', index: 'src/index.ts' },
  outdir: 'dist.new',
  bundle: true,
  splitting: true, // the Kubernetes side is a chunk of its own, loaded only to campaign
  format: 'esm',
  platform: 'node',
  target: 'node22',
  packages: 'bundle',
  chunkNames: '[name]-[hash]', // beside watchdog.js, which child.ts finds next to itself
  // Some bundled dependencies are CommonJS and call require() for Node's own modules.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});

const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', 'dist.new/types'], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
rmSync('dist.old', { recursive: true, force: true });
if (existsSync('dist')) renameSync('dist', 'dist.old');
renameSync('dist.new', 'dist');
rmSync('dist.old', { recursive: true, force: true });
