/**
 * Flags (and their LEADER_RUN_* variables) → one validated RunConfig. Everything the user can
 * get wrong about the command line is caught here, before anything talks to the API server
 * or starts a process.
 */
import { constants } from 'node:os';
import { Command, Option } from 'commander';
import { hasProc } from '../child/tree.ts';
import type { HttpAddr, RoutingConfig, RunConfig } from '../config.ts';
import { formatDuration, parseDuration } from '../core/duration.ts';
import { checkTiming, DEFAULT_TIMING, deriveTiming, TIMING_FLAGS, type Timing, type TimingField, timingMessage } from '../election/timing.ts';
import type { ConfigField } from '../kube/config.ts';
import { CANDIDATE_NAME, compareVersions, VERSION } from '../lease/lease-candidate.ts';
import { defaultIdentity, LEASE_NAME } from '../lease/record.ts';
import { addFlag, addLeaseFlags, envName, leaseFlags, parseCommandLine, UsageError, where } from './flags.ts';
import { isContainerInit } from './pid1.ts';

export { InfoShown, UsageError } from './flags.ts';

/** How this command line names the options that lower layers report problems with. */
export interface OptionNames {
  readonly config: (field: ConfigField) => string;
  readonly httpAddr: string;
}

export interface ParsedRun {
  readonly config: RunConfig;
  readonly names: OptionNames;
}

// Below Kubernetes' default 30 s termination grace: a Pod spec that does not set it still
// lets the child stop and the Lease be released before the kubelet's SIGKILL.
const DEFAULT_SHUTDOWN_GRACE = '20s';
const DEFAULT_WAIT_TIMEOUT_EXIT_CODE = '75';
const DEFAULT_STARTUP_TIMEOUT = '30s';
/** Each slot is one more watch per follower. */
const MAX_SLOTS = 100;

const examples = `
Examples:
  # Run a nightly job on exactly one replica at a time
  leader-run --lock-name nightly-report -- node job.js

  # Locally, against a kubeconfig context, with a shell pipeline
  leader-run --context staging --lock-name reindex --shell -- 'reindex --all | tee /tmp/out'

  # Cron on several replicas or clusters: at most one successful run a day, skips exit 0
  leader-run -n -q --wait-timeout-exit-code 0 --once-per 24h --lock-name nightly-report -- node job.js

  # Give up after five minutes of waiting, exit 0 in that case
  leader-run --lock-name migrate --wait-timeout 5m --wait-timeout-exit-code 0 -- ./migrate.sh

  # In a Deployment: the Pod name (downward API) as identity
  LEADER_RUN_ID=$POD_NAME leader-run --lock-name scheduler -- ./scheduler

  # Coordinated leader election (KEP-4355): the API server names the holder
  leader-run --lock-name scheduler --coordinated --id "$POD_NAME" -- ./scheduler

  # Probes and Prometheus metrics on port 9090; a Service that always reaches the leader
  leader-run --lock-name api --http-addr :9090 --leader-service api-leader -- ./server

  # Who holds a Lease, and since when (a subcommand; \`leader-run -- status\` runs a program)
  leader-run status --lock-name scheduler --watch

  # Preflight (CI, an init container): flags, kubeconfig and RBAC, one line each
  leader-run check --lock-name scheduler

  # Ask the leader to hand over now (a node drain): it stops its child, releases, exits 0
  leader-run step-down --lock-name scheduler

Every flag can also be set with an environment variable: --lock-name is LEADER_RUN_LOCK_NAME,
and so on. Exit statuses: the child's own; 75 when leadership was lost (or --wait-timeout);
64 bad usage; 69 API unreachable; 77 not permitted; 78 bad configuration; 126/127 command
not executable / not found. See the README for the whole table.
`;

export function buildProgram(version: string): Command {
  const p = new Command('leader-run')
    .usage('[options] -- <command> [args...]')
    .description('Run a command only while holding a Kubernetes Lease; the command is stopped before anyone else can lead.')
    .version(version, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help and exit')
    .argument('[command...]', 'the command to run while leading, after --')
    .passThroughOptions()
    .exitOverride()
    .configureOutput({ writeErr: () => {}, outputError: () => {} })
    .addHelpText('after', examples);
  const opt = (flags: string, desc: string, name: string, dflt?: string) => addFlag(p, flags, desc, name, dflt);
  addLeaseFlags(p, 'to hold');
  opt('--id <identity>', 'holder identity (default: <hostname>_<random>, unique per process)', 'id');
  // No defaults here: the timing flags not given are derived from those that are.
  const d = (ms: number) => formatDuration(ms);
  opt('--lease-duration <duration>', `how long a lease is valid without renewal (D; default ${d(DEFAULT_TIMING.leaseDurationMs)})`, 'lease-duration');
  opt(
    '--renew-deadline <duration>',
    `give up leading if not renewed for this long (R; default ${d(DEFAULT_TIMING.renewDeadlineMs)}, or 2/3 of D)`,
    'renew-deadline',
  );
  opt('--retry-period <duration>', `renew / retry interval (P; default ${d(DEFAULT_TIMING.retryPeriodMs)}, or R/5)`, 'retry-period');
  opt(
    '--fence-grace <duration>',
    `after losing the lease: SIGTERM → SIGKILL grace (G; default ${d(DEFAULT_TIMING.fenceGraceMs)}, or 2/15 of D)`,
    'fence-grace',
  );
  opt(
    '--shutdown-grace <duration>',
    'on SIGTERM/SIGINT or child exit: how long the child may take to stop while we keep renewing',
    'shutdown-grace',
    DEFAULT_SHUTDOWN_GRACE,
  );
  opt('--wait-timeout <duration>', 'give up if not leading within this time (exit 75); 0: try once, as flock -n', 'wait-timeout');
  opt(
    '--min-hold <duration>',
    'when the child finishes early, keep the Lease (renewing) until this long after winning it, so a late candidate does not run the same tick again',
    'min-hold',
  );
  opt(
    '--once-per <duration>',
    'run at most once per window of this length (from the Unix epoch, UTC): a child that exits 0 is recorded on the Lease, and later runs in the same window skip with --wait-timeout-exit-code',
    'once-per',
  );
  opt(
    '--slots <n>',
    'a semaphore: hold one of the n Leases NAME-0 … NAME-(n-1), so at most n children run at once across all candidates (LEADER_RUN_SLOT tells the child which)',
    'slots',
  );
  opt(
    '--coordinated',
    "coordinated leader election (KEP-4355): register a LeaseCandidate and lead only when the API server's controller names this candidate",
    'coordinated',
  );
  opt('--binary-version <X.Y.Z>', 'with --coordinated: the version this candidate runs (default: the API server’s)', 'binary-version');
  opt(
    '--emulation-version <X.Y.Z>',
    'with --coordinated: the version it emulates, at most --binary-version; the oldest leads (default: the binary version)',
    'emulation-version',
  );
  opt('-n, --nonblock', 'try once: lead now or exit with --wait-timeout-exit-code (the same as --wait-timeout 0)', 'nonblock');
  opt('--wait-timeout-exit-code <n>', 'exit status when --wait-timeout passes', 'wait-timeout-exit-code', DEFAULT_WAIT_TIMEOUT_EXIT_CODE);
  opt(
    '--startup-timeout <duration>',
    'give up (exit 69) if the API server cannot be reached for this long at start',
    'startup-timeout',
    DEFAULT_STARTUP_TIMEOUT,
  );
  opt('--http-addr <host:port>', 'serve /healthz, /readyz, /metrics and /leader here (port 0: any free port; default: off)', 'http-addr');
  opt(
    '--http-step-down',
    'also serve POST /step-down[?to=ID] on --http-addr: whoever reaches the port can make the leader hand over (default: off)',
    'http-step-down',
  );
  opt('--leader-service <name>', "point this Service's selector at the leading Pod (needs POD_NAME, POD_NAMESPACE)", 'leader-service');
  opt('--shell', 'run the command through /bin/sh -c (default: exec it directly)', 'shell');
  opt(
    '--terminal',
    "the child shares leader-run's terminal and job: it can prompt on /dev/tty, Ctrl-Z stops both (default: when stdin is a terminal, outside a container's PID 1)",
    'terminal',
  );
  opt('--events', 'record Kubernetes Events on the Lease when leadership changes (the default; needs create on events)', 'events');
  opt('--stop-signal <signal>', 'the signal that asks the child to stop (default: the stop signal leader-run got; SIGTERM on a lost lease)', 'stop-signal');
  opt('--forward-to <target>', "where SIGHUP, SIGUSR1 and SIGUSR2 go: 'group' (the child's process group), 'child', or 'session'", 'forward-to', 'group');
  opt('--log-format <format>', 'text or json', 'log-format', 'text');
  opt('-v, --verbose', 'log debug detail', 'verbose');
  opt('-q, --quiet', 'log only warnings and errors', 'quiet');
  // A flag wins over its variable: these undo a LEADER_RUN_* boolean baked into an image.
  p.addOption(new Option('--no-shell', 'exec the command directly, whatever LEADER_RUN_SHELL says'));
  p.addOption(new Option('--no-terminal', 'the child leads a session of its own, without a terminal, whatever stdin is'));
  p.addOption(new Option('--no-verbose', 'no debug detail, whatever LEADER_RUN_VERBOSE says'));
  p.addOption(new Option('--no-quiet', 'log at info, whatever LEADER_RUN_QUIET says'));
  p.addOption(new Option('--no-coordinated', 'no coordinated leader election, whatever LEADER_RUN_COORDINATED says'));
  p.addOption(new Option('--no-http-step-down', 'no POST /step-down, whatever LEADER_RUN_HTTP_STEP_DOWN says'));
  p.addOption(new Option('--no-events', 'record no Events on the Lease, whatever LEADER_RUN_EVENTS says'));
  return p;
}

/** Parses argv (without node and script) into a RunConfig, or throws UsageError / InfoShown. */
export function parseArgs(argv: readonly string[], version: string, stdout: (s: string) => void = (s) => process.stdout.write(s)): ParsedRun {
  const p = buildProgram(version);
  p.configureOutput({ writeOut: stdout, writeErr: () => {}, outputError: () => {} });
  parseCommandLine(p, argv, 'leader-run');
  return validate(p);
}

function validate(p: Command): ParsedRun {
  const o = p.opts<Record<string, string | boolean | undefined>>();
  const str = (key: string) => (typeof o[key] === 'string' ? (o[key] as string) : undefined);
  const bool = (key: string, flag: string): boolean => {
    if (p.getOptionValueSource(key) !== 'env') return o[key] === true;
    const variable = envName(flag);
    const v = (process.env[variable] ?? '').toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['', '0', 'false', 'no', 'off'].includes(v)) return false;
    throw new UsageError(`${variable}=${JSON.stringify(v)} is not a boolean; use true or false`);
  };
  const duration = (key: string, flag: string, { allowZero = false } = {}): number => {
    const text = str(key) ?? '';
    const ms = parseDuration(text);
    if (ms === undefined) throw new UsageError(`${where(p, flag)} ${JSON.stringify(text)} is not a duration; write it like 1500ms, 15s or 1m`);
    if (ms <= 0 && !allowZero) {
      const timingDefault = (Object.keys(TIMING_FLAGS) as TimingField[]).find((f) => TIMING_FLAGS[f] === `--${flag}`);
      const dflt = timingDefault
        ? formatDuration(DEFAULT_TIMING[timingDefault])
        : (p.options.find((x) => x.long === `--${flag}`)?.defaultValue as string | undefined);
      throw new UsageError(`${where(p, flag)} must be greater than zero; ${dflt ? `leave it out for the default ${dflt}` : 'leave it out for no limit'}`);
    }
    return ms;
  };

  const lease = leaseFlags(p, 'the name of the Lease to campaign for', true);
  const id = str('id');
  if (id !== undefined && id.trim() === '') throw new UsageError(`${where(p, 'id')} is empty; give a non-empty identity or leave it out`);
  if (id !== undefined && id.length > 253) throw new UsageError(`${where(p, 'id')} is longer than 253 characters`);

  const given: { -readonly [K in keyof Timing]?: number } = {};
  if (str('leaseDuration') !== undefined) given.leaseDurationMs = duration('leaseDuration', 'lease-duration');
  if (str('renewDeadline') !== undefined) given.renewDeadlineMs = duration('renewDeadline', 'renew-deadline');
  if (str('retryPeriod') !== undefined) given.retryPeriodMs = duration('retryPeriod', 'retry-period');
  if (str('fenceGrace') !== undefined) given.fenceGraceMs = duration('fenceGrace', 'fence-grace', { allowZero: true });
  const timing = deriveTiming(given);
  const derived = (Object.keys(timing) as TimingField[]).filter((f) => given[f] === undefined);
  const timingDerived =
    given.leaseDurationMs !== undefined && derived.length > 0
      ? `${derived.map((f) => `${TIMING_FLAGS[f]} ${formatDuration(timing[f])}`).join(', ')} derived from ${TIMING_FLAGS.leaseDurationMs} ${formatDuration(timing.leaseDurationMs)}`
      : undefined;
  const problem = checkTiming(timing);
  // The rule names flags; where one came from its variable, name that (not in the example).
  if (problem)
    throw new UsageError(
      timingMessage(
        problem,
        (f: TimingField) => where(p, TIMING_FLAGS[f].slice(2)),
        (f) => TIMING_FLAGS[f],
      ),
    );
  const shutdownGraceMs = duration('shutdownGrace', 'shutdown-grace', { allowZero: true });
  const minHoldMs = str('minHold') === undefined ? undefined : duration('minHold', 'min-hold');
  const oncePerMs = str('oncePer') === undefined ? undefined : duration('oncePer', 'once-per');
  const nonblock = bool('nonblock', 'nonblock');
  const waitTimeoutMs = str('waitTimeout') === undefined ? (nonblock ? 0 : undefined) : duration('waitTimeout', 'wait-timeout', { allowZero: true });
  if (nonblock && waitTimeoutMs !== 0)
    throw new UsageError(`${where(p, 'nonblock')} and ${where(p, 'wait-timeout')} ${formatDuration(waitTimeoutMs ?? 0)} contradict each other; give one`);
  const stopSignal = signalOption(str('stopSignal'), where(p, 'stop-signal'));
  const forwardTo = str('forwardTo') ?? 'group';
  if (forwardTo !== 'group' && forwardTo !== 'child' && forwardTo !== 'session')
    throw new UsageError(`${where(p, 'forward-to')} ${JSON.stringify(forwardTo)} is not a target; use group, child or session`);
  const code = str('waitTimeoutExitCode') ?? DEFAULT_WAIT_TIMEOUT_EXIT_CODE;
  if (!/^\d+$/.test(code) || Number(code) > 255)
    throw new UsageError(`${where(p, 'wait-timeout-exit-code')} ${JSON.stringify(code)} must be a whole number from 0 to 255`);
  const startupTimeoutMs = duration('startupTimeout', 'startup-timeout');

  const logFormat = str('logFormat') ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json')
    throw new UsageError(`${where(p, 'log-format')} ${JSON.stringify(logFormat)} is not a log format; use text or json`);
  let verbose = bool('verbose', 'verbose');
  let quiet = bool('quiet', 'quiet');
  if (verbose && quiet) {
    // A flag wins over a variable; two flags, or two variables, contradict each other.
    const fromCli = (k: string) => p.getOptionValueSource(k) === 'cli';
    if (fromCli('verbose') === fromCli('quiet')) throw new UsageError(`${where(p, 'verbose')} and ${where(p, 'quiet')} contradict each other; give one`);
    if (fromCli('verbose')) quiet = false;
    else verbose = false;
  }
  // An empty path or context is a typo in the flag (often an unset variable in a template).
  for (const [key, what] of [
    ['kubeconfig', 'the path of a kubeconfig file'],
    ['context', 'a context name'],
  ] as const)
    if (str(key) === '') throw new UsageError(`${where(p, key)} is empty; give ${what} or leave it out`);

  const http = httpAddr(str('httpAddr'), where(p, 'http-addr'));
  const httpStepDown = bool('httpStepDown', 'http-step-down');
  if (httpStepDown && !http) throw new UsageError(`${where(p, 'http-step-down')} needs --http-addr: give the address to serve POST /step-down on`);
  const routing = leaderRouting(str('leaderService'), where(p, 'leader-service'), id);
  const coordinated = bool('coordinated', 'coordinated');
  const versions = { binaryVersion: str('binaryVersion'), emulationVersion: str('emulationVersion') };
  for (const [key, flag] of [
    ['binaryVersion', 'binary-version'],
    ['emulationVersion', 'emulation-version'],
  ] as const) {
    const v = versions[key];
    if (v === undefined) continue;
    if (!coordinated) throw new UsageError(`${where(p, flag)} needs --coordinated`);
    if (!VERSION.test(v)) throw new UsageError(`${where(p, flag)} ${JSON.stringify(v)} is not a version; write it as X.Y.Z, like 1.36.0`);
  }
  if (versions.binaryVersion && versions.emulationVersion && compareVersions(versions.emulationVersion, versions.binaryVersion) > 0)
    throw new UsageError(
      `${where(p, 'emulation-version')} ${versions.emulationVersion} is above ${where(p, 'binary-version')} ${versions.binaryVersion}: a binary cannot emulate a newer version`,
    );
  if (coordinated && id !== undefined && !CANDIDATE_NAME.test(id))
    throw new UsageError(`${where(p, 'id')} ${JSON.stringify(id)} cannot name a LeaseCandidate (--coordinated): use letters, digits, '-', '.' and '_'`);
  if (coordinated && routing) throw new UsageError(`--coordinated and ${where(p, 'leader-service')} do not go together yet`);
  const slotsText = str('slots');
  let slots: number | undefined;
  if (slotsText !== undefined) {
    if (!/^\d+$/.test(slotsText) || Number(slotsText) < 1 || Number(slotsText) > MAX_SLOTS)
      throw new UsageError(`${where(p, 'slots')} ${JSON.stringify(slotsText)} must be a whole number from 1 to ${MAX_SLOTS}`);
    slots = Number(slotsText);
    const last = `${lease.name}-${slots - 1}`;
    if (!LEASE_NAME.test(last)) throw new UsageError(`${where(p, 'slots')}: the Lease name ${last} is too long (at most 253 characters); shorten --lock-name`);
    if (routing) throw new UsageError(`${where(p, 'slots')} and ${where(p, 'leader-service')} do not go together: a Service points at one leader`);
    if (coordinated) throw new UsageError(`${where(p, 'slots')} and --coordinated do not go together: the controller names one holder per Lease`);
    if (oncePerMs !== undefined)
      throw new UsageError(`${where(p, 'slots')} and ${where(p, 'once-per')} do not go together: each slot would run the window once; use one Lease`);
  }

  const command = p.args;
  if (command.length === 0) throw new UsageError('no command given: put the command to run after --, e.g. leader-run --lock-name x -- ./job.sh');
  if (command[0] === '') throw new UsageError('the command is empty: put the command to run after --');
  const terminal = p.getOptionValueSource('terminal') === undefined ? onTerminal() : bool('terminal', 'terminal');
  if (terminal && !hasProc) throw new UsageError(`${where(p, 'terminal')} needs /proc (Linux) to find the child's processes; leave it out`);

  const config: RunConfig = {
    lease,
    identity: id ?? defaultIdentity(),
    timing,
    timingDerived,
    shutdownGraceMs,
    minHoldMs,
    oncePerMs,
    coordinated: coordinated ? versions : undefined,
    slots,
    stopSignal,
    forwardTo,
    kube: { kubeconfig: str('kubeconfig'), context: str('context') },
    waitTimeoutMs,
    waitTimeoutExitCode: Number(code),
    startupTimeoutMs,
    shell: bool('shell', 'shell'),
    terminal,
    log: { format: logFormat, level: verbose ? 'debug' : quiet ? 'warn' : 'info' },
    http,
    httpStepDown,
    routing,
    // On unless turned off: by --no-events, or LEADER_RUN_EVENTS=false.
    events: p.getOptionValueSource('events') === undefined ? true : bool('events', 'events'),
    command,
  };
  return { config, names: { config: (f) => where(p, f), httpAddr: where(p, 'http-addr') } };
}

/** --terminal's default: stdin is a terminal, outside a container's PID 1 (which keeps the child
 *  in a session of its own, as before), where /proc can find a tree that has no session. */
function onTerminal(): boolean {
  return process.stdin.isTTY === true && !isContainerInit() && hasProc;
}

/** A signal by name, as kill(1) takes it: TERM, SIGTERM, sigterm. */
function signalOption(text: string | undefined, given: string): NodeJS.Signals | undefined {
  if (text === undefined) return undefined;
  const name = `SIG${text.toUpperCase().replace(/^SIG/, '')}`;
  if (!(name in constants.signals) || name === 'SIGKILL' || name === 'SIGSTOP')
    throw new UsageError(`${given} ${JSON.stringify(text)} is not a signal a child can handle; give a name like TERM, INT, QUIT or USR1`);
  return name as NodeJS.Signals;
}

/** HOST:PORT as Go writes it: `127.0.0.1:9090`, `[::1]:9090`, or `:9090` for every interface. */
function httpAddr(text: string | undefined, given: string): HttpAddr | undefined {
  if (text === undefined) return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d+)$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535)
    throw new UsageError(`${given} ${JSON.stringify(text)} is not HOST:PORT; write it like 127.0.0.1:9090, [::1]:9090 or :9090 (port 0: any free port)`);
  return { host: m[1] ?? (m[2] || undefined), port };
}

function leaderRouting(service: string | undefined, given: string, id: string | undefined): RoutingConfig | undefined {
  if (service === undefined) return undefined;
  if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(service))
    throw new UsageError(
      `${given} ${JSON.stringify(service)} is not a valid Service name: lowercase letters, digits and '-', starting with a letter, at most 63 characters`,
    );
  // The downward API gives the Pod's name; without it, an explicit --id is taken as the name.
  const podEnv = process.env['POD_NAME'];
  const pod = podEnv || id;
  const podFrom = podEnv ? 'POD_NAME' : '--id (LEADER_RUN_ID)';
  if (!pod) throw new UsageError(`${given} needs this Pod's name: set POD_NAME from the downward API (fieldPath: metadata.name), or give the Pod name as --id`);
  // It becomes a label value, which is shorter and stricter than a Pod name.
  if (pod.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(pod))
    throw new UsageError(
      `${given}: the Pod name ${JSON.stringify(pod)} (from ${podFrom}) cannot be a label value: at most 63 letters, digits, '-', '_' or '.'`,
    );
  const podNamespace = process.env['POD_NAMESPACE'] || undefined;
  return { service, pod, podNamespace, podFrom: podNamespace ? `${podFrom} and POD_NAMESPACE` : `${podFrom} and the Lease's namespace` };
}
