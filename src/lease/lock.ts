/**
 * The Lease behind a tiny interface, as client-go's resourcelock does, so the election can
 * run against the API server or an in-memory store in unit tests.
 *
 * Every write is a compare-and-set on the resourceVersion (and uid) of the snapshot it
 * replaces: a conflict means someone else wrote first.
 */
import { ApiError } from '../kube/errors.ts';
import type { KubeClient } from '../kube/client.ts';
import type { LeaseSnapshot, LeaseSpec } from './record.ts';

export interface LeaseLock {
  /** "namespace/name", for logs and the child's environment. */
  readonly description: string;
  /** The current Lease, or null when there is none. */
  get(signal: AbortSignal): Promise<LeaseSnapshot | null>;
  /** Creates the Lease; throws ApiError 'conflict' if it exists already. */
  create(spec: LeaseSpec, signal: AbortSignal): Promise<LeaseSnapshot>;
  /** Replaces the spec of `prev`; throws ApiError 'conflict' if the Lease is no longer at
   *  prev's version (or was recreated), 'not-found' if it was deleted. */
  update(prev: LeaseSnapshot, spec: LeaseSpec, signal: AbortSignal): Promise<LeaseSnapshot>;
  /** Optional: streams every change after `fromVersion` to onChange (null: deleted) until the
   *  stream ends (resolve) or fails (reject; ApiError 'gone' when the version is too old). */
  watch?(fromVersion: string, signal: AbortSignal, onChange: (s: LeaseSnapshot | null) => void): Promise<void>;
}

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

  async get(signal: AbortSignal): Promise<LeaseSnapshot | null> {
    try {
      return snapshotOf(await this.#client.request<LeaseObject>({ method: 'GET', path: this.path, signal, what: `get Lease ${this.description}` }));
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
    const what = `watch Lease ${this.description}`;
    let failure: ApiError | null = null;
    await this.#client.stream({ path: `${this.collectionPath}?${q}`, signal, what }, (line) => {
      if (failure) return;
      const ev = JSON.parse(line) as { type: string; object: LeaseObject & { code?: number; message?: string } };
      if (ev.type === 'ADDED' || ev.type === 'MODIFIED') onChange(snapshotOf(ev.object));
      else if (ev.type === 'DELETED') onChange(null);
      else if (ev.type === 'ERROR') failure = new ApiError(ev.object.code === 410 ? 'gone' : 'other', `${what}: ${ev.object.message ?? 'error event'}`, ev.object.code);
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
      await this.#client.request<LeaseObject>({ method: 'POST', path: this.collectionPath, body, signal, what: `create Lease ${this.description}` }),
    );
  }

  async update(prev: LeaseSnapshot, spec: LeaseSpec, signal: AbortSignal): Promise<LeaseSnapshot> {
    const meta = (prev.object['metadata'] ?? {}) as Record<string, unknown>;
    // resourceVersion makes the PUT a compare-and-set; uid makes it fail on a recreated Lease.
    const body = { ...prev.object, metadata: { ...meta, resourceVersion: prev.resourceVersion, uid: prev.uid }, spec };
    return snapshotOf(
      await this.#client.request<LeaseObject>({ method: 'PUT', path: this.path, body, signal, what: `update Lease ${this.description}` }),
    );
  }
}
