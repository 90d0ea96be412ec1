/**
 * Leader routing (--leader-service): our Pod carries the label leader-run.io/pod=<its name>,
 * and the leader points a Service's selector at exactly that label, so the Service's traffic
 * reaches only the Pod that leads.
 *
 * Both writes are GET then PUT with the resourceVersion read (compare-and-set). For the
 * Service that matters: a write based on a read from before another leader's write fails
 * with 409 instead of pointing the Service back at a Pod that no longer leads. What an error
 * means (retry, or give up with which status) is the caller's failure policy.
 */
import type { KubeClient } from '../kube/client.ts';
import { ApiError, type Verb } from '../kube/errors.ts';

export const POD_LABEL = 'leader-run.io/pod';

interface KubeObject {
  metadata?: { resourceVersion?: string; labels?: Record<string, string> };
  spec?: { selector?: Record<string, string> | null };
  [k: string]: unknown;
}

export interface RoutingTarget {
  readonly namespace: string;
  readonly pod: string;
  readonly service: string;
}

/** How to go on after an error: retry it (calling onRetry) while `until()` holds. */
export interface RetryPolicy {
  readonly retry: (e: ApiError) => boolean;
  readonly until: () => boolean;
  readonly onRetry: (e: ApiError) => void;
  /** Pause before a retry (a conflict is retried at once: someone else wrote, read again). */
  readonly pauseMs: number;
}

export type RoutingOutcome = { readonly ok: true; readonly changed: boolean } | { readonly ok: false; readonly error: ApiError };

export class LeaderRouting {
  readonly #client: KubeClient;
  readonly #t: RoutingTarget;
  readonly #deadlineMs: number;

  constructor(client: KubeClient, target: RoutingTarget, requestDeadlineMs: number) {
    this.#client = client;
    this.#t = target;
    this.#deadlineMs = requestDeadlineMs;
  }

  get target(): RoutingTarget {
    return this.#t;
  }
  get pod(): string {
    return `${this.#t.namespace}/${this.#t.pod}`;
  }
  get service(): string {
    return `${this.#t.namespace}/${this.#t.service}`;
  }

  /** At start, before campaigning: labels our Pod. */
  labelPod(policy: RetryPolicy): Promise<RoutingOutcome> {
    return this.#retry(policy, () => this.#labelOnce());
  }

  /** On leading, before the child starts: points the Service at our Pod. */
  routeHere(policy: RetryPolicy): Promise<RoutingOutcome> {
    return this.#retry(policy, () => this.#pointOnce());
  }

  async #labelOnce(): Promise<boolean> {
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#t.namespace)}/pods/${encodeURIComponent(this.#t.pod)}`;
    const pod = await this.#call<KubeObject>('GET', path, undefined, 'get', 'pods', `Pod ${this.pod}`);
    if (pod.metadata?.labels?.[POD_LABEL] === this.#t.pod) return false;
    const body = { ...pod, metadata: { ...pod.metadata, labels: { ...pod.metadata?.labels, [POD_LABEL]: this.#t.pod } } };
    await this.#call('PUT', path, body, 'update', 'pods', `Pod ${this.pod}`);
    return true;
  }

  async #pointOnce(): Promise<boolean> {
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#t.namespace)}/services/${encodeURIComponent(this.#t.service)}`;
    const svc = await this.#call<KubeObject>('GET', path, undefined, 'get', 'services', `Service ${this.service}`);
    const want = { [POD_LABEL]: this.#t.pod };
    const have = svc.spec?.selector ?? {};
    if (Object.keys(have).length === 1 && have[POD_LABEL] === this.#t.pod) return false;
    await this.#call('PUT', path, { ...svc, spec: { ...svc.spec, selector: want } }, 'update', 'services', `Service ${this.service}`);
    return true;
  }

  #call<T>(method: 'GET' | 'PUT', path: string, body: unknown, verb: Verb, resource: string, object: string): Promise<T> {
    return this.#client.request<T>({ method, path, body, signal: AbortSignal.timeout(this.#deadlineMs), call: { verb, resource, object } });
  }

  async #retry(policy: RetryPolicy, once: () => Promise<boolean>): Promise<RoutingOutcome> {
    for (;;) {
      try {
        return { ok: true, changed: await once() };
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        if (!policy.retry(e)) return { ok: false, error: e };
        if (e.kind !== 'conflict') {
          policy.onRetry(e);
          await new Promise((r) => setTimeout(r, policy.pauseMs));
        }
        if (!policy.until()) return { ok: false, error: e };
      }
    }
  }
}
