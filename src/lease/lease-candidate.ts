/**
 * `--coordinated`: this candidate's LeaseCandidate (coordination.k8s.io/v1beta1, KEP-4355),
 * beside the Lease. The API server's coordinated-election controller reads the candidates of
 * a Lease, pings them (spec.pingTime) and names the best as the Lease's holder; a candidate
 * answers a ping by renewing (renewTime ≥ pingTime) within 5 s, or is passed over.
 *
 * Named by the holder identity: the controller writes the candidate's name as holderIdentity.
 */
import { ExitStatus } from '../core/exit-status.ts';
import type { LogEvent } from '../core/log.ts';
import type { KubeClient } from '../kube/client.ts';
import { ApiError, type Call, type Verb } from '../kube/errors.ts';
import { microTime } from './record.ts';

/** The only strategy the controller knows (client-go's default). */
export const STRATEGY = 'OldestEmulationVersion';
/** The controller's ping window; we answer well inside it. */
export const PING_WINDOW_MS = 5000;
/** client-go renews a candidate every 5 minutes; the controller forgets one after 30. */
const RENEW_EVERY_MS = 5 * 60_000;

/** A candidate name, as the API validates it (a ConfigMap key). */
export const CANDIDATE_NAME = /^[-._a-zA-Z0-9]{1,253}$/;
/** A strict semantic version, X.Y.Z. */
export const VERSION = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

/** <0, 0, >0 as version a is older, the same, newer than b (both X.Y.Z). */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** X.Y.Z of a gitVersion such as v1.36.3 or v1.36.3+k3s1; undefined if it has none. */
export function versionOf(gitVersion: string): string | undefined {
  return /^v?(\d+\.\d+\.\d+)/.exec(gitVersion)?.[1];
}

interface CandidateObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  spec?: { leaseName?: string; binaryVersion?: string; emulationVersion?: string; strategy?: string; renewTime?: string | null; pingTime?: string | null };
  [k: string]: unknown;
}

export interface CandidateSpec {
  readonly leaseName: string;
  readonly binaryVersion: string;
  readonly emulationVersion: string;
}

export class LeaseCandidate {
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #name: string;
  readonly #spec: CandidateSpec;
  #renewedAt = Number.NEGATIVE_INFINITY;

  constructor(client: KubeClient, namespace: string, name: string, spec: CandidateSpec) {
    this.#client = client;
    this.#namespace = namespace;
    this.#name = name;
    this.#spec = spec;
  }

  get description(): string {
    return `${this.#namespace}/${this.#name}`;
  }

  #path(name = ''): string {
    return `/apis/coordination.k8s.io/v1beta1/namespaces/${encodeURIComponent(this.#namespace)}/leasecandidates${name ? `/${encodeURIComponent(name)}` : ''}`;
  }

  #call(verb: Verb): Call {
    return { verb, resource: 'leasecandidates.coordination.k8s.io', object: `LeaseCandidate ${this.description}` };
  }

  /** Registers (or re-registers) the candidate with a fresh renewTime. */
  async register(signal: AbortSignal, wallMs: number): Promise<void> {
    const spec = { ...this.#spec, strategy: STRATEGY, renewTime: microTime(wallMs) };
    try {
      await this.#client.request<CandidateObject>({
        method: 'POST',
        path: this.#path(),
        body: { apiVersion: 'coordination.k8s.io/v1beta1', kind: 'LeaseCandidate', metadata: { name: this.#name, namespace: this.#namespace }, spec },
        signal,
        call: this.#call('create'),
      });
    } catch (e) {
      if (!(e instanceof ApiError && e.kind === 'conflict')) throw e;
      // One left by an earlier run of this identity: take it over with our versions.
      const old = await this.#client.request<CandidateObject>({ method: 'GET', path: this.#path(this.#name), signal, call: this.#call('get') });
      await this.#put({ ...old, spec: { ...old.spec, ...spec } }, signal);
    }
    this.#renewedAt = wallMs;
  }

  /** One look: renews if the controller pinged since the last renewal, or every 5 minutes.
   *  Resolves true if it renewed. */
  async tend(signal: AbortSignal, wallMs: number): Promise<boolean> {
    const now = await this.#client.request<CandidateObject>({ method: 'GET', path: this.#path(this.#name), signal, call: this.#call('get') });
    const ping = Date.parse(now.spec?.pingTime ?? '');
    const renew = Date.parse(now.spec?.renewTime ?? '');
    const pinged = Number.isFinite(ping) && (!Number.isFinite(renew) || ping > renew);
    if (!pinged && wallMs - this.#renewedAt < RENEW_EVERY_MS) return false;
    await this.#put({ ...now, spec: { ...now.spec, renewTime: microTime(wallMs) } }, signal);
    this.#renewedAt = wallMs;
    return true;
  }

  /** Withdraws the candidate (client-go leaves its own to the 30-minute GC). */
  async withdraw(signal: AbortSignal): Promise<void> {
    try {
      await this.#client.request({ method: 'DELETE', path: this.#path(this.#name), signal, call: this.#call('delete') });
    } catch (e) {
      if (!(e instanceof ApiError && e.kind === 'not-found')) throw e;
    }
  }

  #put(o: CandidateObject, signal: AbortSignal): Promise<CandidateObject> {
    return this.#client.request<CandidateObject>({ method: 'PUT', path: this.#path(this.#name), body: o, signal, call: this.#call('update') });
  }
}

export interface Candidacy {
  /** Stops tending and withdraws the candidate (errors ignored: the GC removes it in 30 min). */
  stop(): Promise<void>;
}

/** What a failure means, from the failure policy above this layer. */
export type CandidateVerdict =
  | { readonly retry: true }
  | { readonly retry: false; readonly status: number; readonly event: LogEvent; readonly message: string };

/**
 * Registers the candidate — with the API server's own version where none was given — retrying
 * what `verdict` says to retry for up to `deadlineMs`, then answers pings every `everyMs`.
 */
export async function startCandidacy(
  client: KubeClient,
  where: { namespace: string; name: string; leaseName: string; binaryVersion: string | undefined; emulationVersion: string | undefined },
  o: { everyMs: number; deadlineMs: number; retryMs: number; verdict: (e: ApiError) => CandidateVerdict; onTendError: (e: ApiError) => void },
): Promise<{ ok: true; candidacy: Candidacy; spec: CandidateSpec } | { ok: false; status: number; event: LogEvent; message: string }> {
  const until = Date.now() + o.deadlineMs;
  for (;;) {
    try {
      const binaryVersion = where.binaryVersion ?? (await serverVersion(client));
      const spec = { leaseName: where.leaseName, binaryVersion, emulationVersion: where.emulationVersion ?? binaryVersion };
      const c = new LeaseCandidate(client, where.namespace, where.name, spec);
      await c.register(AbortSignal.timeout(o.retryMs * 2), Date.now());
      let stopped = false;
      let tending: Promise<unknown> = Promise.resolve();
      const timer = setInterval(() => {
        tending = c.tend(AbortSignal.timeout(PING_WINDOW_MS / 2), Date.now()).catch((e: unknown) => {
          if (!stopped && e instanceof ApiError) o.onTendError(e);
        });
      }, o.everyMs);
      let stopping: Promise<void> | undefined;
      const candidacy: Candidacy = {
        stop() {
          stopping ??= (async () => {
            stopped = true;
            clearInterval(timer);
            await tending;
            await c.withdraw(AbortSignal.timeout(2000)).catch(() => {});
          })();
          return stopping;
        },
      };
      return { ok: true, candidacy, spec };
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      const v = o.verdict(e);
      if (!v.retry) return { ok: false, status: v.status, event: v.event, message: v.message };
      if (Date.now() >= until)
        return {
          ok: false,
          status: ExitStatus.unavailable,
          event: 'unreachable',
          message: `could not register the LeaseCandidate within --startup-timeout: ${e.message}`,
        };
      await new Promise((r) => setTimeout(r, o.retryMs));
    }
  }
}

/** The API server's version, X.Y.Z: the default a candidate runs as. */
async function serverVersion(client: KubeClient): Promise<string> {
  const v = await client.request<{ gitVersion?: string; major?: string; minor?: string }>({
    method: 'GET',
    path: '/version',
    signal: AbortSignal.timeout(10_000),
    call: { verb: 'get', resource: '/version', object: 'the API server version' },
  });
  // A server built from source without version stamps says v0.0.0-master; major and minor
  // are still right.
  const stamped = versionOf(v.gitVersion ?? '');
  const x = stamped && stamped !== '0.0.0' ? stamped : versionOf(`${v.major}.${String(v.minor).replace(/\D+$/, '')}.0`);
  if (!x) throw new ApiError('invalid', `the API server's version ${JSON.stringify(v.gitVersion)} has no X.Y.Z: give --binary-version`);
  return x;
}
