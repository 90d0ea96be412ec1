/**
 * From "which Lease, through which kubeconfig" to a lock on it: the one composition the run,
 * `leader-run status` and the library share.
 */
import { KubeClient } from '../kube/client.ts';
import { type KubeRef, loadTarget, type Target } from '../kube/config.ts';
import { KubeLeaseLock } from './kube-lease-lock.ts';

export interface LeaseRef {
  readonly name: string;
  /** Undefined: the Pod's namespace, else the kubeconfig context's, else 'default'. */
  readonly namespace?: string | undefined;
}

export interface LeaseConnection {
  readonly target: Target;
  readonly client: KubeClient;
  readonly lock: KubeLeaseLock;
  /** --slots N: the Leases NAME-0 … NAME-(N-1); otherwise [lock]. */
  readonly locks: readonly KubeLeaseLock[];
  readonly namespace: string;
  /** "namespace/name" (with slots: "namespace/NAME-0…NAME-(N-1)") */
  readonly lease: string;
}

/** The Lease names of `--slots n` for NAME. */
export function slotNames(name: string, n: number): string[] {
  return Array.from({ length: n }, (_, k) => `${name}-${k}`);
}

/** Loads the kubeconfig (kubectl's rules; throws ConfigError) and builds the client and lock.
 *  Nothing is sent yet. */
export async function connectLease(ref: LeaseRef, kube: KubeRef, userAgent: string, slots?: number): Promise<LeaseConnection> {
  const target = loadTarget(kube);
  const namespace = ref.namespace ?? target.namespace;
  const client = await KubeClient.create(target.kc, userAgent);
  const lock = new KubeLeaseLock(client, namespace, ref.name);
  if (!slots) return { target, client, lock, locks: [lock], namespace, lease: lock.description };
  const locks = slotNames(ref.name, slots).map((name) => new KubeLeaseLock(client, namespace, name));
  return { target, client, lock, locks, namespace, lease: `${namespace}/${ref.name}-0…${ref.name}-${slots - 1}` };
}
