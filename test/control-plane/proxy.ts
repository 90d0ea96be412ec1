// A TCP proxy that injects network faults between a client and the API server.
// It works below TLS, so the apiserver's certificate (which covers 127.0.0.1)
// still verifies when a client talks to https://127.0.0.1:<proxy port>.

import type { AddressInfo } from 'node:net';
import net from 'node:net';

/** pass: forward both ways. blackhole: hold every byte (a partition). reset: reset every
 *  connection. lose-replies: every connection carries its next request to the server but
 *  none of the server's bytes back from then on (a write lands, its answer is lost), and
 *  keeps doing so after the mode changes; a new connection completes its TLS handshake
 *  first. A request already answered, or a watch already open, goes on as it was until the
 *  client sends another request on its connection (over HTTP/2 the watch and the writes
 *  share one). stall-handshake: every open connection is reset, and each new one is accepted
 *  but nothing it sends is ever forwarded — not even after the mode changes — so its TLS
 *  handshake never completes (a middlebox that lost its state; a server whose accept queue
 *  is stuck): only a connection dialled after the mode ends gets through. */
export type FaultMode = 'pass' | 'blackhole' | 'reset' | 'lose-replies' | 'stall-handshake';

interface Conn {
  client: net.Socket;
  upstream?: net.Socket;
  /** Requests the client has sent on this connection (see requestCounter). */
  requests: { count: number };
  /** Set under lose-replies: the server's bytes stop reaching the client once the client
   *  has sent more requests than this. */
  losesRepliesAfter?: number;
  /** Accepted under stall-handshake: held for good, never connected upstream. */
  stalled?: boolean;
}

export class FaultProxy {
  readonly port: number;
  readonly url: string;
  readonly #server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #conns = new Set<Conn>();
  #mode: FaultMode = 'pass';
  #accepted = 0;

  private constructor(server: net.Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
    this.port = (server.address() as AddressInfo).port;
    this.url = `https://127.0.0.1:${this.port}`;
  }

  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    // allowHalfOpen so a FIN from one side is forwarded, not answered by us.
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const proxy = new FaultProxy(server, target);
    server.on('connection', (socket) => proxy.#accept(socket));
    return proxy;
  }

  get mode(): FaultMode {
    return this.#mode;
  }

  /** Open client connections (each with its upstream, if connected). */
  /** Connections open now. */
  get connections(): number {
    return this.#conns.size;
  }

  /** Connections accepted since start: only grows, so a test can wait for the next one. */
  get accepted(): number {
    return this.#accepted;
  }

  setMode(mode: FaultMode): void {
    this.#mode = mode;
    for (const conn of [...this.#conns]) this.#apply(conn);
  }

  async close(): Promise<void> {
    for (const conn of this.#conns) {
      conn.client.destroy();
      conn.upstream?.destroy();
    }
    this.#conns.clear();
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    this.#accepted++;
    client.on('error', () => {});
    if (this.#mode === 'reset') {
      reset(client);
      return;
    }
    // Counted from the first byte, so the count stays on TLS record boundaries.
    const conn: Conn = { client, requests: requestCounter(client) };
    if (this.#mode === 'lose-replies') conn.losesRepliesAfter = 0;
    if (this.#mode === 'stall-handshake') conn.stalled = true;
    this.#conns.add(conn);
    client.on('close', (hadError) => {
      this.#conns.delete(conn);
      if (hadError) conn.upstream?.destroy();
      else conn.upstream?.end();
    });
    // In blackhole a new connection is accepted but not connected upstream:
    // nothing it sends goes anywhere until the mode returns to pass.
    this.#apply(conn);
  }

  #apply(conn: Conn): void {
    if (conn.stalled && this.#mode !== 'reset') {
      conn.client.pause();
      return;
    }
    switch (this.#mode) {
      case 'reset':
      case 'stall-handshake':
        this.#conns.delete(conn);
        reset(conn.client);
        if (conn.upstream) reset(conn.upstream);
        return;
      case 'blackhole':
        // Paused sockets are not read: bytes (and FINs) stay in kernel buffers,
        // as during a partition, and flow again if the mode returns to pass.
        conn.client.pause();
        conn.upstream?.pause();
        return;
      case 'pass':
      case 'lose-replies':
        // Under lose-replies the connection passes until its next request.
        if (this.#mode === 'lose-replies') conn.losesRepliesAfter ??= conn.requests.count;
        if (!conn.upstream) this.#connectUpstream(conn);
        else {
          conn.client.resume();
          conn.upstream.resume();
        }
    }
  }

  #connectUpstream(conn: Conn): void {
    const { client } = conn;
    const upstream = net.connect({ ...this.#target, allowHalfOpen: true, noDelay: true });
    conn.upstream = upstream;
    // An unreachable upstream looks like a reset to the client, as a refused
    // connection would without the proxy.
    upstream.on('error', () => reset(client));
    upstream.on('close', (hadError) => {
      if (hadError) reset(client);
      else client.end();
    });
    pipe(client, upstream, () => this.#mode);
    pipe(
      upstream,
      client,
      () => this.#mode,
      () => conn.losesRepliesAfter !== undefined && conn.requests.count > conn.losesRepliesAfter,
    );
    // A client held in blackhole was paused explicitly; listeners alone do not restart it.
    client.resume();
  }
}

// Forwards with backpressure; resumes only when the proxy passes traffic. Bytes are
// dropped instead once `drop()` says so.
function pipe(from: net.Socket, to: net.Socket, mode: () => FaultMode, drop: () => boolean = () => false): void {
  from.on('data', (chunk: Buffer) => {
    if (drop()) return;
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => {
    if (mode() !== 'blackhole') from.resume();
  });
  from.on('end', () => to.end());
}

/** Counts the HTTP requests in the TLS records a client sends: application-data records too
 *  large to be a handshake Finished (TLS 1.3 sends its Finished as a 53-byte application-data
 *  record), an HTTP/2 preface or control frame (SETTINGS, WINDOW_UPDATE, PING); a request's
 *  headers or body are far larger. */
function requestCounter(client: net.Socket): { count: number } {
  const state = { count: 0 };
  let header = Buffer.alloc(0);
  let skip = 0;
  client.on('data', (chunk: Buffer) => {
    let at = 0;
    while (at < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - at);
        skip -= n;
        at += n;
        continue;
      }
      const need = 5 - header.length;
      header = Buffer.concat([header, chunk.subarray(at, at + need)]);
      at += Math.min(need, chunk.length - at);
      if (header.length < 5) break;
      const type = header[0];
      const length = header.readUInt16BE(3);
      header = Buffer.alloc(0);
      if (type === 23 && length > 100) state.count++;
      skip = length;
    }
  });
  return state;
}

function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
