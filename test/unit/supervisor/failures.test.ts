import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError, type ApiErrorKind, type Verb } from '../../../src/kube/errors.ts';
import { type Operation, verdictFor } from '../../../src/supervisor/failures.ts';

const ctx = {
  namespace: 'jobs',
  source: '/home/u/.kube/config',
  namespaceFrom: ' (--lock-namespace)',
  namespaceOption: '--lock-namespace',
  routing: { pod: 'web-1', service: 'web', podFrom: 'POD_NAME and POD_NAMESPACE' },
};
const err = (kind: ApiErrorKind, status: number | undefined, verb: Verb, resource = 'leases') =>
  new ApiError(kind, `${verb} X: HTTP ${status}`, status, { call: { verb, resource, object: 'X' } });

describe('the failure policy', () => {
  const rows: Array<[Operation, ApiErrorKind, number | undefined, Verb, number | 'retry', RegExp?]> = [
    ['lease', 'unavailable', undefined, 'get', 'retry'],
    ['lease', 'conflict', 409, 'update', 'retry'],
    ['lease', 'unauthorized', 401, 'get', 77, /did not accept the credentials from \/home\/u\/\.kube\/config/],
    ['lease', 'unauthorized', undefined, 'get', 77, /check the user's credentials/],
    ['lease', 'forbidden', 403, 'create', 77, /missing permission: create on leases .* namespace jobs; grant get, watch, create and update on leases/],
    ['lease', 'tls', undefined, 'get', 78],
    ['lease', 'not-found', 404, 'create', 78, /namespace jobs \(--lock-namespace\) does not exist; create it/],
    ['lease', 'invalid', 422, 'create', 78],
    ['pod-label', 'forbidden', 403, 'update', 77, /missing permission: update on pods in namespace jobs; --leader-service needs get and update/],
    ['pod-label', 'not-found', 404, 'get', 78, /Pod jobs\/web-1 does not exist; the Pod's name and namespace come from POD_NAME/],
    ['service-route', 'not-found', 404, 'get', 78, /Service jobs\/web does not exist/],
    ['service-route', 'conflict', 409, 'update', 'retry'],
    ['service-route', 'unauthorized', 401, 'get', 77],
    ['status-read', 'unavailable', undefined, 'get', 'retry'],
    ['status-read', 'forbidden', 403, 'get', 77, /leader-run status needs get on leases/],
    ['status-read', 'other', 500, 'get', 70],
  ];
  for (const [op, kind, status, verb, want, says] of rows)
    it(`${op}: ${kind} ${status ?? ''} on ${verb} → ${want}`, () => {
      const v = verdictFor(err(kind, status, verb, op === 'pod-label' ? 'pods' : op === 'service-route' ? 'services' : 'leases'), op, ctx);
      if (want === 'retry') return assert.equal(v.retry, true);
      assert.equal(v.retry, false);
      if (v.retry) return;
      assert.equal(v.status, want);
      if (says) assert.match(v.message, says);
    });
});
