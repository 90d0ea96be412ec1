/**
 * The operator's endpoints (--http-addr): liveness, readiness, Prometheus metrics and "which
 * pod leads", and — only with --http-step-down — POST /step-down. Plain node:http: five
 * routes do not need a framework.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpAddr } from '../config.ts';
import type { Logger } from '../core/log.ts';
import { StallDetector } from './stall.ts';
import type { StatusBoard } from './status-board.ts';

/** The address cannot be listened on: `message` says why and what to do (exit 78); the
 *  caller names the option it came from. */
export class HttpBindError extends Error {
  override name = 'HttpBindError';
}

export interface HttpServer {
  /** host:port actually bound (the port is chosen by the system when 0 was asked). */
  readonly address: string;
  close(): void;
}

/** `stall`: an event-loop stall of at least `thresholdMs` puts renewals at risk; /healthz
 *  reports it for `rememberMs`, so a liveness probe (every few seconds) gets to see it. */
export async function startHttp(
  addr: HttpAddr,
  state: StatusBoard,
  lockName: string,
  log: Logger,
  stallAt: { thresholdMs: number; rememberMs: number },
  /** --http-step-down: asks this leader to hand over (to `to`); false when it is not leading. */
  stepDown?: (to: string | undefined) => boolean,
): Promise<HttpServer> {
  // prom-client is loaded only when the endpoints are asked for.
  const metrics = (await import('./metrics.ts')).metricsFor(state, lockName);
  const stall = new StallDetector(stallAt.thresholdMs, stallAt.rememberMs);
  state.addLivenessCheck(() => stall.problem());
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://leader-run');
    const path = url.pathname;
    const text = (code: number, body: string) => res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' }).end(`${body}\n`);
    if (stepDown && path === '/step-down') {
      if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain; charset=utf-8' }).end('use POST\n');
      const to = url.searchParams.get('to') ?? undefined;
      if (to === '') return void text(400, 'to= is empty: give the identity (--id) of the candidate to hand over to, or leave it out');
      if (to === state.opts.identity) return void text(400, `to=${to} is this leader: name another candidate`);
      // 202: accepted; the hand-over happens once the child is gone (GET /leader shows it).
      return void (stepDown(to) ? text(202, `stepping down${to ? ` to ${to}` : ''}`) : text(409, 'not leading: nothing to step down from'));
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    switch (path) {
      case '/healthz': {
        const h = state.health();
        return void text(h.ok ? 200 : 503, h.reason);
      }
      case '/readyz': {
        const r = state.ready();
        return void text(r.ok ? 200 : 503, r.reason);
      }
      case '/leader':
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(state.leader())}\n`);
      case '/metrics':
        metrics.text().then(
          (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body),
          (e: unknown) => text(500, `metrics failed: ${e instanceof Error ? e.message : String(e)}`),
        );
        return;
      default:
        return void text(404, 'not found; try /healthz, /readyz, /metrics or /leader');
    }
  });
  // A probe that never finishes its request must not hold a connection for minutes.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const host = addr.host?.includes(':') ? `[${addr.host}]` : (addr.host ?? '');
      const where = `${host}:${addr.port}`;
      const why =
        e.code === 'EADDRINUSE'
          ? 'the address is already in use; pick a free port (or 0 for any)'
          : e.code === 'EACCES'
            ? 'permission denied; use a port above 1023'
            : e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND'
              ? 'no such local address; use an address of this host, or leave the host out for all'
              : (e.code ?? e.message);
      reject(new HttpBindError(`${where}: cannot listen: ${why}`));
    });
    server.listen(addr.port, addr.host, () => resolve());
  });
  stall.start();
  server.on('error', (e) => log.warn(`HTTP server: ${e.message}`, { event: 'http-error' }));
  const a = server.address() as AddressInfo;
  const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  log.info(`serving /healthz, /readyz, /metrics, /leader${stepDown ? ' and POST /step-down' : ''} on http://${address}`, { event: 'http-listening', address });
  return {
    address,
    close() {
      stall.stop();
      server.close();
      server.closeAllConnections();
    },
  };
}
