/**
 * Errors from the Kubernetes API, sorted into the few kinds the election acts on, and the
 * exit statuses of DESIGN §4.
 */

export const ExitStatus = {
  ok: 0,
  usage: 64, // EX_USAGE: bad flags or arguments
  unavailable: 69, // EX_UNAVAILABLE: API unreachable past the start-up window
  software: 70, // EX_SOFTWARE: internal error
  tempfail: 75, // EX_TEMPFAIL: leadership lost, or --wait-timeout passed
  noperm: 77, // EX_NOPERM: 401/403 on the Lease
  config: 78, // EX_CONFIG: no usable kubeconfig or in-cluster config
  notExecutable: 126,
  notFound: 127,
} as const;

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

export class ApiError extends Error {
  readonly kind: ApiErrorKind;
  readonly status: number | undefined;
  /** The call that failed, e.g. "get Lease default/x", when known. */
  readonly what: string | undefined;
  constructor(kind: ApiErrorKind, message: string, status?: number, options?: { cause?: unknown; what?: string }) {
    super(message, options);
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
    this.what = options?.what;
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
export function transportError(err: unknown, what: string): ApiError {
  const e = err as NodeJS.ErrnoException & { name?: string };
  const code = e?.code ?? '';
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError' || code === 'ABORT_ERR')
    return new ApiError('unavailable', `${what}: no answer before the deadline`, undefined, { cause: err });
  if (tlsCodes.has(code))
    return new ApiError('tls', `${what}: the server's TLS certificate did not verify (${code}); check the cluster's certificate-authority in the kubeconfig`, undefined, { cause: err });
  // Name the address that failed and what to check: the bare code alone does not say.
  const ex = e as { hostname?: string; address?: string; port?: number };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new ApiError('unavailable', `${what}: DNS lookup of ${ex.hostname ?? 'the server'} failed (${code}); check the server address in the kubeconfig`, undefined, { cause: err });
  if (code === 'ECONNREFUSED')
    return new ApiError(
      'unavailable',
      `${what}: connection refused by ${ex.address ?? 'the server'}${ex.port ? `:${ex.port}` : ''}; is the API server running, and is the server address in the kubeconfig right?`,
      undefined,
      { cause: err },
    );
  const detail = code || e?.message || String(err);
  return new ApiError('unavailable', `${what}: ${detail}`, undefined, { cause: err });
}
