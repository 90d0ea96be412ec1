// The images the node suite runs. examples/Dockerfile is built as written, by Debian's podman
// (private storage, no network): its `FROM node:24-slim` is an image made here under that
// name, holding what the official one gives the Dockerfile (node 24 — npm's `node` package,
// the version this repository develops on — npm, /bin/sh, a `node` user with uid 1000).
// The result is saved as an OCI archive for `ctr images import`.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeImage } from './node.ts';
import { ensureHostPackages } from './node.ts';
import { busyboxRootfs, copyWithLibs, writeOciArchive } from './oci.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BASE_REF = 'docker.io/library/node:24-slim';

/** The Dockerfile's FROM, and the image name examples/deployment.yaml uses. */
export function exampleNames(): { from: string; image: string } {
  const dockerfile = fs.readFileSync(path.join(REPO, 'examples', 'Dockerfile'), 'utf8');
  const from = /^FROM\s+(\S+)/m.exec(dockerfile)?.[1];
  const image = /^\s*image:\s*(\S+)/m.exec(fs.readFileSync(path.join(REPO, 'examples', 'deployment.yaml'), 'utf8'))?.[1];
  if (!from || !image) throw new Error('examples/Dockerfile has no FROM, or examples/deployment.yaml no image');
  return { from, image };
}

function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The stand-in for node:24-slim, as an OCI archive. */
export function baseImage(work: string): string {
  const root = path.join(work, 'base-root');
  busyboxRootfs(root);
  copyWithLibs(root, fs.realpathSync(path.join(REPO, 'node_modules', 'node', 'bin', 'node')), '/usr/local/bin/node');
  // npm, as the official image has it in /usr/local (the host's copy: its version may differ).
  const npmDir = fs.realpathSync(path.join(path.dirname(fs.realpathSync(sh('sh', ['-c', 'command -v npm']).trim())), '..'));
  fs.cpSync(npmDir, path.join(root, 'usr', 'local', 'lib', 'node_modules', 'npm'), { recursive: true, dereference: true });
  fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr', 'local', 'bin', 'npm'));
  const out = path.join(work, 'base.tar');
  writeOciArchive(root, BASE_REF, out, { Cmd: ['node'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_VERSION=24'] });
  fs.rmSync(root, { recursive: true, force: true });
  return out;
}

/**
 * Builds examples/Dockerfile with podman in `work` (context: `npm pack`'s tarball and
 * `jobJs` as job.js) and returns it as an OCI archive named like examples/deployment.yaml's
 * image. Podman's storage lives in `work`; the caller removes `work` (after unmounting).
 */
export function buildExampleImage(work: string, jobJs: string): NodeImage & { bytes: number; buildMs: number } {
  const t0 = performance.now();
  ensureHostPackages();
  // podman writes a blob-info cache and network dir outside --root; ours go again afterwards.
  const outside = ['/var/lib/containers', '/run/containers'].filter((p) => !fs.existsSync(p));
  const { from, image } = exampleNames();
  let archive = '';
  let bytes = 0;
  try {
    if (from !== 'node:24-slim') throw new Error(`examples/Dockerfile builds FROM ${from}; the node suite makes only node:24-slim`);
    fs.mkdirSync(work, { recursive: true });
    const ctx = path.join(work, 'context');
    fs.mkdirSync(ctx);
    // The dist/ built already (npm test's build step, or test:node's): prepack would rebuild it
    // under tests that are running it.
    if (!fs.existsSync(path.join(REPO, 'dist', 'cli.js'))) throw new Error('dist/ is not built: run npm run build');
    sh('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', ctx], { cwd: REPO });
    fs.copyFileSync(jobJs, path.join(ctx, 'job.js'));
    const podman = [
      `--root=${path.join(work, 'podman', 'root')}`,
      `--runroot=${path.join(work, 'podman', 'run')}`,
      '--cgroup-manager=cgroupfs',
      '--events-backend=none',
      '--runtime=/usr/sbin/runc',
      '--storage-driver=overlay',
    ];
    const base = baseImage(work);
    const loaded = sh('podman', [...podman, 'load', '--quiet', '-i', base]);
    const id = /([0-9a-f]{64})|Loaded image(?:\(s\))?: (\S+)/.exec(loaded);
    sh('podman', [...podman, 'tag', id?.[1] ?? id?.[2] ?? BASE_REF, BASE_REF]);
    sh('podman', [...podman, 'build', '--pull=never', '--network=none', '--layers=false', '-t', image, '-f', path.join(REPO, 'examples', 'Dockerfile'), ctx]);
    archive = path.join(work, 'image.tar');
    sh('podman', [...podman, 'save', '--format=oci-archive', '-o', archive, image]);
    bytes = Number(sh('podman', [...podman, 'image', 'inspect', '--format', '{{.Size}}', image]).trim());
  } finally {
    // podman's overlay mounts live under work; the caller removes work.
    execFileSync('sh', ['-c', `grep -o ' ${work}/[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    for (const p of outside) fs.rmSync(p, { recursive: true, force: true });
  }
  return { ref: image, archive, bytes, buildMs: Math.round(performance.now() - t0) };
}
