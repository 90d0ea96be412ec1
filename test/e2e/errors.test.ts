/**
 * Issue 6: every bad input gets one clear line on stderr and the exit status of DESIGN §4,
 * with no stack trace, no child started and no Lease written. Table-driven: each case runs
 * the real CLI (against the real apiserver where one is involved) and is checked the same way.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { selfSigned } from '../support/certs.ts';
import { apiRequest, type ClusterInfo, freePort, serviceAccountKubeconfig, sharedCluster, spawnGuarded, target, writeKubeconfig } from '../support/cluster.ts';
import { BIN, tempDir, uniqueName } from '../support/leader-run.ts';

const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const version = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Files the cases point at; made once in `before`. */
interface Fixtures {
  info: ClusterInfo;
  dir: string;
  home: string;
  markers: string;
  missing: string;
  unreadable: string;
  behindLockedDir: string;
  badYaml: string;
  notKubeconfig: string;
  noCurrentContext: string;
  missingCluster: string;
  missingUser: string;
  missingCa: string;
  caIsDir: string;
  missingClientCert: string;
  serverNotUrl: string;
  serverFtp: string;
  serverPlainHttp: string;
  proxyUrl: string;
  otherCa: string;
  contextNamespaceMissing: string;
  getOnly: string;
  badToken: string;
  refused: string;
  noDns: string;
  notExecutable: string;
}

let f: Fixtures;

interface Case {
  name: string;
  status: number;
  /** Flags before the command; `lease` is a Lease name unique to this case. */
  args: (lease: string) => string[];
  env?: () => Record<string, string>;
  /** The command after `--`; default: one that leaves a marker file if it ever runs. null: none. */
  cmd?: () => string[] | null;
  /** What the error line must name (the flag, variable, file or object) and its advice. */
  says: (lease: string) => Array<string | RegExp>;
  /** Reaches the API server: logs at -q so the error is the only line. */
  server?: boolean;
  /** Unreachable server: retried, each failure a WARN line, then the ERROR line. */
  retried?: RegExp;
  /** Run as an unprivileged user when we are root, where permission bits do not bind. */
  unprivileged?: boolean;
  namespace?: string;
}

const kc = () => ['--kubeconfig', f.info.kubeconfigs.admin];
const envVar = (name: string, value: string) => () => ({ [name]: value });
const usage = 64,
  unavailable = 69,
  noperm = 77,
  config = 78;

const cases: Case[] = [
  // ── Flags → 64 ──────────────────────────────────────────────────────────────────────────
  { name: 'missing --lock-name', status: usage, args: () => kc(), says: () => ['--lock-name is required', 'LEADER_RUN_LOCK_NAME'] },
  { name: 'no command after --', status: usage, args: (l) => ['--lock-name', l], cmd: () => null, says: () => ['no command given', 'after --'] },
  { name: 'empty command', status: usage, args: (l) => ['--lock-name', l], cmd: () => [''], says: () => ['the command is empty', 'after --'] },
  { name: 'empty command with --shell', status: usage, args: (l) => ['--lock-name', l, '--shell'], cmd: () => [''], says: () => ['the command is empty'] },
  { name: 'unknown flag', status: usage, args: (l) => ['--lock-name', l, '--bogus'], says: () => ["unknown option '--bogus'", 'leader-run --help'] },
  {
    name: 'misspelt flag (the suggestion stays on the same line)',
    status: usage,
    args: (l) => ['--lock-nme', l],
    says: () => ["unknown option '--lock-nme'", 'Did you mean --lock-name?', 'leader-run --help'],
  },
  { name: 'flag without its value', status: usage, args: () => ['--lock-name'], cmd: () => null, says: () => ['--lock-name <name>', 'argument missing'] },
  {
    name: '--lease-duration malformed (15x)',
    status: usage,
    args: (l) => ['--lock-name', l, '--lease-duration', '15x'],
    says: () => ['--lease-duration "15x" is not a duration', '15s'],
  },
  {
    name: '--lease-duration bare number',
    status: usage,
    args: (l) => ['--lock-name', l, '--lease-duration', '15'],
    says: () => ['--lease-duration "15" is not a duration'],
  },
  {
    name: '--lease-duration empty',
    status: usage,
    args: (l) => ['--lock-name', l, '--lease-duration', ''],
    says: () => ['--lease-duration "" is not a duration'],
  },
  {
    name: '--lease-duration zero',
    status: usage,
    args: (l) => ['--lock-name', l, '--lease-duration', '0s'],
    says: () => ['--lease-duration must be greater than zero', 'default 15s'],
  },
  {
    name: '--lease-duration negative',
    status: usage,
    args: (l) => ['--lock-name', l, '--lease-duration', '-5s'],
    says: () => ['--lease-duration "-5s" is not a duration'],
  },
  {
    name: '--lease-duration below 1s',
    status: usage,
    args: (l) => ['--lock-name', l, '--lease-duration', '500ms'],
    says: () => ['--lease-duration 500ms is below 1s', 'for example --lease-duration'],
  },
  {
    name: '--retry-period zero',
    status: usage,
    args: (l) => ['--lock-name', l, '--retry-period', '0ms'],
    says: () => ['--retry-period must be greater than zero', 'default 2s'],
  },
  {
    name: '--nonblock with a --wait-timeout',
    status: usage,
    args: (l) => ['--lock-name', l, '-n', '--wait-timeout', '5s'],
    says: () => ['--nonblock and --wait-timeout 5s contradict each other'],
  },
  {
    name: '--startup-timeout malformed',
    status: usage,
    args: (l) => ['--lock-name', l, '--startup-timeout', '1 minute'],
    says: () => ['--startup-timeout "1 minute" is not a duration'],
  },
  {
    name: '--lease-duration equal to --renew-deadline',
    status: usage,
    args: (l) => ['--lock-name', l, '--lease-duration', '10s', '--renew-deadline', '10s'],
    says: () => ['--lease-duration 10s must be greater than --renew-deadline 10s', 'for example'],
  },
  {
    name: '--lease-duration below --renew-deadline',
    status: usage,
    args: (l) => ['--lock-name', l, '--lease-duration', '5s', '--renew-deadline', '10s'],
    says: () => ['--lease-duration 5s must be greater than --renew-deadline 10s', 'for example'],
  },
  {
    name: '--renew-deadline not above 1.2 × --retry-period',
    status: usage,
    args: (l) => ['--lock-name', l, '--renew-deadline', '2400ms', '--retry-period', '2s'],
    says: () => ['--renew-deadline 2400ms must be greater than 1.2 × --retry-period 2s', 'for example'],
  },
  {
    name: '--fence-grace breaks the budget R+G+K+ε ≤ D',
    status: usage,
    args: (l) => ['--lock-name', l, '--fence-grace', '5s'],
    says: () => ['--renew-deadline 10s + --fence-grace 5s', 'exceeds --lease-duration 15s', 'for example --lease-duration'],
  },
  {
    name: 'timings that break the budget even with --fence-grace 0s',
    status: usage,
    args: (l) => ['--lock-name', l, '--lease-duration', '4s', '--renew-deadline', '3500ms', '--retry-period', '1s', '--fence-grace', '0s'],
    says: () => ['exceeds --lease-duration 4s', 'the child could outlive the lease', 'for example'],
  },
  {
    name: '--lock-name not DNS-1123',
    status: usage,
    args: () => ['--lock-name', 'My_Lease'],
    says: () => ['--lock-name "My_Lease" is not a valid Lease name', 'lowercase'],
  },
  {
    name: '--lock-name too long',
    status: usage,
    args: () => ['--lock-name', 'a'.repeat(254)],
    says: () => ['--lock-name', 'is not a valid Lease name', 'at most 253'],
  },
  {
    name: '--lock-namespace not DNS-1123',
    status: usage,
    args: (l) => ['--lock-name', l, '--lock-namespace', 'Team.A'],
    says: () => ['--lock-namespace "Team.A" is not a valid namespace'],
  },
  {
    name: '--lock-namespace too long',
    status: usage,
    args: (l) => ['--lock-name', l, '--lock-namespace', 'n'.repeat(64)],
    says: () => ['--lock-namespace', 'at most 63'],
  },
  { name: 'empty --id', status: usage, args: (l) => ['--lock-name', l, '--id', ''], says: () => ['--id is empty', 'leave it out'] },
  { name: 'blank --id', status: usage, args: (l) => ['--lock-name', l, '--id', '   '], says: () => ['--id is empty'] },
  {
    name: 'unknown --log-format',
    status: usage,
    args: (l) => ['--lock-name', l, '--log-format', 'xml'],
    says: () => ['--log-format "xml" is not a log format', 'text or json'],
  },
  {
    name: '--wait-timeout-exit-code above 255',
    status: usage,
    args: (l) => ['--lock-name', l, '--wait-timeout-exit-code', '256'],
    says: () => ['--wait-timeout-exit-code "256"', '0 to 255'],
  },
  {
    name: '--wait-timeout-exit-code negative',
    status: usage,
    args: (l) => ['--lock-name', l, '--wait-timeout-exit-code', '-1'],
    says: () => ['--wait-timeout-exit-code "-1"', '0 to 255'],
  },
  {
    name: '--wait-timeout-exit-code not a number',
    status: usage,
    args: (l) => ['--lock-name', l, '--wait-timeout-exit-code', 'ok'],
    says: () => ['--wait-timeout-exit-code "ok"', '0 to 255'],
  },
  { name: '--verbose with --quiet', status: usage, args: (l) => ['--lock-name', l, '-v', '-q'], says: () => ['--verbose and --quiet contradict'] },
  { name: 'empty --kubeconfig', status: usage, args: (l) => ['--lock-name', l, '--kubeconfig', ''], says: () => ['--kubeconfig is empty', 'leave it out'] },
  { name: 'empty --context', status: usage, args: (l) => ['--lock-name', l, '--context', ''], says: () => ['--context is empty'] },

  // ── The same mistakes through LEADER_RUN_* → 64, naming the variable ──────────────────
  {
    name: 'LEADER_RUN_LOCK_NAME invalid',
    status: usage,
    args: () => [],
    env: envVar('LEADER_RUN_LOCK_NAME', 'Bad_Name'),
    says: () => ['LEADER_RUN_LOCK_NAME (--lock-name) "Bad_Name" is not a valid Lease name'],
  },
  {
    name: 'LEADER_RUN_LOCK_NAMESPACE invalid',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: envVar('LEADER_RUN_LOCK_NAMESPACE', 'Not_Valid'),
    says: () => ['LEADER_RUN_LOCK_NAMESPACE (--lock-namespace) "Not_Valid"'],
  },
  {
    name: 'LEADER_RUN_ID empty',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: envVar('LEADER_RUN_ID', ''),
    says: () => ['LEADER_RUN_ID (--id) is empty'],
  },
  {
    name: 'LEADER_RUN_LEASE_DURATION malformed',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: envVar('LEADER_RUN_LEASE_DURATION', '15x'),
    says: () => ['LEADER_RUN_LEASE_DURATION (--lease-duration) "15x" is not a duration'],
  },
  {
    name: 'LEADER_RUN_RENEW_DEADLINE zero',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: envVar('LEADER_RUN_RENEW_DEADLINE', '0s'),
    says: () => ['LEADER_RUN_RENEW_DEADLINE (--renew-deadline) must be greater than zero'],
  },
  {
    name: 'LEADER_RUN_LEASE_DURATION not above the renew deadline',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: () => ({ LEADER_RUN_LEASE_DURATION: '10s', LEADER_RUN_RENEW_DEADLINE: '10s' }),
    says: () => ['LEADER_RUN_LEASE_DURATION (--lease-duration) 10s must be greater than LEADER_RUN_RENEW_DEADLINE (--renew-deadline) 10s'],
  },
  {
    name: 'LEADER_RUN_RETRY_PERIOD too close to the renew deadline',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: envVar('LEADER_RUN_RETRY_PERIOD', '9s'),
    says: () => ['--renew-deadline 10s must be greater than 1.2 × LEADER_RUN_RETRY_PERIOD (--retry-period) 9s'],
  },
  {
    name: 'LEADER_RUN_FENCE_GRACE breaks the budget',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: envVar('LEADER_RUN_FENCE_GRACE', '5s'),
    says: () => ['LEADER_RUN_FENCE_GRACE (--fence-grace) 5s', 'exceeds --lease-duration 15s'],
  },
  {
    name: 'LEADER_RUN_LOG_FORMAT unknown',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: envVar('LEADER_RUN_LOG_FORMAT', 'yaml'),
    says: () => ['LEADER_RUN_LOG_FORMAT (--log-format) "yaml"'],
  },
  {
    name: 'LEADER_RUN_WAIT_TIMEOUT_EXIT_CODE out of range',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: envVar('LEADER_RUN_WAIT_TIMEOUT_EXIT_CODE', '300'),
    says: () => ['LEADER_RUN_WAIT_TIMEOUT_EXIT_CODE (--wait-timeout-exit-code) "300"', '0 to 255'],
  },
  {
    name: 'LEADER_RUN_SHELL not a boolean',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: envVar('LEADER_RUN_SHELL', 'maybe'),
    says: () => ['LEADER_RUN_SHELL="maybe" is not a boolean'],
  },
  {
    name: 'LEADER_RUN_VERBOSE with LEADER_RUN_QUIET',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: () => ({ LEADER_RUN_VERBOSE: 'true', LEADER_RUN_QUIET: '1' }),
    says: () => ['LEADER_RUN_VERBOSE (--verbose) and LEADER_RUN_QUIET (--quiet) contradict'],
  },
  {
    name: 'LEADER_RUN_KUBECONFIG empty',
    status: usage,
    args: (l) => ['--lock-name', l],
    env: envVar('LEADER_RUN_KUBECONFIG', ''),
    says: () => ['LEADER_RUN_KUBECONFIG (--kubeconfig) is empty'],
  },

  // ── Configuration → 78 ──────────────────────────────────────────────────────────────────
  {
    name: '--kubeconfig names a missing file',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.missing],
    says: () => ['--kubeconfig', f.missing, 'does not exist'],
  },
  {
    name: 'KUBECONFIG names a missing file',
    status: config,
    args: (l) => ['--lock-name', l],
    env: () => ({ KUBECONFIG: f.missing }),
    says: () => ['KUBECONFIG names', f.missing, 'none of them exists'],
  },
  {
    name: 'LEADER_RUN_KUBECONFIG names a missing file',
    status: config,
    args: (l) => ['--lock-name', l],
    env: () => ({ LEADER_RUN_KUBECONFIG: f.missing }),
    says: () => ['LEADER_RUN_KUBECONFIG (--kubeconfig)', f.missing, 'does not exist'],
  },
  {
    name: '--kubeconfig unreadable',
    status: config,
    unprivileged: true,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.unreadable],
    says: () => ['--kubeconfig', f.unreadable, 'permission denied'],
  },
  {
    name: 'KUBECONFIG unreadable',
    status: config,
    unprivileged: true,
    args: (l) => ['--lock-name', l],
    env: () => ({ KUBECONFIG: f.unreadable }),
    says: () => ['KUBECONFIG', f.unreadable, 'permission denied'],
  },
  {
    name: '--kubeconfig behind a directory we may not enter',
    status: config,
    unprivileged: true,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.behindLockedDir],
    says: () => ['--kubeconfig', f.behindLockedDir, 'permission denied'],
  },
  {
    name: '--kubeconfig is a directory',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.dir],
    says: () => ['--kubeconfig', f.dir, 'is a directory'],
  },
  {
    name: 'invalid YAML',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.badYaml],
    says: () => ['--kubeconfig', f.badYaml, 'is not a valid kubeconfig'],
  },
  {
    name: 'YAML that is not a kubeconfig',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.notKubeconfig],
    says: () => [f.notKubeconfig, 'defines no contexts'],
  },
  {
    name: 'no current-context',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.noCurrentContext],
    says: () => [f.noCurrentContext, 'has no current-context', 'pass --context'],
  },
  {
    name: '--context that does not exist',
    status: config,
    args: (l) => [...kc(), '--lock-name', l, '--context', 'nope'],
    says: () => ['--context "nope" is not in', 'its contexts are: leader-run-test'],
  },
  {
    name: 'LEADER_RUN_CONTEXT that does not exist',
    status: config,
    args: (l) => [...kc(), '--lock-name', l],
    env: envVar('LEADER_RUN_CONTEXT', 'nope'),
    says: () => ['LEADER_RUN_CONTEXT (--context) "nope" is not in'],
  },
  {
    name: 'context names a missing cluster',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.missingCluster],
    says: () => [f.missingCluster, 'names cluster "ghost", which is not defined'],
  },
  {
    name: 'context names a missing user',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.missingUser],
    says: () => [f.missingUser, 'names user "ghost", which is not defined'],
  },
  {
    name: 'certificate-authority file missing',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.missingCa],
    says: () => [f.missingCa, 'certificate-authority file', 'does not exist', 'fix the path'],
  },
  {
    name: 'certificate-authority is a directory',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.caIsDir],
    says: () => [f.caIsDir, 'certificate-authority file', 'is a directory'],
  },
  {
    name: 'client-certificate file missing',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.missingClientCert],
    says: () => [f.missingClientCert, 'client-certificate file', 'does not exist'],
  },
  {
    name: 'server is not a URL',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.serverNotUrl],
    says: () => [f.serverNotUrl, '"not a url", which is not a URL'],
  },
  {
    name: 'server is not http(s)',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.serverFtp],
    says: () => [f.serverFtp, 'must be an https:// URL'],
  },
  {
    name: 'server is plain http without skip-verify',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.serverPlainHttp],
    says: () => [f.serverPlainHttp, 'plain http://', 'insecure-skip-tls-verify'],
  },
  {
    // Refused, not silently bypassed: leader-run's own agent does not tunnel.
    name: 'the cluster sets proxy-url',
    status: config,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.proxyUrl],
    says: () => [f.proxyUrl, 'proxy-url', 'does not support'],
  },
  {
    name: 'no configuration at all',
    status: config,
    args: (l) => ['--lock-name', l],
    says: () => ['no kubeconfig and not in a cluster', '--kubeconfig', 'KUBECONFIG', '~/.kube/config'],
  },

  // ── The server ──────────────────────────────────────────────────────────────────────────
  {
    name: 'TLS: the server is not signed by the kubeconfig CA',
    status: config,
    server: true,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.otherCa],
    says: (l) => [`get Lease default/${l}`, 'TLS certificate did not verify', 'certificate-authority'],
  },
  {
    name: '401: the token is not accepted',
    status: noperm,
    server: true,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.badToken],
    says: (l) => [`get Lease default/${l}`, 'HTTP 401', 'did not accept the credentials', f.badToken],
  },
  {
    name: '403: the identity may not get leases',
    status: noperm,
    server: true,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.info.kubeconfigs.nobody],
    says: () => ['HTTP 403', 'missing permission: get on leases (coordination.k8s.io) in namespace default', 'examples/rbac.yaml'],
  },
  {
    name: '403: a namespace the candidate has no Role in',
    status: noperm,
    server: true,
    namespace: 'kube-system',
    args: (l) => ['--lock-name', l, '--kubeconfig', f.info.kubeconfigs.candidate, '--lock-namespace', 'kube-system'],
    says: () => ['HTTP 403', 'missing permission: get on leases (coordination.k8s.io) in namespace kube-system', 'examples/rbac.yaml'],
  },
  {
    name: '403: the identity may get leases but not create them',
    status: noperm,
    server: true,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.getOnly],
    says: (l) => [
      `create Lease default/${l}: HTTP 403`,
      'missing permission: create on leases (coordination.k8s.io) in namespace default',
      'examples/rbac.yaml',
    ],
  },
  {
    name: "the kubeconfig context's namespace not found",
    status: config,
    server: true,
    namespace: 'no-such-context-namespace',
    args: (l) => ['--lock-name', l, '--kubeconfig', f.contextNamespaceMissing],
    says: () => [`namespace no-such-context-namespace (the kubeconfig context's namespace in ${f.contextNamespaceMissing}) does not exist`],
  },
  {
    name: 'namespace not found',
    status: config,
    server: true,
    namespace: 'no-such-namespace',
    args: (l) => [...kc(), '--lock-name', l, '--lock-namespace', 'no-such-namespace'],
    says: () => ['namespace no-such-namespace (--lock-namespace) does not exist', 'kubectl create namespace'],
  },
  {
    name: 'connection refused: retried, then 69 after --startup-timeout',
    status: unavailable,
    server: true,
    retried: /connection refused by 127\.0\.0\.1:\d+; is the API server running/,
    args: (l) => [
      '--lock-name',
      l,
      '--kubeconfig',
      f.refused,
      '--startup-timeout',
      '2s',
      '--retry-period',
      '500ms',
      '--renew-deadline',
      '2s',
      '--lease-duration',
      '4s',
      '--fence-grace',
      '500ms',
    ],
    says: () => ['API server unreachable for 2s (--startup-timeout)', 'https://127.0.0.1:'],
  },
  {
    name: 'DNS failure: retried, then 69 after --startup-timeout',
    status: unavailable,
    server: true,
    retried: /DNS lookup of no-such-host\.invalid failed \(E\w+\); check the server address/,
    args: (l) => [
      '--lock-name',
      l,
      '--kubeconfig',
      f.noDns,
      '--startup-timeout',
      '2s',
      '--retry-period',
      '500ms',
      '--renew-deadline',
      '2s',
      '--lease-duration',
      '4s',
      '--fence-grace',
      '500ms',
    ],
    says: () => ['API server unreachable for 2s (--startup-timeout)', 'https://no-such-host.invalid:6443'],
  },

  // ── The command: checked before any request ─────────────────────────────────────────────
  {
    name: 'command not found in PATH',
    status: 127,
    args: (l) => [...kc(), '--lock-name', l],
    cmd: () => ['no-such-command-xyz'],
    says: () => ['no-such-command-xyz: command not found in PATH', 'full path'],
  },
  {
    name: 'command path does not exist',
    status: 127,
    args: (l) => [...kc(), '--lock-name', l],
    cmd: () => ['./no-such-file'],
    says: () => ['./no-such-file: no such file'],
  },
  {
    name: 'command not executable',
    status: 126,
    args: (l) => [...kc(), '--lock-name', l],
    cmd: () => [f.notExecutable],
    says: () => [f.notExecutable, 'not executable', 'chmod +x'],
  },
  { name: 'command is a directory', status: 126, args: (l) => [...kc(), '--lock-name', l], cmd: () => [f.dir], says: () => [f.dir, 'is a directory'] },
  {
    name: 'bad command is reported before a bad kubeconfig is loaded',
    status: 127,
    args: (l) => ['--lock-name', l, '--kubeconfig', f.missing],
    cmd: () => ['no-such-command-xyz'],
    says: () => ['no-such-command-xyz: command not found'],
  },
];

/** The runtime floor and the informational flags: checked on their own terms below. */
const oldNode = '/usr/bin/node';
const oldNodeVersion = fs.existsSync(oldNode) ? spawnSync(oldNode, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim() : '';
const [maj = 0, min = 0] = oldNodeVersion.split('.').map(Number);
const haveOldNode = oldNodeVersion !== '' && (maj < 22 || (maj === 22 && min < 19));

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], opts: { env?: Record<string, string>; unprivileged?: boolean; node?: string } = {}): Promise<Ran> {
  // A clean environment: no KUBECONFIG, no in-cluster hint, no LEADER_RUN_* from the caller.
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: f.home, ...opts.env };
  const node = opts.node ?? process.execPath;
  let proc: ChildProcess;
  if (opts.unprivileged && asRoot) {
    // Not guarded: the guard could not signal-check a root parent from an unprivileged child.
    // These runs end in well under a second; the timeout below still bounds them.
    proc = spawn(node, [BIN, ...args], { env, uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'pipe'] });
  } else {
    proc = spawnGuarded(node, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  let stdout = '',
    stderr = '';
  proc.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  proc.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    proc.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    }),
  );
}

const ERROR_LINE = /^(\S+Z ERROR leader-run: |leader-run: )\S/;
const WARN_LINE = /^\S+Z WARN {2}leader-run: \S/;

async function leaseStatus(namespace: string, name: string): Promise<number> {
  return (await apiRequest(target(f.info, 'admin'), 'GET', `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`)).status;
}

before(async () => {
  const info = await sharedCluster();
  const dir = tempDir();
  fs.chmodSync(dir, 0o755); // the unprivileged cases must reach their files
  const at = (name: string) => path.join(dir, name);
  const write = (name: string, text: string, mode = 0o644) => {
    fs.writeFileSync(at(name), text, { mode });
    fs.chmodSync(at(name), mode);
    return at(name);
  };
  const yaml = (o: {
    cluster?: string;
    user?: string;
    server?: string;
    ca?: string;
    proxy?: string;
    userBody?: string;
    current?: boolean;
    namespace?: string;
  }) =>
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: c',
      '  cluster:',
      `    server: ${JSON.stringify(o.server ?? info.server)}`,
      `    certificate-authority: ${JSON.stringify(o.ca ?? info.caFile)}`,
      ...(o.proxy ? [`    proxy-url: ${JSON.stringify(o.proxy)}`] : []),
      'users:',
      '- name: u',
      '  user:',
      `    ${o.userBody ?? `token: ${JSON.stringify(info.tokens.admin)}`}`,
      'contexts:',
      '- name: c',
      `  context: {cluster: ${o.cluster ?? 'c'}, user: ${o.user ?? 'u'}${o.namespace ? `, namespace: ${o.namespace}` : ''}}`,
      o.current === false ? '' : 'current-context: c',
      '',
    ].join('\n');

  fs.mkdirSync(at('home'));
  fs.mkdirSync(at('markers'), { mode: 0o777 });
  fs.chmodSync(at('markers'), 0o777);
  fs.mkdirSync(at('locked'));
  const behindLockedDir = path.join(at('locked'), 'config');
  fs.copyFileSync(info.kubeconfigs.admin, behindLockedDir);
  fs.chmodSync(at('locked'), 0o000);

  // A CA that did not sign the apiserver's certificate: a fresh self-signed one when openssl
  // is here (node:crypto cannot issue certificates), else any public root from the system.
  let otherCaFile = at('other-ca.crt');
  if (selfSigned(at('other-ca.key'), otherCaFile, '/CN=not-the-cluster-ca')) otherCaFile = '/etc/ssl/certs/ca-certificates.crt';
  assert.ok(fs.existsSync(otherCaFile), 'need openssl or a system CA bundle for the TLS case');

  const tag = `errors-${process.pid}`;
  f = {
    info,
    dir,
    home: at('home'),
    markers: at('markers'),
    missing: at('missing.kubeconfig'),
    unreadable: write('unreadable', fs.readFileSync(info.kubeconfigs.admin, 'utf8'), 0o000),
    behindLockedDir,
    badYaml: write('bad-yaml', 'clusters: [\n  - : :\n'),
    notKubeconfig: write('not-kubeconfig', 'just a string\n'),
    noCurrentContext: write('no-current-context', yaml({ current: false })),
    missingCluster: write('missing-cluster', yaml({ cluster: 'ghost' })),
    missingUser: write('missing-user', yaml({ user: 'ghost' })),
    missingCa: write('missing-ca', yaml({ ca: at('no-such-ca.crt') })),
    caIsDir: write('ca-is-dir', yaml({ ca: dir })),
    missingClientCert: write(
      'missing-client-cert',
      yaml({ userBody: `{client-certificate: ${JSON.stringify(at('no.crt'))}, client-key: ${JSON.stringify(at('no.key'))}}` }),
    ),
    serverNotUrl: write('server-not-url', yaml({ server: 'not a url' })),
    serverFtp: write('server-ftp', yaml({ server: 'ftp://127.0.0.1:21' })),
    serverPlainHttp: write('server-plain-http', yaml({ server: `http://127.0.0.1:${info.apiserverPort}` })),
    proxyUrl: write('proxy-url', yaml({ proxy: 'http://127.0.0.1:3128' })),
    contextNamespaceMissing: write('context-namespace-missing', yaml({ namespace: 'no-such-context-namespace' })),
    // May read Leases but not create them: the refusal must name the verb that was missing.
    getOnly: await serviceAccountKubeconfig(info, 'leader-run-errors-get-only', [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get'] },
    ]),
    otherCa: writeKubeconfig(info, `${tag}-other-ca`, { user: 'admin', caFile: otherCaFile }),
    badToken: writeKubeconfig(info, `${tag}-bad-token`, { user: { token: 'not-a-valid-token' } }),
    refused: writeKubeconfig(info, `${tag}-refused`, { user: 'admin', server: `https://127.0.0.1:${await freePort()}` }),
    noDns: writeKubeconfig(info, `${tag}-no-dns`, { user: 'admin', server: 'https://no-such-host.invalid:6443' }),
    notExecutable: write('not-executable.sh', '#!/bin/sh\necho should not run\n', 0o644),
  };
});

after(() => {
  if (!f) return;
  fs.chmodSync(path.dirname(f.behindLockedDir), 0o700); // else the removal below cannot enter it
  fs.rmSync(f.dir, { recursive: true, force: true });
});

describe('bad input: one clear line, the documented status, nothing started or written', { concurrency: 8 }, () => {
  for (const c of cases) {
    it(`${c.name} → ${c.status}`, async () => {
      const lease = uniqueName('err');
      const marker = path.join(f.markers, lease);
      const cmd = c.cmd ? c.cmd() : ['/bin/sh', '-c', `echo started > ${marker}`];
      const args = [...c.args(lease), ...(c.server ? ['-q'] : []), ...(cmd ? ['--', ...cmd] : [])];
      const r = await runCli(args, { env: c.env?.(), unprivileged: c.unprivileged });
      const show = `leader-run ${args.join(' ')}\nstatus ${r.status}\nstderr:\n${r.stderr}`;

      assert.equal(r.status, c.status, show);
      assert.equal(r.stdout, '', show);
      assert.ok(r.stderr.endsWith('\n'), show);
      const lines = r.stderr.slice(0, -1).split('\n');
      if (c.retried) {
        // Each failed attempt is one WARN line saying what failed and what to check; then the verdict.
        assert.ok(lines.length >= 2, `retried at least once\n${show}`);
        for (const w of lines.slice(0, -1)) {
          assert.match(w, WARN_LINE, show);
          assert.match(w, c.retried, show);
        }
      } else {
        assert.equal(lines.length, 1, `exactly one line\n${show}`);
      }
      const line = lines.at(-1) ?? '';
      assert.match(line, ERROR_LINE, show);
      for (const s of c.says(lease)) {
        if (typeof s === 'string') assert.ok(line.includes(s), `the error names ${JSON.stringify(s)}\n${show}`);
        else assert.match(line, s, show);
      }
      assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace\n${show}`);
      assert.ok(!fs.existsSync(marker), `the command must not have run\n${show}`);
      assert.equal(await leaseStatus(c.namespace ?? 'default', lease), 404, `no Lease ${lease} may be written\n${show}`);
    });
  }

  it(`a Node older than the floor → 78`, { skip: haveOldNode ? false : `no Node older than 22.19 at ${oldNode}` }, async () => {
    const r = await runCli(['--lock-name', uniqueName('err'), '--', 'true'], { node: oldNode });
    assert.equal(r.status, 78, r.stderr);
    assert.equal(r.stderr, `leader-run: Node ${oldNodeVersion} is too old; leader-run needs Node >= 22.19 (install a current LTS, e.g. Node 24)\n`);
    assert.equal(r.stdout, '');
  });

  for (const flag of ['--help', '-h']) {
    it(`${flag} prints usage, every flag and examples on stdout → 0`, async () => {
      const r = await runCli([flag]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, /^Usage: leader-run \[options\] -- <command> \[args\.\.\.\]/);
      for (const s of [
        '--lock-name',
        '--lease-duration',
        '--kubeconfig',
        '--wait-timeout-exit-code',
        'LEADER_RUN_LOCK_NAME',
        'Examples:',
        'leader-run --lock-name nightly-report -- node job.js',
        '64 bad usage',
      ])
        assert.ok(r.stdout.includes(s), `help mentions ${s}`);
    });
  }

  it('--help wins over bad input → 0', async () => {
    const r = await runCli(['--lease-duration', '15x', '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Examples:/);
  });

  for (const flag of ['--version', '-V']) {
    it(`${flag} prints the version on stdout → 0`, async () => {
      const r = await runCli([flag]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.equal(r.stdout, `${version}\n`);
    });
  }
});
