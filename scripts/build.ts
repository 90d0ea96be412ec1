// `npm run build`: what leader-run runs, bundled by esbuild into dist/, and the library's
// type declarations from tsc. Bundling matters for start-up: importing
// @kubernetes/client-node as published loads its whole generated API (~0.3 s, ~50 MB);
// the bundle keeps only what we use.
import { spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

/**
 * client-node's KubeConfig module also imports what only its generated API client uses —
 * undici (fetch), the proxy agents, the generated configuration — about 2 MB of code and
 * 16 MiB of memory in every leader-run process. leader-run sends its requests through its
 * own agent and refuses a kubeconfig proxy-url, so those paths never run: they become
 * stubs that throw if one ever did.
 */
function withoutUnusedClientParts(): Plugin {
  const packages = /^(undici|socks-proxy-agent|socks|hpagent)$/;
  const generated = /^\.\/(gen\/index|middleware)\.js$/;
  const fromKubeConfig = (importer: string): boolean => /@kubernetes[\\/]client-node[\\/]dist[\\/]config\.js$/.test(importer);
  return {
    name: 'without-unused-client-parts',
    setup(b) {
      b.onResolve({ filter: packages }, (a) => (fromKubeConfig(a.importer) ? { path: a.path, namespace: 'unused' } : undefined));
      b.onResolve({ filter: generated }, (a) => (fromKubeConfig(a.importer) ? { path: a.path, namespace: 'unused' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'unused' }, (a) => ({
        loader: 'js',
        contents: `const unused = () => { throw new Error(${JSON.stringify(`${a.path} is not part of leader-run's build`)}); };
export class Agent { constructor() { unused(); } }
export class ProxyAgent extends Agent {}
export class SocksProxyAgent extends Agent {}
export class HttpProxyAgent extends Agent {}
export class HttpsProxyAgent extends Agent {}
export class ServerConfiguration extends Agent {}
export const SocksClient = { createConnection: unused };
export const createConfiguration = unused;
export const setHeaderMiddleware = unused;`,
      }));
    },
  };
}

/**
 * KubeConfig builds one of each of its auth providers up front, so loading it evaluates
 * openid-client, oauth4webapi and jsonpath-plus (about 210 KB of code) in every leader-run,
 * though a kubeconfig names at most one provider and most name none (a token, a client
 * certificate, exec). The azure, gcp and oidc providers become stand-ins that answer
 * "is this yours?" by the provider's name, as the real ones do, and load the real one —
 * a chunk of its own — the first time its user sends a request.
 */
function authProvidersOnDemand(): Plugin {
  const providers: Record<string, { name: string; cls: string }> = {
    azure_auth: { name: 'azure', cls: 'AzureAuth' },
    gcp_auth: { name: 'gcp', cls: 'GoogleCloudPlatformAuth' },
    oidc_auth: { name: 'oidc', cls: 'OpenIDConnectAuth' },
  };
  const fromKubeConfig = (importer: string): boolean => /@kubernetes[\\/]client-node[\\/]dist[\\/]config\.js$/.test(importer);
  return {
    name: 'auth-providers-on-demand',
    setup(b) {
      b.onResolve({ filter: /^\.\/(azure|gcp|oidc)_auth\.js$/ }, (a) =>
        fromKubeConfig(a.importer) ? { path: path.join(a.resolveDir, a.path), namespace: 'on-demand' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'on-demand' }, (a) => {
        const p = providers[path.basename(a.path, '.js')];
        if (!p) throw new Error(`no stand-in for ${a.path}`);
        return {
          loader: 'js',
          resolveDir: path.dirname(a.path),
          contents: `export class ${p.cls} {
  isAuthProvider(user) { return !!user && !!user.authProvider && user.authProvider.name === ${JSON.stringify(p.name)}; }
  async applyAuthentication(user, opts) {
    this.real ??= import(${JSON.stringify(a.path)}).then((m) => new m.${p.cls}());
    return (await this.real).applyAuthentication(user, opts);
  }
}`,
        };
      });
    },
  };
}

/**
 * `import … from 'node:http'` in an ES module makes Node build the module's ESM facade,
 * which reads every export, and the WebSocket, CloseEvent and MessageEvent ones load Node's
 * own copy of undici: 20 ms of start-up and 4 MiB of memory for nothing. The bundle imports
 * node:http through process.getBuiltinModule (Node >= 22.3) instead, which makes no facade.
 */
function httpWithoutFacade(): Plugin {
  const names = ['Agent', 'ClientRequest', 'IncomingMessage', 'OutgoingMessage', 'Server', 'ServerResponse', 'METHODS', 'STATUS_CODES'];
  const fns = ['createServer', 'get', 'request', 'validateHeaderName', 'validateHeaderValue'];
  return {
    name: 'http-without-facade',
    setup(b) {
      b.onResolve({ filter: /^(node:)?http$/ }, () => ({ path: 'node:http', namespace: 'builtin' }));
      b.onLoad({ filter: /.*/, namespace: 'builtin' }, () => ({
        loader: 'js',
        contents: `const http = process.getBuiltinModule('node:http');
export default http;
export const { ${[...names, ...fns].join(', ')} } = http;`,
      }));
    },
  };
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(repo);
// Built aside and swapped in, so a leader-run starting meanwhile never finds dist/ half-made.
rmSync('dist.new', { recursive: true, force: true });

await build({
  entryPoints: { cli: 'src/cli/main.ts', watchdog: 'src/child/watchdog.ts', index: 'src/index.ts' },
  outdir: 'dist.new',
  bundle: true,
  splitting: true, // the Kubernetes side is a chunk of its own, loaded only to campaign
  format: 'esm',
  platform: 'node',
  target: 'node22',
  packages: 'bundle',
  chunkNames: '[name]-[hash]', // beside watchdog.js, which child.ts finds next to itself
  // Some bundled dependencies are CommonJS and call require() for Node's own modules.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  plugins: [withoutUnusedClientParts(), authProvidersOnDemand(), httpWithoutFacade()],
  logLevel: 'warning',
});

const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', 'dist.new/types'], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
rmSync('dist.old', { recursive: true, force: true });
if (existsSync('dist')) renameSync('dist', 'dist.old');
renameSync('dist.new', 'dist');
rmSync('dist.old', { recursive: true, force: true });
