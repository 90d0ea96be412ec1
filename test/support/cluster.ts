// What tests import to reach the control plane. Most tests share the one
// cluster that `npm test` starts; tests that stop, freeze or restart the
// apiserver start a private one so they don't disturb the others.

import type { ClusterInfo } from '../control-plane/cluster.ts';
import { apiRequest, attachCluster, target } from '../control-plane/cluster.ts';

export type { ApiResponse, ApiTarget, ClusterInfo, PeerEvent, PeerOptions, PolicyRule, User } from '../control-plane/cluster.ts';
export {
  apiRequest,
  attachCluster,
  buildControlPlane,
  CANDIDATE_RULES,
  CANDIDATE_USER,
  Cluster,
  EXAMPLE_RULES,
  freePort,
  LeaderPeer,
  rssKiB,
  serviceAccountKubeconfig,
  spawnGuarded,
  startCluster,
  target,
  writeKubeconfig,
} from '../control-plane/cluster.ts';
export type { FaultMode } from '../control-plane/proxy.ts';
export { FaultProxy } from '../control-plane/proxy.ts';

let shared: Promise<ClusterInfo> | undefined;

/** The cluster started by `npm test` (scripts/test.ts), named by LEADER_RUN_TEST_CLUSTER. */
export function sharedCluster(): Promise<ClusterInfo> {
  const infoPath = process.env.LEADER_RUN_TEST_CLUSTER;
  if (!infoPath) {
    return Promise.reject(
      new Error('LEADER_RUN_TEST_CLUSTER is not set: run end-to-end tests through `npm test` (it starts the cluster), e.g. `npm test -- test/e2e/foo.test.ts`'),
    );
  }
  shared ??= attachCluster(infoPath);
  return shared;
}

/** The path of a Lease in the API. */
export function leasePath(name: string, namespace = 'default'): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`;
}

export interface LeaseObject {
  metadata: { uid: string; resourceVersion: string; [k: string]: unknown };
  spec: { holderIdentity?: string; leaseTransitions?: number; renewTime?: string; acquireTime?: string; leaseDurationSeconds?: number; [k: string]: unknown };
}

/** The Lease as the admin reads it, or undefined when there is none. */
export async function readLease(info: ClusterInfo, name: string, namespace = 'default'): Promise<LeaseObject | undefined> {
  const r = await apiRequest(target(info, 'admin'), 'GET', leasePath(name, namespace));
  return r.status === 200 ? (r.body as LeaseObject) : undefined;
}

/** The Lease's holderIdentity, '' when it is free or there is no Lease. */
export async function holder(info: ClusterInfo, name: string): Promise<string> {
  return (await readLease(info, name))?.spec.holderIdentity ?? '';
}

/** An admin's read-modify-write of the Lease, retried when a renewal wrote in between (409);
 *  returns the object written. */
export async function updateLease(info: ClusterInfo, name: string, change: (lease: LeaseObject) => LeaseObject, namespace = 'default'): Promise<LeaseObject> {
  for (let attempt = 1; ; attempt++) {
    const lease = await readLease(info, name, namespace);
    if (!lease) throw new Error(`Lease ${namespace}/${name} does not exist`);
    const r = await apiRequest(target(info, 'admin'), 'PUT', leasePath(name, namespace), change(structuredClone(lease)));
    if (r.status === 200) return r.body as LeaseObject;
    if (r.status !== 409 || attempt >= 10) throw new Error(`admin PUT Lease ${namespace}/${name}: ${r.status} ${r.text.slice(0, 200)}`);
  }
}
