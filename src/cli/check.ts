/**
 * `leader-run check [run flags] [-- command]`: a preflight for CI and init containers. It
 * takes the flags of a run (so the same environment checks the same configuration), and
 * says one line per check — the flags and timing, the kubeconfig, and what RBAC allows, by
 * SelfSubjectAccessReview — then exits 0, or with the status a run would give. Nothing is
 * written but the reviews, which the API server does not store.
 */

import { formatDuration } from '../core/duration.ts';
import { ExitStatus } from '../core/exit-status.ts';
import { InfoShown, type ParsedRun, parseArgs, UsageError } from './options.ts';

export interface CheckIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: CheckIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** Deadline of one review. */
const REVIEW_DEADLINE_MS = 10_000;

interface Need {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly namespace: string;
  readonly name?: string;
  /** Required: a denial fails the check with 77. Otherwise a warning: the run works without it. */
  readonly required: boolean;
  /** What a run does without it (for an optional one). */
  readonly without?: string;
}

const HELP = `Usage: leader-run check [options] [-- command]

Checks what a run with these options needs, without campaigning: the flags and timing, the
kubeconfig, and by SelfSubjectAccessReview each permission — get, create, update and watch
on the Lease (with --slots N, on each of NAME-0 … NAME-(N-1)), create on events, with
--coordinated get, create, update and delete on its LeaseCandidate, and with
--leader-service get and update on the Pod and the Service. One line per check. Takes every option of a run (see leader-run --help) and its
LEADER_RUN_* variables; the command is optional.

Examples:
  leader-run check --lock-name nightly-report
  leader-run check --lock-name web --leader-service web-leader     # in an init container

Exit statuses: 0 a run may start (warnings name what it will do without); 64 bad flags;
69 API server unreachable; 77 a needed permission is missing or the credentials are refused;
78 bad configuration.
`;

export async function check(argv: readonly string[], version: string, io: CheckIO = stdio): Promise<number> {
  const dashes = argv.indexOf('--');
  if ((dashes < 0 ? argv : argv.slice(0, dashes)).some((a) => a === '-h' || a === '--help')) {
    io.out(HELP);
    return ExitStatus.ok;
  }
  // The run's own parser, so every flag and variable is checked exactly as a run checks it;
  // the command is optional here.
  const runArgv = argv.includes('--') ? argv : [...argv, '--', 'true'];
  let parsed: ParsedRun;
  try {
    parsed = parseArgs(runArgv, version, io.out);
  } catch (e) {
    if (e instanceof InfoShown) return ExitStatus.ok;
    if (e instanceof UsageError) return line(io, 'fail', `flags: ${e.message}`, ExitStatus.usage);
    throw e;
  }
  const cfg = parsed.config;
  const t = cfg.timing;
  io.out(
    `ok    flags: Lease ${cfg.lease.name}, D=${formatDuration(t.leaseDurationMs)} R=${formatDuration(t.renewDeadlineMs)} P=${formatDuration(t.retryPeriodMs)} G=${formatDuration(t.fenceGraceMs)}${cfg.timingDerived ? ` (${cfg.timingDerived})` : ''}\n`,
  );

  const [{ connectLease, slotNames }, { ConfigError }, { ApiError }, { verdictFor }] = await Promise.all([
    import('../lease/connect.ts'),
    import('../kube/config.ts'),
    import('../kube/errors.ts'),
    import('../supervisor/failures.ts'),
  ]);
  let conn: Awaited<ReturnType<typeof connectLease>>;
  try {
    conn = await connectLease(cfg.lease, cfg.kube, `leader-run/${version} (check)`, cfg.slots);
  } catch (e) {
    if (e instanceof ConfigError) return line(io, 'fail', `kubeconfig: ${e.describe(parsed.names.config)}`, ExitStatus.config);
    throw e;
  }
  const { client, namespace, target, lease } = conn;
  io.out(`ok    kubeconfig: ${target.source}, server ${client.server.origin}, Lease ${lease}\n`);
  const ctx = {
    namespace,
    source: target.source,
    namespaceFrom: cfg.lease.namespace === undefined ? ` (the kubeconfig context's namespace in ${target.source})` : ' (--lock-namespace)',
    namespaceOption: '--lock-namespace',
  };

  // --slots: every slot's Lease, by name.
  const names = cfg.slots ? slotNames(cfg.lease.name, cfg.slots) : [cfg.lease.name];
  const leases = (verb: string, name: string | undefined, required: boolean, without?: string): Need => ({
    verb,
    group: 'coordination.k8s.io',
    resource: 'leases',
    namespace,
    ...(name && { name }),
    required,
    ...(without && { without }),
  });
  const needs: Need[] = [
    ...names.map((n) => leases('get', n, true)),
    // Coordinated: the API server's controller creates the Lease, never the candidate.
    ...(cfg.coordinated ? [] : [leases('create', undefined, true)]),
    ...names.map((n) => leases('update', n, true)),
    ...names.map((n) => leases('watch', n, false, 'a follower polls the Lease every retry period instead of watching it')),
  ];
  if (cfg.events)
    needs.push({ verb: 'create', group: '', resource: 'events', namespace, required: false, without: 'no Events on the Lease (or pass --no-events)' });
  if (cfg.coordinated)
    for (const verb of ['get', 'create', 'update', 'delete'])
      needs.push({
        verb,
        group: 'coordination.k8s.io',
        resource: 'leasecandidates',
        namespace,
        ...(verb !== 'create' && { name: cfg.identity }),
        required: true,
      });
  if (cfg.routing) {
    const ns = cfg.routing.podNamespace ?? namespace;
    for (const [resource, name] of [
      ['pods', cfg.routing.pod],
      ['services', cfg.routing.service],
    ] as const)
      for (const verb of ['get', 'update']) needs.push({ verb, group: '', resource, namespace: ns, name, required: true });
  }

  let status: number = ExitStatus.ok;
  try {
    for (const need of needs) {
      const what = `${need.verb} ${need.resource}${need.group ? `.${need.group}` : ''}${need.name ? `/${need.name}` : ''} in namespace ${need.namespace}`;
      let review: { status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string } };
      try {
        review = await client.request({
          method: 'POST',
          path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: {
              resourceAttributes: {
                verb: need.verb,
                group: need.group,
                resource: need.resource,
                namespace: need.namespace,
                ...(need.name && { name: need.name }),
              },
            },
          },
          signal: AbortSignal.timeout(REVIEW_DEADLINE_MS),
          call: { verb: 'create', resource: 'selfsubjectaccessreviews', object: `SelfSubjectAccessReview for ${what}` },
        });
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        const v = verdictFor(e, 'lease', ctx);
        return line(io, 'fail', v.retry ? `API server unreachable: ${e.message}` : v.message, v.retry ? ExitStatus.unavailable : v.status);
      }
      const reason = review.status?.reason ? ` (${review.status.reason})` : '';
      if (review.status?.allowed) io.out(`ok    may ${what}\n`);
      else if (need.required) {
        io.out(`fail  may not ${what}${reason}: a run needs it — see examples/rbac.yaml\n`);
        status = ExitStatus.noperm;
      } else io.out(`warn  may not ${what}${reason}: ${need.without}\n`);
    }
  } finally {
    client.close();
  }
  return status;
}

function line(io: CheckIO, level: 'fail', message: string, status: number): number {
  io.out(`${level}  ${message}\n`);
  return status;
}
