// `npm run cluster:up` / `npm run cluster:down`: a long-lived local control
// plane in <repo>/.cluster/ for trying leader-run by hand.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterInfo } from './cluster.ts';
import { attachCluster, pidAlive, rssKiB, startCluster, stopDetached } from './cluster.ts';
import { reapNodes } from './node.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = path.join(repo, '.cluster');
const infoPath = path.join(dir, 'cluster.json');

function readInfo(): ClusterInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(infoPath, 'utf8')) as ClusterInfo;
  } catch {
    return undefined;
  }
}

function printPaths(info: ClusterInfo): void {
  const rel = (p: string): string => path.relative(process.cwd(), p) || p;
  console.log(`server:     ${info.server}`);
  console.log(`admin:      ${rel(info.kubeconfigs.admin)}`);
  console.log(`candidate:  ${rel(info.kubeconfigs.candidate)}   (user leader-run-candidate, Role leader-run)`);
  console.log(`nobody:     ${rel(info.kubeconfigs.nobody)}   (no permissions)`);
  console.log(`logs:       ${rel(info.logs.etcd)}, ${rel(info.logs.apiserver)}`);
  console.log(`try:        KUBECONFIG=${rel(info.kubeconfigs.admin)} kubectl get leases`);
}

async function up(): Promise<void> {
  const existing = readInfo();
  if (existing && pidAlive(existing.etcdPid) && pidAlive(existing.apiserverPid)) {
    await attachCluster(infoPath);
    console.log(
      `a cluster is already running in ${path.relative(process.cwd(), dir) || dir} (etcd pid ${existing.etcdPid}, kube-apiserver pid ${existing.apiserverPid})`,
    );
    printPaths(existing);
    return;
  }
  if (existing) await stopDetached(existing); // half-dead leftovers
  const cluster = await startCluster({ dir, detached: true });
  const { info } = cluster;
  const mib = (pid: number): string => ((rssKiB(pid) ?? 0) / 1024).toFixed(0);
  console.log(
    `cluster up in ${info.startup.totalMs} ms (etcd ready in ${info.startup.etcdMs} ms, kube-apiserver in ${info.startup.apiserverMs} ms); ` +
      `RSS etcd ${mib(info.etcdPid)} MiB, kube-apiserver ${mib(info.apiserverPid)} MiB`,
  );
  printPaths(info);
  console.log('stop it with: npm run cluster:down');
}

async function down(): Promise<void> {
  // A test node whose owner died (e.g. a killed `npm run test:node`) leaves containers,
  // mounts, cgroups and a bridge; its state file says what to undo.
  if (process.platform === 'linux' && (await reapNodes({ log: (s) => console.log(s) }))) console.log('reaped the leftovers of a test node');
  const info = readInfo();
  if (!info) {
    console.log('no cluster running in .cluster/');
    return;
  }
  await stopDetached(info);
  fs.rmSync(infoPath, { force: true });
  // etcd preallocates a 64 MB WAL; the next `up` starts fresh anyway.
  fs.rmSync(path.join(dir, 'etcd-data'), { recursive: true, force: true });
  console.log(`stopped the cluster in ${path.relative(process.cwd(), dir) || dir} (logs kept there)`);
}

const cmd = process.argv[2];
try {
  if (cmd === 'up') await up();
  else if (cmd === 'down') await down();
  else {
    console.error('usage: node test/control-plane/cli.ts up|down');
    process.exitCode = 64;
  }
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
}
