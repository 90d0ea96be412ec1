/**
 * The leader-run command: flags → config → run → exit status. Errors the user can fix
 * are one line on stderr with the documented status; nothing prints a stack trace unless
 * --verbose asks for it.
 */
import { readFileSync } from 'node:fs';
import { ExitStatus } from '../core/exit-status.ts';
import { collectStartupGarbage } from '../core/heap.ts';
import { Logger } from '../core/log.ts';
import { InfoShown, type ParsedRun, parseArgs, UsageError } from './options.ts';
import { becomeInitIfPid1 } from './pid1.ts';

/** Our package.json, found upwards from this file (src/cli/ in development, dist/ built). */
function ownVersion(): string {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'leader-run' && pkg.version) return pkg.version;
    } catch {
      // not here: look further up
    }
  }
  return 'unknown';
}

export const version = ownVersion();

export async function main(argv: readonly string[]): Promise<number> {
  // Named in ps and top as what it is (its watchdog: leader-run-watchdog).
  process.title = 'leader-run';
  // A reader that went away (`leader-run --help | head -1`, a closed log pipe) must never
  // crash leader-run, above all while a child runs: what cannot be written is dropped.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  // `leader-run help` as git and kubectl take it; `leader-run help status` for a subcommand's.
  if (argv[0] === 'help') argv = ['status', 'check', 'step-down'].includes(argv[1] ?? '') ? [argv[1]!, '--help'] : ['--help'];
  // A subcommand only as the very first word: `leader-run -- status` still runs a program named status.
  if (argv[0] === 'status') return (await import('./status.ts')).status(argv.slice(1), version);
  if (argv[0] === 'check') return (await import('./check.ts')).check(argv.slice(1), version);
  if (argv[0] === 'step-down') return (await import('./step-down.ts')).stepDown(argv.slice(1), version);
  let parsed: ParsedRun;
  try {
    parsed = parseArgs(argv, version);
  } catch (e) {
    if (e instanceof InfoShown) return ExitStatus.ok;
    if (e instanceof UsageError) return fail(e.message, ExitStatus.usage);
    throw e;
  }
  const { config: cfg, names } = parsed;
  const log = new Logger({ format: cfg.log.format, level: cfg.log.level });
  // A bug must still end in the documented status; the watchdog then kills the child.
  const internalError = (e: unknown): number => {
    log.error(`internal error: ${e instanceof Error ? e.message : String(e)}`, { event: 'internal-error' });
    if (cfg.log.level === 'debug' && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return ExitStatus.software;
  };
  process.on('uncaughtException', (e) => process.exit(internalError(e)));
  process.on('unhandledRejection', (e) => process.exit(internalError(e)));
  collectStartupGarbage();
  const init = becomeInitIfPid1();
  if (init.warning) log.warn(init.warning, { event: 'pid1' });
  // Loaded only now: --help, --version and usage errors never pay for the Kubernetes client.
  const [{ runLeader }, { ConfigError }, { HttpBindError }] = await Promise.all([import('../run.ts'), import('../kube/config.ts'), import('../ops/http.ts')]);
  try {
    return await runLeader(cfg, log, version);
  } catch (e) {
    // Problems of the configuration, worded with the flags (or variables) they came from.
    const message = e instanceof ConfigError ? e.describe(names.config) : e instanceof HttpBindError ? `${names.httpAddr} ${e.message}` : undefined;
    if (message === undefined) return internalError(e);
    log.error(message, { event: 'config-invalid' });
    return ExitStatus.config;
  }
}

function fail(message: string, status: number): number {
  process.stderr.write(`leader-run: ${message}\n`);
  return status;
}
