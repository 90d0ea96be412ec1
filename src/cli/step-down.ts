/**
 * `leader-run step-down --lock-name X`: asks the current leader to hand over now — for a node
 * drain or maintenance — without a lost-lease 75 and without waiting a lease duration. It
 * writes a request for the current term on the Lease as an annotation (record.ts says why
 * that can mislead nobody), then waits until the holder changes or the Lease is released.
 * The leader stops its child as on SIGTERM (renewing meanwhile), releases, and exits 0.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { parseDuration } from '../core/duration.ts';
import { ExitStatus } from '../core/exit-status.ts';
import { addFlag, addLeaseFlags, InfoShown, leaseFlags, parseCommandLine, UsageError, where } from './flags.ts';

/** Nobody holds the Lease (or there is none): nothing to step down from. */
export const NOT_HELD = 1;

const DEFAULT_TIMEOUT = '60s';
const REQUEST_DEADLINE_MS = 10_000;
const POLL_MS = 200;

const examples = `
Examples:
  leader-run step-down --lock-name nightly-report
  leader-run step-down --lock-name scheduler --to scheduler-7d9f-x2k4q   # only that candidate takes over
  kubectl exec deploy/nightly-report -- leader-run step-down      # the Pod's own LEADER_RUN_* settings

Only a leader-run leader of this version or later acts on the request; a client-go candidate
holding the Lease ignores it and keeps leading (the request then times out). With --to, the
leader writes the Lease over to that identity: a candidate of that name (leader-run or
client-go) takes it at once, the others wait as for any holder, and take over only if it has
not done so within a lease duration. Exit statuses:
0 the leader handed over (the Lease is released or held by another); 1 nobody holds the Lease;
64 bad usage; 69 API unreachable; 75 the leader did not step down within --timeout;
77 not permitted (it needs get and update on the Lease); 78 bad configuration.
`;

export interface StepDownIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: StepDownIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

export async function stepDown(argv: readonly string[], version: string, io: StepDownIO = stdio): Promise<number> {
  const p = new Command('leader-run step-down')
    .usage('--lock-name <name> [options]')
    .description("Ask the Lease's current leader to stop its child and release the Lease now.")
    .helpOption('-h, --help', 'show this help and exit')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: () => {}, outputError: () => {} })
    .addHelpText('after', examples);
  addLeaseFlags(p, 'to hand over');
  addFlag(p, '--timeout <duration>', 'give up (exit 75) if the leader has not handed over by then', 'timeout', DEFAULT_TIMEOUT);
  addFlag(p, '--to <identity>', 'hand the Lease to this candidate (its --id): nobody else may take it next', 'to');
  let ref: { name: string; namespace: string | undefined };
  let timeoutMs: number;
  let to: string | undefined;
  try {
    parseCommandLine(p, argv, 'leader-run step-down');
    ref = leaseFlags(p, 'the name of the Lease whose leader should hand over', false);
    const text = p.opts<{ timeout: string }>().timeout;
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0)
      throw new UsageError(`${where(p, 'timeout')} ${JSON.stringify(text)} is not a duration above zero; write it like 30s or 2m`);
    timeoutMs = ms;
    to = p.opts<{ to?: string }>().to;
    if (to !== undefined && to.trim() === '') throw new UsageError(`${where(p, 'to')} is empty; give the identity (--id) of the candidate to hand over to`);
  } catch (e) {
    if (e instanceof InfoShown) return ExitStatus.ok;
    if (e instanceof UsageError) return fail(io, e.message, ExitStatus.usage);
    throw e;
  }
  const o = p.opts<{ kubeconfig?: string; context?: string }>();

  const [{ connectLease }, { ConfigError }, { ApiError }, { verdictFor }, record] = await Promise.all([
    import('../lease/connect.ts'),
    import('../kube/config.ts'),
    import('../kube/errors.ts'),
    import('../supervisor/failures.ts'),
    import('../lease/record.ts'),
  ]);
  let conn: Awaited<ReturnType<typeof connectLease>>;
  try {
    conn = await connectLease(ref, { kubeconfig: o.kubeconfig, context: o.context }, `leader-run/${version} (step-down)`);
  } catch (e) {
    if (e instanceof ConfigError)
      return fail(
        io,
        e.describe((f) => where(p, f)),
        ExitStatus.config,
      );
    throw e;
  }
  const { client, lock, lease, namespace, target } = conn;
  const ctx = { namespace, source: target.source, namespaceFrom: '', namespaceOption: '--lock-namespace' };
  const explain = (e: unknown): number => {
    if (!(e instanceof ApiError)) throw e;
    const v = verdictFor(e, 'lease', ctx);
    return v.retry ? fail(io, `API server unreachable: ${e.message}`, ExitStatus.unavailable) : fail(io, v.message, v.status);
  };
  const deadline = AbortSignal.timeout(REQUEST_DEADLINE_MS);
  try {
    // Written as a read and a compare-and-set update (the verbs a leader-run Role grants),
    // again if a renewal wrote in between.
    let term: { holder: string; transitions: number };
    for (;;) {
      let snap: Awaited<ReturnType<typeof lock.get>>;
      try {
        snap = await lock.get(deadline);
      } catch (e) {
        return explain(e);
      }
      const holder = record.holderOf(snap);
      if (!snap || !holder) return fail(io, `nobody holds Lease ${lease}: nothing to step down from`, NOT_HELD);
      if (to === holder) return fail(io, `${where(p, 'to')} ${to} already holds Lease ${lease}: name another candidate`, ExitStatus.usage);
      term = { holder, transitions: record.transitionsOf(snap) };
      try {
        // Metadata only: the claim goes back exactly as read.
        const value = record.stepDownValue({ ...term, to });
        await lock.update(record.withAnnotations(snap, { [record.STEP_DOWN_ANNOTATION]: value }), snap.spec, deadline);
        break;
      } catch (e) {
        if (e instanceof ApiError && e.kind === 'conflict') continue;
        return explain(e);
      }
    }
    io.err(`leader-run step-down: asked ${term.holder} to hand over Lease ${lease}${to ? ` to ${to}` : ''}; waiting up to ${Math.round(timeoutMs / 1000)}s\n`);
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      await sleep(POLL_MS);
      let snap: Awaited<ReturnType<typeof lock.get>>;
      try {
        snap = await lock.get(AbortSignal.timeout(REQUEST_DEADLINE_MS));
      } catch (e) {
        if (e instanceof ApiError && e.kind === 'unavailable') continue;
        return explain(e);
      }
      const now = record.holderOf(snap);
      if (now !== term.holder || record.transitionsOf(snap) !== term.transitions) {
        // With --to, the hand-over record itself names `to`: it takes the Lease at once if it campaigns.
        const said = !now ? `Lease ${lease} is free` : now === to ? `handed Lease ${lease} to ${to}` : `${now} leads Lease ${lease}`;
        io.out(`${term.holder} stepped down; ${said}\n`);
        return ExitStatus.ok;
      }
    }
    return fail(
      io,
      `${term.holder} still holds Lease ${lease} after ${Math.round(timeoutMs / 1000)}s: it may not be leader-run (a client-go candidate ignores the request), or its child is slow to stop`,
      ExitStatus.tempfail,
    );
  } finally {
    client.close();
  }
}

function fail(io: StepDownIO, message: string, code: number): number {
  io.err(`leader-run step-down: ${message}\n`);
  return code;
}
