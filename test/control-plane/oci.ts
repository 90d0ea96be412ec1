// Images for the test node without a registry or a builder daemon: a rootfs directory made
// here, written as a one-layer OCI image-layout archive that `ctr images import` takes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
}

function sha256File(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Writes `out` (an OCI image-layout tar) holding `rootfs` as one uncompressed layer, named
 * `ref` through the `io.containerd.image.name` annotation. Returns the layer's size in bytes.
 */
export function writeOciArchive(rootfs: string, ref: string, out: string, config: ImageConfig): { layerBytes: number } {
  const layout = `${out}.layout`;
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.rmSync(layout, { recursive: true, force: true });
  fs.mkdirSync(blobs, { recursive: true });
  const layer = path.join(layout, 'layer.tar');
  // Owned by root as a Dockerfile's COPY and RUN (as root) leave them; sorted for a stable digest.
  execFileSync('tar', ['-C', rootfs, '--numeric-owner', '--owner=0', '--group=0', '--sort=name', '-cf', layer, '.']);
  const layerDigest = sha256File(layer);
  const layerBytes = fs.statSync(layer).size;
  fs.renameSync(layer, path.join(blobs, layerDigest));
  const blob = (json: unknown): { digest: string; size: number } => {
    const data = Buffer.from(JSON.stringify(json));
    const hex = createHash('sha256').update(data).digest('hex');
    fs.writeFileSync(path.join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const cfg = blob({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...config },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
  });
  const manifest = blob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layerBytes }],
  });
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref },
        },
      ],
    }),
  );
  execFileSync('tar', ['-C', layout, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  fs.rmSync(layout, { recursive: true, force: true });
  return { layerBytes };
}

/** A busybox userland (Debian's busybox-static): /bin/sh, /usr/bin/env and the other applets,
 *  root and `node` (uid 1000, as in the node images) in /etc/passwd, a sticky /tmp. */
export function busyboxRootfs(root: string): void {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!busybox) throw new Error('busybox is not installed (apt-get install busybox-static)');
  for (const d of ['bin', 'usr/bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'home/node']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    if (a === 'busybox') continue;
    fs.symlinkSync('busybox', path.join(root, 'bin', a));
  }
  fs.symlinkSync('/bin/busybox', path.join(root, 'usr', 'bin', 'env'));
  fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nnode:x:1000:\n');
  fs.chownSync(path.join(root, 'home', 'node'), 1000, 1000);
}

/** Copies a dynamically linked executable to `dest` inside `root`, with the libraries `ldd` names
 *  at the same paths. */
export function copyWithLibs(root: string, exe: string, dest: string): void {
  fs.mkdirSync(path.dirname(path.join(root, dest)), { recursive: true });
  fs.copyFileSync(exe, path.join(root, dest));
  fs.chmodSync(path.join(root, dest), 0o755);
  const ldd = execFileSync('ldd', [exe], { encoding: 'utf8' });
  for (const m of ldd.matchAll(/(\/\S+) \(0x/g)) {
    const lib = m[1]!;
    const to = path.join(root, lib);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), to);
  }
}
