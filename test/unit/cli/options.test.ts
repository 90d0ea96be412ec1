import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseArgs, UsageError } from '../../../src/cli/options.ts';

describe('the run’s flags', () => {
  const base = ['--lock-name', 'x', '--id', 'pod-1'];
  const parse = (args: string[]) => parseArgs([...base, ...args, '--', 'true'], '0.0.0');
  it('parses --http-addr like Go', () => {
    assert.deepEqual(parse(['--http-addr', '127.0.0.1:0']).config.http, { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parse(['--http-addr', ':9090']).config.http, { host: undefined, port: 9090 });
    assert.deepEqual(parse(['--http-addr', '[::1]:9090']).config.http, { host: '::1', port: 9090 });
    assert.equal(parse([]).config.http, undefined);
    for (const bad of ['9090', '127.0.0.1', 'host:99999', '::1:80', 'a:b'])
      assert.throws(
        () => parse(['--http-addr', bad]),
        (e: Error) => e instanceof UsageError && /^--http-addr ".*" is not HOST:PORT/.test(e.message),
        bad,
      );
  });
  it('takes the Pod for --leader-service from POD_NAME / POD_NAMESPACE, else --id', () => {
    const saved = { n: process.env['POD_NAME'], ns: process.env['POD_NAMESPACE'] };
    try {
      delete process.env['POD_NAME'];
      delete process.env['POD_NAMESPACE'];
      assert.deepEqual(parse(['--leader-service', 'web']).config.routing, {
        service: 'web',
        pod: 'pod-1',
        podNamespace: undefined,
        podFrom: "--id (LEADER_RUN_ID) and the Lease's namespace",
      });
      process.env['POD_NAME'] = 'web-7d9f-abcde';
      process.env['POD_NAMESPACE'] = 'prod';
      assert.deepEqual(parse(['--leader-service', 'web']).config.routing, {
        service: 'web',
        pod: 'web-7d9f-abcde',
        podNamespace: 'prod',
        podFrom: 'POD_NAME and POD_NAMESPACE',
      });
      delete process.env['POD_NAME'];
      assert.throws(
        () => parseArgs(['--lock-name', 'x', '--leader-service', 'web', '--', 'true'], '0'),
        /--leader-service needs this Pod's name: set POD_NAME/,
      );
      assert.throws(() => parse(['--leader-service', 'Web']), /--leader-service "Web" is not a valid Service name/);
    } finally {
      for (const [k, v] of [
        ['POD_NAME', saved.n],
        ['POD_NAMESPACE', saved.ns],
      ] as const)
        v === undefined ? delete process.env[k] : (process.env[k] = v);
    }
  });
  it('lets the child share a terminal only when stdin is one, unless told', () => {
    const stdin = Object.getOwnPropertyDescriptor(process.stdin, 'isTTY');
    const saved = process.env['LEADER_RUN_TERMINAL'];
    try {
      Object.defineProperty(process.stdin, 'isTTY', { value: undefined, configurable: true });
      assert.equal(parse([]).config.terminal, false, 'stdin is no terminal: the child leads a session of its own');
      Object.defineProperty(process.stdin, 'isTTY', { value: true, configurable: true });
      assert.equal(parse([]).config.terminal, true);
      assert.equal(parse(['--no-terminal']).config.terminal, false);
      process.env['LEADER_RUN_TERMINAL'] = 'false';
      assert.equal(parse([]).config.terminal, false);
      assert.equal(parse(['--terminal']).config.terminal, true, 'a flag wins over its variable');
    } finally {
      if (stdin) Object.defineProperty(process.stdin, 'isTTY', stdin);
      else delete (process.stdin as { isTTY?: boolean }).isTTY;
      saved === undefined ? delete process.env['LEADER_RUN_TERMINAL'] : (process.env['LEADER_RUN_TERMINAL'] = saved);
    }
  });
});
