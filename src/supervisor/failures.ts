/**
 * One failure policy: what an API error means for leader-run — retry it, or end with which
 * exit status and which advice. Used by the run (the Lease), leader routing (the Pod and the
 * Service), `leader-run status` and the library. The verb and resource come from where the
 * request was built (ApiError.call); nothing here reads error messages.
 */

import { ExitStatus } from '../core/exit-status.ts';
import type { LogEvent } from '../core/log.ts';
import type { ApiError } from '../kube/errors.ts';
import type { Fatal } from './events.ts';

export type Operation = 'lease' | 'lease-candidate' | 'pod-label' | 'service-route' | 'status-read';

export type Verdict = { readonly retry: true } | ({ readonly retry: false } & Fatal);

/** The verbs examples/rbac.yaml grants on leases: what a 403's advice tells to grant. */
export const LEASE_VERBS = ['get', 'watch', 'create', 'update'] as const;

export interface FailureContext {
  /** The Lease's namespace (and the Pod's and Service's, for routing). */
  readonly namespace: string;
  /** Where the credentials came from (the kubeconfig file, or the in-cluster account). */
  readonly source: string;
  /** How the namespace was chosen, for "does not exist": ` (--lock-namespace)`, or the
   *  context's namespace in the kubeconfig. */
  readonly namespaceFrom: string;
  /** The option that sets the namespace, in the caller's words (`--lock-namespace`). */
  readonly namespaceOption: string;
  /** With leader routing: the Pod and Service, and where the Pod's name came from. */
  readonly routing?: { readonly pod: string; readonly service: string; readonly podFrom: string };
}

function fatal(status: number, event: LogEvent, message: string): Verdict {
  return { retry: false, status, event, message };
}

export function verdictFor(e: ApiError, op: Operation, ctx: FailureContext): Verdict {
  const verb = e.call?.verb;
  if (op === 'status-read') {
    if (e.kind === 'unauthorized') return fatal(ExitStatus.noperm, 'unauthorized', `${e.message}; check the credentials in ${ctx.source}`);
    if (e.kind === 'forbidden')
      return fatal(ExitStatus.noperm, 'forbidden', `${e.message}; leader-run status needs get on leases (coordination.k8s.io) in namespace ${ctx.namespace}`);
    if (e.kind === 'tls') return fatal(ExitStatus.config, 'tls', e.message);
    if (e.kind === 'unavailable') return { retry: true };
    return fatal(ExitStatus.software, 'api-error', e.message);
  }
  if (e.kind === 'unauthorized') {
    // 401 is about who we are, not what we may do: RBAC advice would mislead. Without a
    // status no request was sent: getting the credentials (an exec plugin) failed.
    const who = e.status === 401 ? `the API server did not accept the credentials from ${ctx.source}` : `check the user's credentials in ${ctx.source}`;
    return fatal(ExitStatus.noperm, 'unauthorized', `${e.message}; ${who}: renew the token or certificate, or pick another user or context`);
  }
  if (e.kind === 'tls') return fatal(ExitStatus.config, 'tls', e.message);
  if (op === 'lease') {
    if (e.kind === 'forbidden') {
      const missing = verb ? `missing permission: ${verb} on leases (coordination.k8s.io) in namespace ${ctx.namespace}; ` : '';
      return fatal(
        ExitStatus.noperm,
        'forbidden',
        `${e.message}; ${missing}grant ${listing(LEASE_VERBS)} on leases there (a Role that narrows get, watch and update with resourceNames must name this Lease) — see examples/rbac.yaml; leader-run check lists what is missing`,
      );
    }
    // A create answered 404 names a namespace that does not exist (the Lease itself is
    // created, never found missing, by a create).
    if (e.kind === 'not-found' && verb === 'create')
      return fatal(
        ExitStatus.config,
        'namespace-missing',
        `namespace ${ctx.namespace}${ctx.namespaceFrom} does not exist; create it (kubectl create namespace ${ctx.namespace}) or pass ${ctx.namespaceOption} with an existing one`,
      );
    if (e.kind === 'invalid') return fatal(ExitStatus.config, 'config-invalid', e.message);
    return { retry: true };
  }
  if (op === 'lease-candidate') {
    if (e.kind === 'forbidden')
      return fatal(
        ExitStatus.noperm,
        'forbidden',
        `${e.message}; --coordinated needs get, create, update and delete on leasecandidates (coordination.k8s.io) in namespace ${ctx.namespace} — see examples/rbac.yaml`,
      );
    if (e.kind === 'not-found')
      return fatal(
        ExitStatus.config,
        'config-invalid',
        `${e.message}; LeaseCandidates are not served in namespace ${ctx.namespace}: the namespace does not exist, or the API server has coordinated leader election off ` +
          '(kube-apiserver --feature-gates=CoordinatedLeaderElection=true --runtime-config=coordination.k8s.io/v1beta1=true); leave out --coordinated there',
      );
    if (e.kind === 'invalid')
      return fatal(ExitStatus.config, 'config-invalid', `${e.message}; check --binary-version and --emulation-version (X.Y.Z, emulation ≤ binary)`);
    return { retry: true };
  }
  // Leader routing: the Pod (label) and the Service (selector).
  const r = ctx.routing;
  const resource = op === 'pod-label' ? 'pods' : 'services';
  if (e.kind === 'forbidden') {
    const missing = verb ? `missing permission: ${verb} on ${e.call?.resource ?? resource} in namespace ${ctx.namespace}; ` : '';
    return fatal(
      ExitStatus.noperm,
      'forbidden',
      `${e.message}; ${missing}--leader-service needs get and update on pods and services there — see the leader-run-routing Role in examples/rbac.yaml`,
    );
  }
  if (e.kind === 'not-found') {
    const message =
      op === 'pod-label'
        ? `Pod ${ctx.namespace}/${r?.pod} does not exist; the Pod's name and namespace come from ${r?.podFrom}; set POD_NAME and POD_NAMESPACE from the downward API (metadata.name, metadata.namespace)`
        : `Service ${ctx.namespace}/${r?.service} does not exist; create the Service, or fix --leader-service`;
    return fatal(ExitStatus.config, 'config-invalid', message);
  }
  if (e.kind === 'invalid') return fatal(ExitStatus.config, 'config-invalid', e.message);
  return { retry: true };
}

function listing(words: readonly string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}
