// A plain TCP relay in front of the apiserver that counts the connections a client opens.
// TLS is end to end (the apiserver's certificate covers 127.0.0.1), so this is the one
// place where "how many TLS handshakes did this process make" is visible without a
// packet capture; each accepted connection that starts with a TLS record is one handshake.

import type { AddressInfo } from 'node:net';
import net from 'node:net';

export interface ConnRecord {
  /** Wall-clock ms when the connection was accepted. */
  at: number;
  /** The first byte was a TLS handshake record (0x16). */
  tls: boolean;
}

export class ConnCounter {
  readonly url: string;
  readonly conns: ConnRecord[] = [];
  readonly #server: net.Server;
  readonly #open = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.#server = server;
    this.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(upstreamPort: number): Promise<ConnCounter> {
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const counter = new ConnCounter(server);
    server.on('connection', (client) => counter.#relay(client, upstreamPort));
    return counter;
  }

  /** Connections accepted in [from, to) (wall ms). */
  opened(from = 0, to = Infinity): number {
    return this.conns.filter((c) => c.at >= from && c.at < to).length;
  }

  get openNow(): number {
    return this.#open.size / 2;
  }

  async close(): Promise<void> {
    for (const s of this.#open) s.destroy();
    this.#open.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: net.Socket, port: number): void {
    const rec: ConnRecord = { at: Date.now(), tls: false };
    this.conns.push(rec);
    const upstream = net.connect({ host: '127.0.0.1', port, noDelay: true });
    for (const s of [client, upstream]) {
      this.#open.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        this.#open.delete(s);
        // Either side gone: the other goes too, as a direct connection would.
        client.destroy();
        upstream.destroy();
      });
    }
    client.once('data', (b: Buffer) => (rec.tls = b[0] === 0x16));
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
