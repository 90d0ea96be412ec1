/**
 * Leader routing (--leader-service): our Pod carries the label leader-run.io/pod=<its name>,
 * and the leader points a Service's selector at exactly that label, so the Service's traffic
 * reaches only the Pod that leads.
 *
 * Both writes are GET then PUT with the resourceVersion read (compare-and-set). For the
 * Service that matters: a write based on a read from before another leader's write fails
 * with 409 instead of pointing the Service back at a Pod that no longer leads.
 */
import type { KubeClient } from './client.ts';
import { ApiError, ExitStatus } from './errors.ts';
import type { Logger } from '../observe/log.ts';

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
  /** Where the Pod's name and namespace came from, for messages. */
  readonly podFrom: string;
}

export class LeaderRouting {
  readonly #client: KubeClient;
  readonly #t: RoutingTarget;
  readonly #deadlineMs: number;
  readonly #retryMs: number;

  constructor(client: KubeClient, target: RoutingTarget, opts: { deadlineMs: number; retryMs: number }) {
    this.#client = client;
    this.#t = target;
    this.#deadlineMs = opts.deadlineMs;
    this.#retryMs = opts.retryMs;
  }

  get pod(): string {
    return `${this.#t.namespace}/${this.#t.pod}`;
  }
  get service(): string {
    return `${this.#t.namespace}/${this.#t.service}`;
  }

  /** At start, before campaigning: labels our Pod. Retries what may pass for `timeoutMs`;
   *  returns an exit status if it cannot be done. */
  async labelPod(log: Logger, timeoutMs: number): Promise<number | undefined> {
    const until = Date.now() + timeoutMs;
    return this.#retry(
      log,
      () => Date.now() < until,
      () => this.#labelOnce(),
      'pods',
      (changed) => log.info(`${changed ? 'labelled' : 'already labelled'} Pod ${this.pod} ${POD_LABEL}=${this.#t.pod}`, { event: 'pod-labelled' }),
      (last) => {
        log.error(`could not label Pod ${this.pod} within --startup-timeout: ${last.message}`, { event: 'unreachable' });
        return ExitStatus.unavailable;
      },
    );
  }

  /** On leading, before the child starts: points the Service at our Pod. Retries while
   *  `still()` holds (we lead and are not stopping); returns an exit status if it cannot be done. */
  async routeHere(log: Logger, still: () => boolean): Promise<number | undefined> {
    return this.#retry(
      log,
      still,
      () => this.#pointOnce(),
      'services',
      (changed) => log.info(`Service ${this.service} ${changed ? 'now selects' : 'already selected'} ${POD_LABEL}=${this.#t.pod}`, { event: 'service-routed' }),
      () => undefined, // no longer leading, or stopping: the caller's stop sequence takes over
    );
  }

  async #labelOnce(): Promise<boolean> {
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#t.namespace)}/pods/${encodeURIComponent(this.#t.pod)}`;
    const pod = await this.#call<KubeObject>('GET', path, undefined, `get Pod ${this.pod}`);
    if (pod.metadata?.labels?.[POD_LABEL] === this.#t.pod) return false;
    const body = { ...pod, metadata: { ...pod.metadata, labels: { ...pod.metadata?.labels, [POD_LABEL]: this.#t.pod } } };
    await this.#call('PUT', path, body, `update Pod ${this.pod}`);
    return true;
  }

  async #pointOnce(): Promise<boolean> {
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#t.namespace)}/services/${encodeURIComponent(this.#t.service)}`;
    const svc = await this.#call<KubeObject>('GET', path, undefined, `get Service ${this.service}`);
    const want = { [POD_LABEL]: this.#t.pod };
    const have = svc.spec?.selector ?? {};
    if (Object.keys(have).length === 1 && have[POD_LABEL] === this.#t.pod) return false;
    await this.#call('PUT', path, { ...svc, spec: { ...svc.spec, selector: want } }, `update Service ${this.service}`);
    return true;
  }

  #call<T>(method: 'GET' | 'PUT', path: string, body: unknown, what: string): Promise<T> {
    return this.#client.request<T>({ method, path, body, signal: AbortSignal.timeout(this.#deadlineMs), what });
  }

  async #retry(
    log: Logger,
    still: () => boolean,
    once: () => Promise<boolean>,
    resource: 'pods' | 'services',
    done: (changed: boolean) => void,
    giveUp: (last: ApiError) => number | undefined,
  ): Promise<number | undefined> {
    for (;;) {
      try {
        done(await once());
        return undefined;
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        const status = this.#fatal(e, resource, log);
        if (status !== undefined) return status;
        // A conflict is someone else's write (the kubelet, another leader): read again at once.
        if (e.kind !== 'conflict') {
          log.warn(e.message, { event: 'api-error' });
          await new Promise((r) => setTimeout(r, this.#retryMs));
        }
        if (!still()) return giveUp(e);
      }
    }
  }

  /** Errors that retrying will not fix: logged with what to do, and their exit status. */
  #fatal(e: ApiError, resource: 'pods' | 'services', log: Logger): number | undefined {
    const kind = resource === 'pods' ? 'Pod' : 'Service';
    if (e.kind === 'unauthorized') {
      // 401 is about who we are: RBAC advice would mislead.
      log.error(`${e.message}; the API server did not accept the credentials: renew the token or certificate, or pick another user or context`, { event: 'unauthorized' });
      return ExitStatus.noperm;
    }
    if (e.kind === 'forbidden') {
      const verb = /^(get|update) /.exec(e.message)?.[1];
      log.error(
        `${e.message}; ${verb ? `missing permission: ${verb} on ${resource} in namespace ${this.#t.namespace}; ` : ''}` +
          `--leader-service needs get and update on pods and services there — see the leader-run-routing Role in examples/rbac.yaml`,
        { event: 'forbidden' },
      );
      return ExitStatus.noperm;
    }
    if (e.kind === 'not-found') {
      const fix =
        resource === 'pods'
          ? `the Pod's name and namespace come from ${this.#t.podFrom}; set POD_NAME and POD_NAMESPACE from the downward API (metadata.name, metadata.namespace)`
          : `create the Service, or fix --leader-service`;
      log.error(`${kind} ${resource === 'pods' ? this.pod : this.service} does not exist; ${fix}`, { event: 'config-invalid' });
      return ExitStatus.config;
    }
    if (e.kind === 'invalid' || e.kind === 'tls') {
      log.error(e.message, { event: 'config-invalid' });
      return ExitStatus.config;
    }
    return undefined;
  }
}
