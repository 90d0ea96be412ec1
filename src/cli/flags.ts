/**
 * What every leader-run command line shares: the Lease and kubeconfig flags, their
 * LEADER_RUN_* variables, how a flag is named in a message (by the variable, if that is how
 * it was given), and Commander's errors as one line.
 */
import { type Command, CommanderError, Option } from 'commander';
import { LEASE_NAME, NAMESPACE_NAME } from '../lease/record.ts';

/** Bad flags or arguments: one line for the user, exit 64. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** --help or --version was shown: exit 0. */
export class InfoShown extends Error {
  override name = 'InfoShown';
}

/** The environment variable of a flag: --lock-name → LEADER_RUN_LOCK_NAME. */
export function envName(flag: string): string {
  return `LEADER_RUN_${flag.toUpperCase().replaceAll('-', '_')}`;
}

const camel = (flag: string): string => flag.replace(/-(\w)/g, (_m, c: string) => c.toUpperCase());

/** How to name `flag` in a message: `--flag`, or `LEADER_RUN_FLAG (--flag)` if it came from there. */
export function where(p: Command, flag: string): string {
  return p.getOptionValueSource(camel(flag)) === 'env' ? `${envName(flag)} (--${flag})` : `--${flag}`;
}

/** A flag with its variable (and default). */
export function addFlag(p: Command, flags: string, description: string, flag: string, dflt?: string): void {
  const o = new Option(flags, description).env(envName(flag));
  if (dflt !== undefined) o.default(dflt);
  p.addOption(o);
}

/** The Lease and the kubeconfig: the flags every command that reads a Lease takes. */
export function addLeaseFlags(p: Command, lockNameRole: string): void {
  addFlag(p, '--lock-name <name>', `name of the Lease ${lockNameRole} (required)`, 'lock-name');
  addFlag(
    p,
    '--lock-namespace <namespace>',
    "the Lease's namespace (default: the Pod's namespace, else the kubeconfig context's, else 'default')",
    'lock-namespace',
  );
  addFlag(p, '--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account)', 'kubeconfig');
  addFlag(p, '--context <name>', 'kubeconfig context (default: the current context)', 'context');
}

/** Parses argv; --help and --version become InfoShown, any other Commander error one UsageError line. */
export function parseCommandLine(p: Command, argv: readonly string[], helpCommand: string): void {
  try {
    p.parse([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) throw new InfoShown(e.message);
      // Commander puts its "Did you mean" hint on a second line: the user gets one line.
      throw new UsageError(`${e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')}; see ${helpCommand} --help`);
    }
    throw e;
  }
}

/** The Lease flags, validated. `detail`: whether to explain the naming rules in full. */
export function leaseFlags(p: Command, missing: string, detail: boolean): { name: string; namespace: string | undefined } {
  const o = p.opts<{ lockName?: string; lockNamespace?: string }>();
  if (!o.lockName) throw new UsageError(`--lock-name is required (or LEADER_RUN_LOCK_NAME): ${missing}`);
  if (!LEASE_NAME.test(o.lockName))
    throw new UsageError(
      `${where(p, 'lock-name')} ${JSON.stringify(o.lockName)} is not a valid Lease name` +
        (detail ? `: use lowercase letters, digits, '-' and '.', start and end with a letter or digit, at most 253 characters` : ''),
    );
  if (o.lockNamespace !== undefined && !NAMESPACE_NAME.test(o.lockNamespace))
    throw new UsageError(
      `${where(p, 'lock-namespace')} ${JSON.stringify(o.lockNamespace)} is not a valid namespace` +
        (detail ? `: use lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters` : ''),
    );
  return { name: o.lockName, namespace: o.lockNamespace };
}
