/**
 * Kubernetes Events on the Lease when leadership changes, in the words client-go's resource
 * lock records them ("<identity> became leader", "<identity> stopped leading"), so that
 * `kubectl describe lease` and `kubectl get events` show who led when. Best effort: nothing
 * in a run waits on an Event but the last one before a graceful exit, and that for a bounded
 * time; a denial (no RBAC for events) is said once and recording stops.
 */
import { hostname } from 'node:os';
import type { Logger } from '../core/log.ts';
import type { KubeClient } from '../kube/client.ts';
import { ApiError } from '../kube/errors.ts';

export interface LeaseEventsTarget {
  readonly namespace: string;
  readonly lease: string;
  readonly identity: string;
}

export class LeaseEvents {
  readonly #client: KubeClient;
  readonly #to: LeaseEventsTarget;
  readonly #log: Logger;
  readonly #deadlineMs: number;
  #off = false;

  constructor(client: KubeClient, to: LeaseEventsTarget, log: Logger, deadlineMs: number) {
    this.#client = client;
    this.#to = to;
    this.#log = log;
    this.#deadlineMs = deadlineMs;
  }

  /** Records "<identity> <what>" on the Lease (of `uid`, when known). Never rejects. */
  async record(what: string, uid: string | undefined): Promise<void> {
    if (this.#off) return;
    const { namespace, lease, identity } = this.#to;
    // Legacy core/v1 Event fields, as client-go's recorder fills them: seconds, no eventTime.
    const now = `${new Date().toISOString().slice(0, 19)}Z`;
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${lease}.`, namespace },
      involvedObject: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace, name: lease, ...(uid && { uid }) },
      reason: 'LeaderElection',
      message: `${identity} ${what}`,
      type: 'Normal',
      source: { component: 'leader-run', host: hostname() },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      reportingComponent: 'leader-run',
      reportingInstance: identity.slice(0, 128),
    };
    try {
      await this.#client.request({
        method: 'POST',
        path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
        body,
        signal: AbortSignal.timeout(this.#deadlineMs),
        call: { verb: 'create', resource: 'events', object: `Event on Lease ${namespace}/${lease}` },
      });
    } catch (e) {
      if (e instanceof ApiError && (e.kind === 'forbidden' || e.kind === 'unauthorized')) {
        this.#off = true;
        this.#log.warn(`${e.message}; recording no Events on the Lease (grant create on events, or pass --no-events)`, { event: 'events-forbidden' });
      } else {
        this.#log.debug(`recording an Event failed: ${e instanceof Error ? e.message : String(e)}`, { event: 'event-failed' });
      }
    }
  }
}
