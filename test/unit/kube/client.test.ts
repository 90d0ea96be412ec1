// KubeClient's HTTP/2 edges, against servers on loopback that misbehave in ways the real
// apiserver rarely does on cue: a reset right after the answer's head, a request that is
// never answered, a TLS handshake that never completes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, type RequestOptions } from '../../../src/kube/client.ts';
import { ApiError } from '../../../src/kube/errors.ts';
import { selfSigned } from '../../support/certs.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leader-run-h2-'));
const certFile = path.join(dir, 'server.crt');
const keyFile = path.join(dir, 'server.key');

function clientFor(port: number): Promise<KubeClient> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, caFile: certFile, skipTLSVerify: false }],
    users: [{ name: 'u', token: 'token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return KubeClient.create(kc, 'leader-run/test');
}

const call = { verb: 'get', resource: 'leases', object: 'Lease default/x' } as const;
const get = (p: string, signal: AbortSignal, more: Partial<RequestOptions> = {}): RequestOptions => ({ method: 'GET', path: p, signal, call, ...more });

async function listening(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('KubeClient over HTTP/2', () => {
  let server: http2.Http2SecureServer;
  let port: number;
  let sessions = 0;

  before(async () => {
    const failed = selfSigned(keyFile, certFile, '/CN=127.0.0.1', 'IP:127.0.0.1');
    assert.equal(failed, undefined, `openssl failed: ${failed}`);
    server = http2.createSecureServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) });
    server.on('session', () => sessions++);
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const p = headers[':path'];
      if (p === '/ok') {
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end('{}');
      } else if (p === '/reset-after-head') {
        stream.respond({ ':status': 200 });
        stream.write('{"par');
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      } else if (p === '/watch') {
        stream.respond({ ':status': 200 });
        stream.write('{"n":1}\n');
        setTimeout(() => stream.end('{"n":2}\n'), 300);
      }
      // '/never': no answer at all.
    });
    port = await listening(server);
  });

  after(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an error in the same read as the answer’s head is an ApiError, not a crash', async () => {
    const client = await clientFor(port);
    await assert.rejects(client.request(get('/reset-after-head', AbortSignal.timeout(5000))), (e) => e instanceof ApiError && e.kind === 'unavailable');
    assert.deepEqual(await client.request(get('/ok', AbortSignal.timeout(5000))), {}, 'the connection still serves');
    client.close();
  });

  it('a side call that times out leaves the shared connection and its watch alone', async () => {
    const client = await clientFor(port);
    await client.request(get('/ok', AbortSignal.timeout(5000)));
    const before = sessions;
    const lines: string[] = [];
    const watch = client.stream({ path: '/watch', signal: new AbortController().signal, call }, (l) => lines.push(l));
    await assert.rejects(client.request(get('/never', AbortSignal.timeout(100))), (e) => e instanceof ApiError && /deadline/.test(e.message));
    await watch;
    assert.deepEqual(lines, ['{"n":1}', '{"n":2}'], 'the watch read to its end');
    await client.request(get('/ok', AbortSignal.timeout(5000)));
    assert.equal(sessions, before, 'no new connection');
    client.close();
  });

  it('a Lease call that times out gives the connection up: the next call dials afresh', async () => {
    const client = await clientFor(port);
    await client.request(get('/ok', AbortSignal.timeout(5000)));
    const before = sessions;
    await assert.rejects(client.request(get('/never', AbortSignal.timeout(100), { redialOnTimeout: true })), ApiError);
    await client.request(get('/ok', AbortSignal.timeout(5000)));
    assert.equal(sessions, before + 1);
    client.close();
  });

  it('a dial a Lease call’s deadline outlived is given up, for the watch waiting on it too', async () => {
    // Accepts connections and never answers the TLS handshake.
    const held: net.Socket[] = [];
    const closed: Promise<void>[] = [];
    const silent = net.createServer((s) => {
      held.push(s);
      s.resume(); // read (and drop) the ClientHello, so the client's close is seen
      closed.push(new Promise((resolve) => s.on('close', () => resolve())));
    });
    const silentPort = await listening(silent);
    const client = await clientFor(silentPort);
    const watch = client.stream({ path: '/watch', signal: new AbortController().signal, call }, () => {});
    watch.catch(() => {});
    await assert.rejects(client.request(get('/ok', AbortSignal.timeout(150), { redialOnTimeout: true })), ApiError);
    await assert.rejects(watch, ApiError);
    assert.equal(held.length, 1, 'one dial, shared');
    await closed[0];
    client.close();
    silent.close();
  });
});
