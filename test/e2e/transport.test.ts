/**
 * The connection to the API server (src/kube): one HTTP/2 connection carries a follower's
 * watch and the writes of its takeover; a server that does not speak HTTP/2 is served over
 * HTTP/1.1 all the same.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import * as tls from 'node:tls';
import { type ClusterInfo, FaultProxy, holder, sharedCluster, writeKubeconfig } from '../support/cluster.ts';
import { candidates, FAST, started, tempDir, uniqueName, workerCmd } from '../support/leader-run.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A TLS server on loopback that offers only http/1.1 in ALPN, with the apiserver's own
 *  certificate, and relays what it decrypts to the apiserver over TLS. */
async function http1Only(t: TestContext, info: ClusterInfo): Promise<{ url: string; offers: string[][] }> {
  const certDir = path.dirname(info.caFile);
  const offers: string[][] = [];
  const server = tls.createServer(
    {
      cert: readFileSync(path.join(certDir, 'apiserver.crt')),
      key: readFileSync(path.join(certDir, 'apiserver.key')),
      ALPNCallback: ({ protocols }) => {
        offers.push(protocols);
        return protocols.includes('http/1.1') ? 'http/1.1' : undefined;
      },
    },
    (client) => {
      const upstream = tls.connect({ host: '127.0.0.1', port: info.apiserverPort, ca: readFileSync(info.caFile), ALPNProtocols: ['http/1.1'] });
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, offers };
}

describe('the connection to the API server', () => {
  it("carries a follower's watch and its takeover's writes on one TLS connection", async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('one-conn');
    const ledger = path.join(tempDir(), 'ledger');
    const b = lr.start(['--kubeconfig', info.kubeconfigs.candidate, '--lock-name', name, '--id', 'b', ...FAST, ...workerCmd(ledger)]);
    await started(ledger, 1);
    // A relay below TLS that counts the connections a opens.
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: info.apiserverPort });
    t.after(() => proxy.close());
    const kubeconfig = writeKubeconfig(info, uniqueName('counted'), { user: 'candidate', server: proxy.url });
    const a = lr.start(['-v', '--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger)]);
    await a.waitFor('new-leader');
    await sleep(500); // the watch is up
    b.signal('SIGTERM');
    assert.equal(await b.exitCode(), 143);
    await started(ledger, 2);
    await a.waitFor('renewed');
    assert.equal(proxy.accepted, 1, 'the read, the watch, the acquire and the renewals: one connection');
    a.signal('SIGTERM');
    assert.equal(await a.exitCode(), 143);
    assert.equal(await holder(info, name), '', 'released');
    assert.equal(proxy.accepted, 1, 'the release too');
  });

  it('leads, runs the child and releases over HTTP/1.1 when the server does not offer h2', async (t) => {
    const info = await sharedCluster();
    const lr = candidates(t);
    const name = uniqueName('http1');
    const ledger = path.join(tempDir(), 'ledger');
    const relay = await http1Only(t, info);
    const kubeconfig = writeKubeconfig(info, uniqueName('http1'), { user: 'candidate', server: relay.url });
    const a = lr.start(['-v', '--kubeconfig', kubeconfig, '--lock-name', name, '--id', 'a', ...FAST, ...workerCmd(ledger)]);
    await started(ledger, 1);
    await a.waitFor('renewed');
    assert.equal(await holder(info, name), 'a');
    a.signal('SIGTERM');
    assert.equal(await a.exitCode(), 143);
    assert.equal(await holder(info, name), '', 'released');
    // leader-run offered h2 first and was given http/1.1 (the HTTP/1.1 agent offers nothing).
    assert.deepEqual(relay.offers, [['h2', 'http/1.1']]);
  });
});
