/**
 * Errors from the Kubernetes API, sorted into the few kinds the election acts on. What a
 * failure means for a run (retry, or exit with which status and advice) is decided once, in
 * supervisor/failures.ts; this layer only says what happened, to which call.
 */

export type ApiErrorKind =
  | 'conflict' // 409: someone else wrote first (or the object exists already)
  | 'not-found' // 404
  | 'unauthorized' // 401
  | 'forbidden' // 403
  | 'unavailable' // no answer: refused, reset, timed out, DNS, 5xx, 429
  | 'tls' // the server's certificate did not verify
  | 'invalid' // 400/422: we sent something the server rejects
  | 'gone' // 410: a watch asked for a version the server no longer has
  | 'other';

/** The API verbs leader-run uses, as RBAC names them. */
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

/** The call a request makes, set where the request is built: errors say what failed, and
 *  the failure policy reads the verb and resource instead of parsing messages. */
export interface Call {
  readonly verb: Verb;
  /** The resource as RBAC names it: `leases`, `pods`, `services`; or a path such as `/readyz`. */
  readonly resource: string;
  /** The object, for messages: `Lease default/x`. */
  readonly object: string;
}

/** "get Lease default/x": how a call is named in messages. */
export function describeCall(c: Call): string {
  return `${c.verb} ${c.object}`;
}

export class ApiError extends Error {
  readonly kind: ApiErrorKind;
  readonly status: number | undefined;
  /** The call that failed, when known. */
  readonly call: Call | undefined;
  constructor(kind: ApiErrorKind, message: string, status?: number, options?: { cause?: unknown; call?: Call | undefined }) {
    super(message, options);
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
    this.call = options?.call;
  }
}

export function kindOfStatus(status: number): ApiErrorKind {
  if (status === 409) return 'conflict';
  if (status === 404) return 'not-found';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 400 || status === 422) return 'invalid';
  if (status === 410) return 'gone';
  if (status === 429 || status >= 500) return 'unavailable';
  return 'other';
}

const tlsCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
]);

/** Maps a transport failure (no HTTP status) to an ApiError that says what happened. */
export function transportError(err: unknown, call: Call, suffix = ''): ApiError {
  const what = describeCall(call) + suffix;
  const e = err as NodeJS.ErrnoException & { name?: string };
  const code = e?.code ?? '';
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError' || code === 'ABORT_ERR')
    return new ApiError('unavailable', `${what}: no answer before the deadline`, undefined, { cause: err, call });
  if (tlsCodes.has(code))
    return new ApiError(
      'tls',
      `${what}: the server's TLS certificate did not verify (${code}); check the cluster's certificate-authority in the kubeconfig`,
      undefined,
      { cause: err, call },
    );
  // Name the address that failed and what to check: the bare code alone does not say.
  const ex = e as { hostname?: string; address?: string; port?: number };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new ApiError(
      'unavailable',
      `${what}: DNS lookup of ${ex.hostname ?? 'the server'} failed (${code}); check the server address in the kubeconfig`,
      undefined,
      { cause: err, call },
    );
  if (code === 'ECONNREFUSED')
    return new ApiError(
      'unavailable',
      `${what}: connection refused by ${ex.address ?? 'the server'}${ex.port ? `:${ex.port}` : ''}; is the API server running, and is the server address in the kubeconfig right?`,
      undefined,
      { cause: err, call },
    );
  const detail = code || e?.message || String(err);
  return new ApiError('unavailable', `${what}: ${detail}`, undefined, { cause: err, call });
}
