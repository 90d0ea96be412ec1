/**
 * A small REST client for the few calls leader-run makes.
 *
 * @kubernetes/client-node supplies what is hard to get right — kubeconfig
 * loading, credentials (tokens, client certificates, exec plugins, in-cluster
 * service accounts) and TLS settings. The requests themselves go over one
 * HTTP/2 connection of ours (h2.ts; a keep-alive HTTP/1.1 agent for servers
 * that do not speak it), because the election needs what the generated client
 * does not give: a deadline on every call (including a credential plugin that
 * hangs), the watch and the writes on one TLS connection, and the Lease as raw
 * JSON (its typed model truncates MicroTime to milliseconds, which the server
 * rejects).
 */
import * as http from 'node:http';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiError, type Call, describeCall, kindOfStatus, transportError } from './errors.ts';
import { Http2Connection } from './h2.ts';

export interface RequestOptions {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  /** Every call has a deadline; the election derives it from the time its lease has left. */
  readonly signal: AbortSignal;
  /** What the call is (verb, resource, object), for errors and the failure policy. */
  readonly call: Call;
  /** This call giving up before its whole answer came means the connection may be stuck
   *  (a partition): give the connection up with it, so the next call dials afresh, as
   *  HTTP/1.1 destroys that call's socket. For the Lease's own calls, whose retries must
   *  reach the server within the renew deadline. Other calls (events, routing) may time out
   *  because the server is slow for their resource; they leave the shared connection alone. */
  readonly redialOnTimeout?: boolean;
}

export class KubeClient {
  readonly server: URL;
  readonly #kc: KubeConfig;
  /** HTTP/1.1, for http:// servers and servers that do not choose h2. */
  readonly #agent: http.Agent;
  readonly #h2: Http2Connection | undefined;
  readonly #userAgent: string;

  constructor(kc: KubeConfig, tls: https.AgentOptions, userAgent: string) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('KubeClient needs a kubeconfig with a current cluster');
    this.server = new URL(cluster.server);
    this.#kc = kc;
    this.#userAgent = userAgent;
    const keepAlive = { keepAlive: true, keepAliveMsecs: 30_000, maxSockets: 4 };
    const plain = this.server.protocol === 'http:';
    this.#agent = plain ? new http.Agent(keepAlive) : new https.Agent({ ...tls, ...keepAlive });
    this.#h2 = plain ? undefined : new Http2Connection(this.server, tls);
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
    const res = await this.#exchange({ ...o, method: 'GET' }, true);
    if (res.status !== 200) {
      const body = await readAll(res.body).catch((e) => Promise.reject(transportError(e, o.call)));
      throw statusError(res.status, body, o.call);
    }
    res.body.setEncoding('utf8');
    let buf = '';
    res.body.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) onLine(line);
      }
    });
    await whenRead(res.body).catch((e) => Promise.reject(transportError(e, o.call)));
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

  /** Closes the connections so the process can exit promptly. */
  close(): void {
    this.#h2?.close();
    this.#agent.destroy();
  }

  async #send(o: RequestOptions): Promise<{ status: number; body: string }> {
    const res = await this.#exchange(o, false);
    return { status: res.status, body: await readAll(res.body).catch((e) => Promise.reject(transportError(e, o.call))) };
  }

  /** Sends a request and waits for the head of its answer, over HTTP/2 when the server
   *  speaks it. The body is left to the caller to read. */
  async #exchange(o: RequestOptions, watch: boolean): Promise<{ status: number; body: Readable }> {
    const headers = await withDeadline(this.#credentials(), o.signal, o.call);
    headers['accept'] = 'application/json';
    headers['user-agent'] = this.#userAgent;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    const redial = !watch && o.redialOnTimeout === true;
    const session = this.#h2 ? await this.#h2.session(o.signal, redial).catch((e) => Promise.reject(transportError(e, o.call))) : null;
    if (session) return this.#exchangeH2(session, o, headers, body, redial);
    const url = new URL(o.path, this.server);
    const mod = url.protocol === 'http:' ? http : https;
    const req = mod.request(url, { method: o.method, headers, agent: this.#agent, signal: o.signal });
    const res = await responseOf(req, o.call, body);
    return { status: res.statusCode ?? 0, body: res };
  }

  #exchangeH2(
    session: ClientHttp2Session,
    o: RequestOptions,
    headers: Record<string, string>,
    body: string | undefined,
    redial: boolean,
  ): Promise<{ status: number; body: Readable }> {
    const h2 = this.#h2!;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request({ ...headers, ':method': o.method, ':path': o.path }, { endStream: body === undefined, signal: o.signal });
    } catch (e) {
      // The session began to close (GOAWAY) since it was handed out.
      h2.discard(session);
      return Promise.reject(transportError(e, o.call));
    }
    h2.track(session, stream);
    // An error may come in the same read as the answer's head, before the caller reads the
    // body: this listener keeps it from being thrown, and whenRead finds it in stream.errored.
    stream.on('error', () => {});
    if (redial) {
      let answered = false;
      stream.once('end', () => (answered = true));
      const onAbort = () => {
        if (!answered) h2.discard(session);
      };
      o.signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => o.signal.removeEventListener('abort', onAbort));
    }
    return new Promise((resolve, reject) => {
      let responded = false;
      stream.once('response', (h) => {
        responded = true;
        resolve({ status: Number(h[':status'] ?? 0), body: stream });
      });
      const fail = (e: Error) => {
        if (!responded) reject(transportError(e, o.call));
      };
      stream.once('error', fail);
      // Reset by the server without an error of ours (RST_STREAM): no answer either.
      stream.once('close', () => {
        if (!responded) fail(Object.assign(new Error('the server reset the request'), { code: 'ECONNRESET' }));
      });
      if (body !== undefined) stream.end(body);
    });
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

/** Resolves when a body has been read to its end; rejects if it breaks off first, also when
 *  that happened before this was called. */
function whenRead(body: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (body.errored) return reject(body.errored);
    if (body.readableEnded) return resolve();
    if (body.destroyed) return reject(Object.assign(new Error('the answer broke off'), { code: 'ECONNRESET' }));
    body.once('end', resolve);
    body.once('error', reject);
    body.once('aborted', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
    // An HTTP/2 stream that closes without an end (RST_STREAM) broke off too.
    body.once('close', () => {
      if (!body.readableEnded) reject(Object.assign(new Error('the answer broke off'), { code: 'ECONNRESET' }));
    });
  });
}

async function readAll(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  body.on('data', (c: Buffer) => chunks.push(c));
  await whenRead(body);
  return Buffer.concat(chunks).toString('utf8');
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
