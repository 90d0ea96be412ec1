/**
 * A small REST client for the few calls leader-run makes.
 *
 * @kubernetes/client-node supplies what is hard to get right — kubeconfig
 * loading, credentials (tokens, client certificates, exec plugins, in-cluster
 * service accounts) and TLS settings. The requests themselves go through one
 * keep-alive agent of ours, because the election needs what the generated
 * client does not give: a deadline on every call (including a credential
 * plugin that hangs), one reused TLS connection, and the Lease as raw JSON
 * (its typed model truncates MicroTime to milliseconds, which the server
 * rejects).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiError, type Call, describeCall, kindOfStatus, transportError } from './errors.ts';

export interface RequestOptions {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  /** Every call has a deadline; the election derives it from the time its lease has left. */
  readonly signal: AbortSignal;
  /** What the call is (verb, resource, object), for errors and the failure policy. */
  readonly call: Call;
}

export class KubeClient {
  readonly server: URL;
  readonly #kc: KubeConfig;
  readonly #agent: http.Agent;
  readonly #userAgent: string;

  constructor(kc: KubeConfig, tls: https.AgentOptions, userAgent: string) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('KubeClient needs a kubeconfig with a current cluster');
    this.server = new URL(cluster.server);
    this.#kc = kc;
    this.#userAgent = userAgent;
    const keepAlive = { keepAlive: true, keepAliveMsecs: 30_000, maxSockets: 4 };
    this.#agent = this.server.protocol === 'http:' ? new http.Agent(keepAlive) : new https.Agent({ ...tls, ...keepAlive });
  }

  /** Reads TLS material once; credentials are refreshed per request (tokens rotate). */
  static async create(kc: KubeConfig, userAgent: string): Promise<KubeClient> {
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const tls: https.AgentOptions = {};
    for (const k of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'rejectUnauthorized'] as const) {
      if (opts[k] !== undefined) (tls as Record<string, unknown>)[k] = opts[k];
    }
    return new KubeClient(kc, tls, userAgent);
  }

  /** Sends one request; resolves with the parsed body of a 2xx answer, throws ApiError otherwise. */
  async request<T>(o: RequestOptions): Promise<T> {
    const res = await this.#send(o);
    if (res.status >= 200 && res.status < 300) return (res.body ? JSON.parse(res.body) : undefined) as T;
    throw statusError(res.status, res.body, o.call);
  }

  /** Opens a streaming GET (a watch) and hands each line to onLine until the stream ends or
   *  the signal aborts. Resolves when the stream ends. */
  async stream(o: Omit<RequestOptions, 'method' | 'body'>, onLine: (line: string) => void): Promise<void> {
    const req = await this.#open({ ...o, method: 'GET' });
    const res = await responseOf(req, o.call);
    if (res.statusCode !== 200) {
      const body = await readAll(res);
      throw statusError(res.statusCode ?? 0, body, o.call);
    }
    res.setEncoding('utf8');
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim()) onLine(line);
        }
      });
      res.on('end', resolve);
      res.on('error', (e) => reject(transportError(e, o.call)));
      res.on('aborted', () => reject(transportError(Object.assign(new Error('aborted'), { name: 'AbortError' }), o.call)));
    });
  }

  /** Whether the server is still starting, by GET /readyz with our credentials (every
   *  cluster lets any authenticated user read it): a 5xx, or a 403 — while its authorizer is
   *  not ready, a restarting apiserver denies even that. 200 (ready), 401 or no answer is
   *  false. This tells a restarting server's denial from a real one. */
  async starting(signal: AbortSignal): Promise<boolean> {
    try {
      const res = await this.#send({ method: 'GET', path: '/readyz', signal, call: { verb: 'get', resource: '/readyz', object: '/readyz' } });
      return res.status >= 500 || res.status === 403;
    } catch {
      return false;
    }
  }

  /** Closes idle connections so the process can exit promptly. */
  close(): void {
    this.#agent.destroy();
  }

  async #send(o: RequestOptions): Promise<{ status: number; body: string }> {
    const req = await this.#open(o);
    const res = await responseOf(req, o.call, o.body === undefined ? undefined : JSON.stringify(o.body));
    return { status: res.statusCode ?? 0, body: await readAll(res).catch((e) => Promise.reject(transportError(e, o.call))) };
  }

  async #open(o: RequestOptions): Promise<http.ClientRequest> {
    const headers = await withDeadline(this.#credentials(), o.signal, o.call);
    headers['accept'] = 'application/json';
    headers['user-agent'] = this.#userAgent;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    const url = new URL(o.path, this.server);
    const mod = url.protocol === 'http:' ? http : https;
    return mod.request(url, { method: o.method, headers, agent: this.#agent, signal: o.signal });
  }

  async #credentials(): Promise<Record<string, string>> {
    const opts: https.RequestOptions & { headers: Record<string, string> } = { headers: {} };
    await this.#kc.applyToHTTPSOptions(opts);
    if (opts.auth) opts.headers['authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    return opts.headers;
  }
}

function responseOf(req: http.ClientRequest, call: Call, body?: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', (e) => reject(transportError(e, call)));
    req.end(body);
  });
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
  });
}

/** A credential plugin that hangs must not hold up the election: race it against the deadline. */
function withDeadline<T>(p: Promise<T>, signal: AbortSignal, call: Call): Promise<T> {
  if (signal.aborted) return Promise.reject(transportError(signal.reason, call));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(transportError(signal.reason, call, ' (waiting for credentials)'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(new ApiError('unauthorized', `${describeCall(call)}: getting credentials failed: ${messageOf(e)}`, undefined, { call }));
      },
    );
  });
}

function statusError(status: number, body: string, call: Call): ApiError {
  let message = '';
  try {
    message = (JSON.parse(body) as { message?: string }).message ?? '';
  } catch {
    message = body.slice(0, 200);
  }
  return new ApiError(kindOfStatus(status), `${describeCall(call)}: HTTP ${status}${message ? `: ${message}` : ''}`, status, { call });
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
