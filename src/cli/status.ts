/**
 * `leader-run status`: who holds a Lease, for how long, and when it expires as seen from here
 * — once, or one line per leadership change with --watch. Read-only: it needs `get` on leases,
 * and `watch` for --watch to see every change (without, it reads once a second). The Kubernetes client is loaded only after the flags parse, so --help
 * stays fast.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { ExitStatus } from '../core/exit-status.ts';
import { addFlag, addLeaseFlags, InfoShown, leaseFlags, parseCommandLine, UsageError, where } from './flags.ts';
import { COLUMNS, changeKey, formatTable, type LeaseView, leaseView, tableRow } from './lease-view.ts';

/** Exit status when the Lease does not exist (nobody has campaigned for it, or a typo). */
export const NO_SUCH_LEASE = 1;

/** Deadline of one read; the API server answers a GET in milliseconds when it answers at all. */
const READ_DEADLINE_MS = 10_000;
const WATCH_EVERY_MS = 1_000;

const examples = `
Examples:
  leader-run status --lock-name nightly-report
  leader-run status --lock-name nightly-report --lock-namespace jobs -o json
  leader-run status --lock-name nightly-report --watch       # one line per change; Ctrl-C ends it
  leader-run status --lock-name encoder --slots 3            # every slot: encoder-0 … encoder-2

"Renewed" and "expires in" compare the Lease's renewTime with this machine's clock: they are
for reading, and leader-run never decides anything by them. Exit statuses: 0 shown; 1 no such
Lease; 64 bad usage; 69 API unreachable; 77 not permitted; 78 bad configuration.
`;

export interface StatusIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: StatusIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

export async function status(argv: readonly string[], version: string, io: StatusIO = stdio): Promise<number> {
  const p = new Command('leader-run status')
    .usage('--lock-name <name> [options]')
    .description('Show who holds a Lease: holder, held for, renewed ago, expires in, transitions, strategy, preferred holder.')
    .helpOption('-h, --help', 'show this help and exit')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: () => {}, outputError: () => {} })
    .addHelpText('after', examples);
  addLeaseFlags(p, 'to show');
  p.addOption(new Option('-o, --output <format>', 'table or json').default('table'));
  addFlag(p, '--slots <n>', 'show the n Leases NAME-0 … NAME-(n-1) of a --slots semaphore, one row each', 'slots');
  p.addOption(new Option('-w, --watch', 'follow the Lease (a watch; a read every second without watch permission) and print a line for each change'));
  let ref: { name: string; namespace: string | undefined };
  let slots: number | undefined;
  try {
    parseCommandLine(p, argv, 'leader-run status');
    ref = leaseFlags(p, 'the name of the Lease to show', false);
    const n = p.opts<{ slots?: string }>().slots;
    if (n !== undefined) {
      if (!/^\d+$/.test(n) || Number(n) < 1 || Number(n) > 100)
        throw new UsageError(`${where(p, 'slots')} ${JSON.stringify(n)} must be a whole number from 1 to 100`);
      if (p.opts<{ watch?: boolean }>().watch)
        throw new UsageError(`${where(p, 'slots')} and --watch do not go together: --watch follows one Lease; give --lock-name ${ref.name}-K for slot K`);
      slots = Number(n);
    }
  } catch (e) {
    if (e instanceof InfoShown) return ExitStatus.ok;
    if (e instanceof UsageError) return usage(io, e.message);
    throw e;
  }
  const o = p.opts<{ kubeconfig?: string; context?: string; output: string; watch?: boolean }>();
  if (o.output !== 'table' && o.output !== 'json') return usage(io, `--output ${JSON.stringify(o.output)} is not a format; use table or json`);

  const [{ connectLease }, { ConfigError }, { ApiError }, { verdictFor }] = await Promise.all([
    import('../lease/connect.ts'),
    import('../kube/config.ts'),
    import('../kube/errors.ts'),
    import('../supervisor/failures.ts'),
  ]);
  let conn: Awaited<ReturnType<typeof connectLease>>;
  try {
    conn = await connectLease(ref, { kubeconfig: o.kubeconfig, context: o.context }, `leader-run/${version} (status)`, slots);
  } catch (e) {
    if (e instanceof ConfigError)
      return fail(
        io,
        e.describe((f) => where(p, f)),
        ExitStatus.config,
      );
    throw e;
  }
  const { client, lock, locks, lease, namespace, target } = conn;
  const ctx = { namespace, source: target.source, namespaceFrom: '', namespaceOption: '--lock-namespace' };
  /** What an error means for the user, and the status it ends in (undefined: may pass). */
  const explain = (e: unknown): { message: string; status: number | undefined } => {
    if (!(e instanceof ApiError)) return { message: `internal error: ${e instanceof Error ? e.message : String(e)}`, status: ExitStatus.software };
    const v = verdictFor(e, 'status-read', ctx);
    return v.retry ? { message: `API server unreachable: ${e.message}`, status: undefined } : { message: v.message, status: v.status };
  };

  try {
    if (slots) {
      const views: LeaseView[] = [];
      for (const l of locks) {
        try {
          views.push(leaseView(l.description, await l.get(AbortSignal.timeout(READ_DEADLINE_MS)), Date.now()));
        } catch (e) {
          const x = explain(e);
          return fail(io, x.message, x.status ?? ExitStatus.unavailable);
        }
      }
      if (views.every((v) => v.state === 'absent'))
        return fail(io, `none of the Leases ${lease} exists: nobody has campaigned with --slots ${slots} yet, or a flag is wrong`, NO_SUCH_LEASE);
      io.out(o.output === 'json' ? `${JSON.stringify(views, null, 2)}\n` : `${formatTable([COLUMNS, ...views.map(tableRow)], []).join('\n')}\n`);
      return ExitStatus.ok;
    }
    if (!o.watch) {
      let snap: Awaited<ReturnType<typeof lock.get>>;
      try {
        snap = await lock.get(AbortSignal.timeout(READ_DEADLINE_MS));
      } catch (e) {
        const x = explain(e);
        return fail(io, x.message, x.status ?? ExitStatus.unavailable);
      }
      if (!snap) return fail(io, `Lease ${lease} does not exist: nobody has campaigned for it yet, or --lock-name / --lock-namespace is wrong`, NO_SUCH_LEASE);
      const v = leaseView(lease, snap, Date.now());
      io.out(o.output === 'json' ? `${JSON.stringify(v, null, 2)}\n` : `${formatTable([COLUMNS, tableRow(v)], []).join('\n')}\n`);
      return ExitStatus.ok;
    }
    const watchFailure = (e: unknown): 'gone' | 'forbidden' | undefined =>
      e instanceof ApiError && e.call?.verb === 'watch' && (e.kind === 'gone' || e.kind === 'forbidden') ? e.kind : undefined;
    return await watch(
      io,
      o.output,
      lease,
      (signal) => lock.get(signal),
      (from, signal, onChange) => lock.watch(from, signal, onChange),
      watchFailure,
      explain,
    );
  } finally {
    client.close();
  }
}

/** Something that follows the Lease from a resourceVersion, calling back on each change,
 *  until the server ends the watch or the signal aborts (KubeLeaseLock.watch). */
type Follow = (fromVersion: string, signal: AbortSignal, onChange: (snap: Parameters<typeof leaseView>[1]) => void) => Promise<void>;

/** Reads the Lease, then follows it with a watch (a poll every second where watch is not
 *  permitted); prints a line whenever the leadership picture changes. Ends with 0 on
 *  SIGINT/SIGTERM; with the error's status if the first read fails or a later error will not pass. */
async function watch(
  io: StatusIO,
  output: string,
  lease: string,
  read: (signal: AbortSignal) => Promise<Parameters<typeof leaseView>[1]>,
  follow: Follow,
  /** How a watch failed, when it is one that --watch gets over: 'gone' (410), 'forbidden'. */
  watchFailure: (e: unknown) => 'gone' | 'forbidden' | undefined,
  explain: (e: unknown) => { message: string; status: number | undefined },
): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A reader that went away (`| head -2`) ends the watch like Ctrl-C does.
  process.stdout.on('error', onSignal);
  const widths: number[] = [];
  let last = '';
  let lastError = '';
  let seen = false;
  let polling = false;
  const show = (snap: Parameters<typeof leaseView>[1]): void => {
    const v = leaseView(lease, snap, Date.now());
    if (changeKey(v) !== last) {
      last = changeKey(v);
      io.out(render(v, output, widths));
    }
  };
  try {
    while (!stop.signal.aborted) {
      const t0 = Date.now();
      try {
        const snap = await read(AbortSignal.any([stop.signal, AbortSignal.timeout(READ_DEADLINE_MS)]));
        seen = true;
        lastError = '';
        show(snap);
        // Every change from this version on, at once: a poll would miss a short gap.
        if (!polling) {
          await follow(snap?.resourceVersion ?? '0', stop.signal, show);
          continue;
        }
      } catch (e) {
        if (stop.signal.aborted) break;
        const kind = watchFailure(e);
        // The version we asked from is too old: read again and follow on from there.
        if (kind === 'gone') continue;
        if (kind === 'forbidden') {
          polling = true;
          io.err(`leader-run status: ${(e as Error).message}; reading the Lease every second instead (grant watch on leases to see every change)\n`);
          continue;
        }
        const x = explain(e);
        if (x.status !== undefined || !seen) return fail(io, x.message, x.status ?? ExitStatus.unavailable);
        // Passing trouble (the API server restarting, a watch that expired): say so once, go on.
        if (x.message !== lastError) io.err(`leader-run status: ${x.message}; still watching\n`);
        lastError = x.message;
      }
      await sleep(Math.max(0, WATCH_EVERY_MS - (Date.now() - t0)), undefined, { signal: stop.signal }).catch(() => {});
    }
    return ExitStatus.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onSignal);
  }
}

function render(v: LeaseView, output: string, widths: number[]): string {
  if (output === 'json') return `${JSON.stringify(v)}\n`;
  const time = new Date(v.observedAt).toTimeString().slice(0, 8);
  const rows =
    widths.length === 0
      ? [
          ['TIME', ...COLUMNS],
          [time, ...tableRow(v)],
        ]
      : [[time, ...tableRow(v)]];
  return `${formatTable(rows, widths).join('\n')}\n`;
}

function usage(io: StatusIO, message: string): number {
  return fail(io, message, ExitStatus.usage);
}

function fail(io: StatusIO, message: string, code: number): number {
  io.err(`leader-run status: ${message}\n`);
  return code;
}
