/**
 * One HTTP/2 connection to the API server, shared by the watch and every write.
 *
 * A follower's watch holds an HTTP/1.1 connection for as long as it is open, so the write
 * that takes over needed a second TLS handshake, at the moment the takeover is timed. Over
 * HTTP/2 the watch and the writes are streams of one connection: one handshake per process.
 *
 * What this guarantees: at most one session is in use at a time; a session that failed
 * (error, close, GOAWAY) or was given up (`discard`) is never used again; a dial nobody waits
 * for any more, or one a redialling caller's deadline outlived, is destroyed, so a partition
 * leaves no half-open handshake behind. The session
 * keeps the event loop alive only while a stream is open. When the server does not choose h2
 * in ALPN, `session()` answers null once and for good, and the caller goes on over HTTP/1.1.
 */
import * as http2 from 'node:http2';
import { isIP } from 'node:net';
import * as tls from 'node:tls';

export class Http2Connection {
  readonly #origin: URL;
  readonly #tls: tls.ConnectionOptions;
  #session: http2.ClientHttp2Session | undefined;
  #dial: Dial | undefined;
  /** The server answered ALPN with something other than h2: HTTP/1.1 from now on. */
  #refused = false;
  /** Streams open on the current session: it is ref'd while there are any. */
  #open = 0;

  constructor(origin: URL, options: tls.ConnectionOptions) {
    this.#origin = origin;
    this.#tls = options;
  }

  /** The session to send on, dialling one if there is none; null when the server does not
   *  speak HTTP/2. Rejects with the dial's error, or an AbortError once `signal` aborts.
   *  `redial`: a dial this caller's deadline outlived is stuck; it is given up for every
   *  waiter (a watch, which has no deadline, would otherwise keep it for minutes). */
  async session(signal: AbortSignal, redial = false): Promise<http2.ClientHttp2Session | null> {
    if (this.#refused) return null;
    if (this.#session && usable(this.#session)) return this.#session;
    this.#dial ??= this.#startDial();
    return this.#wait(this.#dial, signal, redial);
  }

  /** Keeps the session (and so the process) up while a stream on it is open. */
  track(session: http2.ClientHttp2Session, stream: http2.ClientHttp2Stream): void {
    if (session !== this.#session) return;
    if (this.#open++ === 0) session.ref();
    stream.once('close', () => {
      if (session === this.#session && --this.#open === 0) session.unref();
    });
  }

  /** Gives a session up: a request on it went unanswered, so it may be stuck (a partition);
   *  the next request dials afresh, as HTTP/1.1 would on a new socket. */
  discard(session: http2.ClientHttp2Session): void {
    this.#forget(session);
    session.destroy();
  }

  close(): void {
    this.#dial?.socket.destroy();
    this.#dial = undefined;
    if (this.#session) this.discard(this.#session);
  }

  #forget(session: http2.ClientHttp2Session): void {
    if (session !== this.#session) return;
    this.#session = undefined;
    this.#open = 0;
  }

  #startDial(): Dial {
    const host = this.#origin.hostname.replace(/^\[|\]$/g, '');
    const socket = tls.connect({
      ...this.#tls,
      host,
      port: Number(this.#origin.port || 443),
      ALPNProtocols: ['h2', 'http/1.1'],
      // SNI carries names only; an address as server name is not allowed.
      servername: this.#tls.servername ?? (isIP(host) ? '' : host),
    });
    const dial: Dial = {
      socket,
      waiters: 0,
      done: new Promise((resolve, reject) => {
        const fail = (e: Error) => {
          if (this.#dial === dial) this.#dial = undefined;
          socket.destroy();
          reject(e);
        };
        const closed = () => fail(Object.assign(new Error('connection closed during the TLS handshake'), { code: 'ECONNRESET' }));
        socket.once('error', fail);
        socket.once('close', closed);
        socket.once('secureConnect', () => {
          // Ours only: Node's own 'close' listener frees the TLS state.
          socket.removeListener('error', fail).removeListener('close', closed);
          if (this.#dial === dial) this.#dial = undefined;
          if (socket.alpnProtocol !== 'h2') {
            this.#refused = true;
            socket.destroy();
            resolve(null);
            return;
          }
          resolve(this.#adopt(socket));
        });
      }),
    };
    dial.done.catch(() => {});
    return dial;
  }

  #adopt(socket: tls.TLSSocket): http2.ClientHttp2Session {
    const session = http2.connect(this.#origin, { createConnection: () => socket });
    this.#session = session;
    this.#open = 0;
    session.unref();
    session.on('error', () => this.#forget(session));
    session.on('goaway', () => this.#forget(session));
    session.on('close', () => this.#forget(session));
    return session;
  }

  /** Waits for a dial on behalf of one caller; the dial is destroyed when its last waiter,
   *  or a waiter that redials, stops waiting before it finished. */
  #wait(dial: Dial, signal: AbortSignal, redial: boolean): Promise<http2.ClientHttp2Session | null> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    dial.waiters++;
    return new Promise((resolve, reject) => {
      let settled = false;
      const leave = () => {
        settled = true;
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        if (settled) return;
        leave();
        if ((--dial.waiters === 0 || redial) && this.#dial === dial) {
          this.#dial = undefined;
          dial.socket.destroy();
        }
        reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      dial.done.then(
        (s) => {
          if (settled) return;
          leave();
          dial.waiters--;
          resolve(s);
        },
        (e: unknown) => {
          if (settled) return;
          leave();
          dial.waiters--;
          reject(e);
        },
      );
    });
  }
}

interface Dial {
  readonly socket: tls.TLSSocket;
  readonly done: Promise<http2.ClientHttp2Session | null>;
  waiters: number;
}

/** The signal's reason when it says why (a deadline, a stop); an AbortError otherwise. */
function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error && (r.name === 'AbortError' || r.name === 'TimeoutError') ? r : new DOMException('aborted', 'AbortError');
}

function usable(s: http2.ClientHttp2Session): boolean {
  return !s.closed && !s.destroyed;
}
