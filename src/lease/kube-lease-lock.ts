/** The LeaseLock on the Kubernetes API: coordination.k8s.io/v1 Leases, as raw JSON. */
import type { KubeClient } from '../kube/client.ts';
import { ApiError, type Call, type Verb } from '../kube/errors.ts';
import type { LeaseLock } from './lock.ts';
import type { LeaseSnapshot, LeaseSpec } from './record.ts';

/** How long the server keeps one watch open before we start the next from the last version. */
const WATCH_SECONDS = 300;

interface LeaseObject {
  metadata?: { uid?: string; resourceVersion?: string; name?: string; namespace?: string };
  spec?: LeaseSpec;
  [k: string]: unknown;
}

export function snapshotOf(o: LeaseObject): LeaseSnapshot {
  return { uid: o.metadata?.uid ?? '', resourceVersion: o.metadata?.resourceVersion ?? '', spec: o.spec ?? {}, object: o };
}

export class KubeLeaseLock implements LeaseLock {
  readonly namespace: string;
  readonly name: string;
  readonly description: string;
  readonly #client: KubeClient;

  constructor(client: KubeClient, namespace: string, name: string) {
    this.#client = client;
    this.namespace = namespace;
    this.name = name;
    this.description = `${namespace}/${name}`;
  }

  get collectionPath(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`;
  }

  get path(): string {
    return `${this.collectionPath}/${encodeURIComponent(this.name)}`;
  }

  #call(verb: Verb): Call {
    return { verb, resource: 'leases', object: `Lease ${this.description}` };
  }

  async get(signal: AbortSignal): Promise<LeaseSnapshot | null> {
    try {
      return snapshotOf(await this.#client.request<LeaseObject>({ method: 'GET', path: this.path, signal, call: this.#call('get'), redialOnTimeout: true }));
    } catch (e) {
      if (e instanceof ApiError && e.kind === 'not-found') return null;
      throw e;
    }
  }

  async watch(fromVersion: string, signal: AbortSignal, onChange: (s: LeaseSnapshot | null) => void): Promise<void> {
    const q = new URLSearchParams({
      watch: 'true',
      fieldSelector: `metadata.name=${this.name}`,
      resourceVersion: fromVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(WATCH_SECONDS),
    });
    const call = this.#call('watch');
    let failure: ApiError | null = null;
    await this.#client.stream({ path: `${this.collectionPath}?${q}`, signal, call }, (line) => {
      if (failure) return;
      const ev = JSON.parse(line) as { type: string; object: LeaseObject & { code?: number; message?: string } };
      if (ev.type === 'ADDED' || ev.type === 'MODIFIED') onChange(snapshotOf(ev.object));
      else if (ev.type === 'DELETED') onChange(null);
      else if (ev.type === 'ERROR')
        failure = new ApiError(
          ev.object.code === 410 ? 'gone' : 'other',
          `watch Lease ${this.description}: ${ev.object.message ?? 'error event'}`,
          ev.object.code,
          { call },
        );
    });
    if (failure) throw failure;
  }

  async create(spec: LeaseSpec, signal: AbortSignal): Promise<LeaseSnapshot> {
    const body = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace },
      spec,
    };
    return snapshotOf(
      await this.#client.request<LeaseObject>({ method: 'POST', path: this.collectionPath, body, signal, call: this.#call('create'), redialOnTimeout: true }),
    );
  }

  async update(prev: LeaseSnapshot, spec: LeaseSpec, signal: AbortSignal): Promise<LeaseSnapshot> {
    const meta = (prev.object['metadata'] ?? {}) as Record<string, unknown>;
    // resourceVersion makes the PUT a compare-and-set; uid makes it fail on a recreated Lease.
    const body = { ...prev.object, metadata: { ...meta, resourceVersion: prev.resourceVersion, uid: prev.uid }, spec };
    return snapshotOf(
      await this.#client.request<LeaseObject>({ method: 'PUT', path: this.path, body, signal, call: this.#call('update'), redialOnTimeout: true }),
    );
  }
}
