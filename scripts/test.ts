// `npm test`: lint, type-check, build the control plane, start one shared cluster,
// run unit and end-to-end tests against it, stop it; then the node suite (test/node: a real
// kubelet + containerd, root on Linux; it starts its own control plane and node), alone so
// its build and Pods do not load the timing-sensitive tests; exit with the tests' status.
//   LEADER_RUN_NODE_SUITE=skip npm test              without the node suite, said loudly
//   npm test -- test/e2e/foo.test.ts                 one file (test/node/... files: the node phase only)
//   npm test -- --test-name-pattern=lease            node --test flags (use the = form)
//   LEADER_RUN_TEST_CLUSTER=.cluster/cluster.json npm test    reuse a running cluster
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cluster, ClusterInfo } from '../test/control-plane/cluster.ts';
import { attachCluster, buildControlPlane, rssKiB, startCluster } from '../test/control-plane/cluster.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The main run takes about 7 minutes on 2 cores; CI allows 90 for everything. */
const RUN_LIMIT_MS = 45 * 60_000;
process.chdir(repo);

function fail(message: string): never {
  console.error(`\nnpm test: ${message}`);
  process.exit(1);
}

// 1. Lint and format, types of everything (tests included), then the build the CLI runs (dist/).
const steps: Array<[string, string[]]> = [
  ['lint', [path.join('node_modules', '@biomejs', 'biome', 'bin', 'biome'), 'check']],
  ['type check', [path.join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']],
  ['build', [path.join('scripts', 'build.ts')]],
];
for (const [what, argv] of steps) {
  if (spawnSync(process.execPath, argv, { stdio: 'inherit' }).status !== 0) fail(`${what} failed`);
}

// 2. Which tests: explicit files/globs win over the default set; flags go to node --test.
const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('-'));
let files = args.filter((a) => !a.startsWith('-'));
// Node-suite files run in their own phase (below) with its longer timeout, also when named.
const isNodeSuite = (f: string): boolean => path.relative('test/node', f).split(path.sep)[0] !== '..';
let nodeFiles = files.filter(isNodeSuite);
files = files.filter((f) => !isNodeSuite(f));
if (files.length === 0 && nodeFiles.length === 0) {
  files = fs.globSync('test/{unit,e2e}/**/*.test.ts').sort();
  nodeFiles = fs.globSync('test/node/**/*.test.ts').sort();
  if (files.length === 0) fail('no test files found under test/unit or test/e2e');
}

// 3–5: unit and end-to-end tests against one shared cluster (skipped when only node-suite
// files are named).
// Forward interruptions to the runner of the moment; the harness has already killed the
// cluster by the time this listener runs, and we still wait for the runner to finish.
let interrupted: NodeJS.Signals | undefined;
let runner: ReturnType<typeof spawn> | undefined;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    interrupted = sig;
    runner?.kill(sig);
  });
}
const bin = path.join(repo, 'node_modules', '.bin');
const status = files.length > 0 ? await runMain() : 0;

async function runMain(): Promise<number> {
  // 3. The control plane. Building first keeps build output apart from cluster errors.
  let binDir: string;
  try {
    binDir = await buildControlPlane();
  } catch (err) {
    fail((err as Error).message);
  }

  let cluster: Cluster | undefined;
  let info: ClusterInfo;
  let infoPath = process.env.LEADER_RUN_TEST_CLUSTER;
  try {
    if (infoPath) {
      info = await attachCluster(path.resolve(infoPath));
      console.log(`npm test: using the running cluster at ${info.server} (${infoPath})`);
    } else {
      // Our own temp dir, so its logs can be kept when tests fail.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leader-run-test-'));
      cluster = await startCluster({ dir, binDir });
      info = cluster.info;
      infoPath = path.join(dir, 'cluster.json');
      const mib = (pid: number): string => ((rssKiB(pid) ?? 0) / 1024).toFixed(0);
      console.log(
        `npm test: cluster at ${info.server} ready in ${info.startup.totalMs} ms ` +
          `(etcd ${info.startup.etcdMs} ms, kube-apiserver ${info.startup.apiserverMs} ms; ` +
          `RSS etcd ${mib(info.etcdPid)} MiB, kube-apiserver ${mib(info.apiserverPid)} MiB)`,
      );
    }
  } catch (err) {
    fail(`the test cluster did not start; end-to-end tests cannot run.\n${(err as Error).message}`);
  }

  // 4. The tests.
  // No test may stall CI: each has at most 5 minutes, and the whole run at most
  // RUN_LIMIT_MS. Not --test-force-exit: with several files at once it exits as soon as the
  // tests it knows of are done, and drops the results — and the runs — of files still
  // reporting, with "0 fail" (a run of the unit files counted 152 of 173).
  const tally = tallyFile();
  const main = spawn(process.execPath, ['--test', '--test-concurrency=3', '--test-timeout=300000', ...reporters(tally), ...flags, ...files], {
    stdio: 'inherit',
    env: {
      ...process.env,
      LEADER_RUN_TEST_CLUSTER: infoPath,
      LEADER_RUN_CONTROL_PLANE_BIN: binDir,
      PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`,
    },
  });
  runner = main;
  const limit = setTimeout(() => {
    console.error(`npm test: the tests ran past ${RUN_LIMIT_MS / 60_000} minutes (a handle left open?): stopping them`);
    main.kill('SIGKILL');
  }, RUN_LIMIT_MS);
  main.once('exit', () => clearTimeout(limit));
  const status = await new Promise<number>((resolve) => {
    main.on('error', (err) => {
      console.error(`npm test: cannot run node --test: ${err.message}`);
      resolve(1);
    });
    main.on('exit', (code, signal) => resolve(exitStatus('node --test', code, signal)));
  });
  const counted = checkTally(tally, files, flags);

  // 5. Teardown; a failed run keeps the servers' logs.
  if (cluster) {
    await cluster.stop();
    if (status === 0 && !interrupted) fs.rmSync(info.dir, { recursive: true, force: true });
    else console.error(`npm test: cluster logs kept in ${info.dir}`);
  }
  return status || counted;
}

/** Where one runner's tally goes: a fresh temp dir, removed once the tally is read. */
function tallyFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'leader-run-tally-')), 'tally.jsonl');
}

/** spec on stdout, as always, and the tally (scripts/test-tally.ts) into `file`. */
function reporters(file: string): string[] {
  return [
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${path.join(repo, 'scripts', 'test-tally.ts')}`,
    `--test-reporter-destination=${file}`,
  ];
}

/** The runner's status; a runner killed by a signal says so, since it printed no summary. */
function exitStatus(what: string, code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  console.error(`\nnpm test: ${what} was killed by ${signal ?? 'an unknown cause'}: its results are incomplete`);
  return signal ? 128 + (os.constants.signals[signal] ?? 0) : 1;
}

/** 1 when a test file reported no result at all (its run was lost, not failed), else 0; prints
 *  how many tests each phase counted. Skipped when --test-name-pattern-like flags filter. */
function checkTally(tally: string, expected: string[], nodeFlags: string[]): number {
  let lines: string[] = [];
  try {
    lines = fs.readFileSync(tally, 'utf8').split('\n').filter(Boolean);
  } catch {}
  fs.rmSync(path.dirname(tally), { recursive: true, force: true });
  const got = new Map<string, { passed: number; failed: number }>();
  for (const l of lines) {
    const { file, passed, failed } = JSON.parse(l) as { file: string; passed: number; failed: number };
    got.set(path.resolve(file), { passed, failed });
  }
  let passed = 0;
  let failed = 0;
  for (const n of got.values()) {
    passed += n.passed;
    failed += n.failed;
  }
  const filtered = nodeFlags.some((f) => /^--test-(name|skip)-pattern|^--test-only/.test(f));
  const missing = filtered ? [] : expected.filter((f) => !got.has(path.resolve(f)));
  console.log(`npm test: ${passed + failed} tests from ${got.size} of ${expected.length} files (${passed} passed, ${failed} failed)`);
  if (missing.length === 0) return 0;
  console.error(`npm test: no result came from ${missing.length} file(s), so their tests did not count:\n  ${missing.join('\n  ')}`);
  return 1;
}

// 6. The node suite, after the shared cluster is gone. Never skipped silently: it fails when
// it cannot start (it installs Debian packages and builds kubelet & co. when missing).
let nodeStatus = 0;
if (nodeFiles.length && !interrupted) {
  if (process.env.LEADER_RUN_NODE_SUITE === 'skip') {
    console.error('\nnpm test: SKIPPED the node suite (test/node) because LEADER_RUN_NODE_SUITE=skip: the examples were not run on a real node');
  } else {
    console.log('\nnpm test: the node suite (test/node): a real kubelet, containerd and runc');
    const tally = tallyFile();
    const nodeRunner = spawn(process.execPath, ['--test', '--test-timeout=900000', '--test-force-exit', ...reporters(tally), ...flags, ...nodeFiles], {
      stdio: 'inherit',
      env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` },
    });
    runner = nodeRunner;
    nodeStatus = await new Promise<number>((resolve) => {
      nodeRunner.on('error', (err) => {
        console.error(`npm test: cannot run node --test: ${err.message}`);
        resolve(1);
      });
      nodeRunner.on('exit', (code, signal) => resolve(exitStatus('node --test (node suite)', code, signal)));
    });
    nodeStatus ||= checkTally(tally, nodeFiles, flags);
    if (nodeStatus !== 0) console.error('\nnpm test: the node suite failed');
  }
}
process.exit(interrupted ? 128 + os.constants.signals[interrupted] : status || nodeStatus);
