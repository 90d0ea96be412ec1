// `npm run cluster:up` / `npm run cluster:down`: a long-lived local control
// plane in <repo>/.cluster/ for trying leader-run by hand.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterInfo } from './cluster.ts';
import { attachCluster, pidAlive, rssKiB, startCluster, stopDetached } from './cluster.ts';
import { reapNodes, startNode } from './node.ts';

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

/** `cluster:up -- --node`: the control plane with a real node (test/control-plane/node.ts). */
async function upNode(): Promise<void> {
  const node = await startNode({ detached: true });
  const rel = (p: string): string => path.relative(process.cwd(), p) || p;
  console.log(`node ${node.info.name} Ready in ${node.info.startup.readyMs} ms; everything up in ${node.info.startup.totalMs} ms`);
  console.log(`server:     ${node.api.server} (Pods: https://${node.info.gateway}:${node.info.apiserverPort})`);
  console.log(`admin:      ${rel(node.api.kubeconfigs.admin)}`);
  console.log(`logs:       ${rel(node.info.dir)}/*.log`);
  console.log(`images:     import OCI archives with ctr --address ${node.state.socket} -n k8s.io images import FILE`);
  console.log('stop it with: npm run cluster:down');
}

async function up(): Promise<void> {
  if (process.argv.includes('--node')) return upNode();
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
  // The node of `cluster:up -- --node`, and a test node whose owner died (e.g. a killed
  // `npm run test:node`), which leaves containers, mounts, cgroups and a bridge behind: its
  // state file says what to undo.
  if (process.platform === 'linux' && (await reapNodes({ detached: true, log: (s) => console.log(s) }))) console.log('stopped the test node');
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
    console.error('usage: node test/control-plane/cli.ts up [--node] | down');
    process.exitCode = 64;
  }
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
}
