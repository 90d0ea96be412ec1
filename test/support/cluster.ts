// What tests import to reach the control plane. Most tests share the one
// cluster that `npm test` starts; tests that stop, freeze or restart the
// apiserver start a private one so they don't disturb the others.
import { attachCluster } from '../control-plane/cluster.ts';
import type { ClusterInfo } from '../control-plane/cluster.ts';

export {
  apiRequest,
  attachCluster,
  buildControlPlane,
  CANDIDATE_RULES,
  CANDIDATE_USER,
  Cluster,
  freePort,
  LeaderPeer,
  rssKiB,
  serviceAccountKubeconfig,
  spawnGuarded,
  startCluster,
  target,
  writeKubeconfig,
} from '../control-plane/cluster.ts';
export type { ApiResponse, ApiTarget, ClusterInfo, PeerEvent, PeerOptions, PolicyRule, User } from '../control-plane/cluster.ts';
export { FaultProxy } from '../control-plane/proxy.ts';
export type { FaultMode } from '../control-plane/proxy.ts';

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
