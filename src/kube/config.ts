/**
 * Finds the cluster to talk to, by kubectl's rules: --kubeconfig, else the files in
 * KUBECONFIG (merged, first wins), else ~/.kube/config, else the Pod's service account.
 * Unlike client-node's loadFromDefault, having none of these is an error rather than a
 * silent http://localhost:8080.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
// The module itself, not the package index: the index loads the whole generated API.
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { ConfigError, type ConfigField, type FieldNames } from './config-error.ts';

export { ConfigError, type ConfigField, type FieldNames };

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface Target {
  readonly kc: KubeConfig;
  /** Where the configuration came from, for logs. */
  readonly source: string;
  /** The namespace to default to: the Pod's, else the context's, else 'default'. */
  readonly namespace: string;
}

/** Where to find the cluster: the kubeconfig file and context, each unset for kubectl's default. */
export interface KubeRef {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
}

export function loadTarget(opts: KubeRef): Target {
  const kc = new KubeConfig();
  let source: string;
  if (opts.kubeconfig !== undefined) {
    if (opts.kubeconfig === '') throw new ConfigError((n) => `${n('kubeconfig')} is empty; give the path of a kubeconfig file`, 'kubeconfig');
    loadFile(kc, opts.kubeconfig, 'kubeconfig');
    source = opts.kubeconfig;
  } else if (process.env['KUBECONFIG']) {
    const listed = process.env['KUBECONFIG'].split(path.delimiter).filter(Boolean);
    // kubectl skips listed files that do not exist, but not ones it cannot read.
    const files = listed.filter((f) => existsSync(f));
    if (files.length === 0)
      throw new ConfigError(
        (n) => `KUBECONFIG names ${listed.map((f) => JSON.stringify(f)).join(', ')}, and none of them exists; fix KUBECONFIG or pass ${n('kubeconfig')}`,
      );
    mergeFirstWins(
      kc,
      files.map((f) => {
        const one = new KubeConfig();
        loadFile(one, f, () => 'KUBECONFIG');
        return one;
      }),
    );
    source = files.join(path.delimiter);
  } else if (existsSync(path.join(homedir(), '.kube', 'config'))) {
    source = path.join(homedir(), '.kube', 'config');
    loadFile(kc, source, () => 'the default kubeconfig');
  } else if (process.env['KUBERNETES_SERVICE_HOST'] && existsSync(path.join(SA_DIR, 'token'))) {
    if (opts.context !== undefined) {
      const context = opts.context;
      throw new ConfigError((n) => `${n('context')} ${context}: there is no kubeconfig to choose a context from (running in-cluster)`, 'context');
    }
    kc.loadFromCluster();
    source = 'in-cluster service account';
  } else {
    throw new ConfigError(
      (n) => `no kubeconfig and not in a cluster: pass ${n('kubeconfig')}, set KUBECONFIG, create ~/.kube/config, or run in a Pod with a service account`,
      'kubeconfig',
    );
  }

  if (opts.context !== undefined && source !== 'in-cluster service account') {
    if (!kc.getContextObject(opts.context)) {
      const names = kc.getContexts().map((c) => c.name);
      const context = opts.context;
      throw new ConfigError(
        (n) =>
          `${n('context')} ${JSON.stringify(context)} is not in ${source}${names.length ? `; its contexts are: ${names.join(', ')}` : ' (it has no contexts)'}`,
        'context',
      );
    }
    kc.setCurrentContext(opts.context);
  }
  const ctxName = kc.getCurrentContext();
  if (!ctxName && kc.getContexts().length === 0)
    throw new ConfigError(`${source} defines no contexts, so it is not a usable kubeconfig; give one made by kubectl config or your cluster's tooling`);
  if (!ctxName) throw new ConfigError((n) => `${source} has no current-context; pass ${n('context')} or run kubectl config use-context`, 'context');
  const ctx = kc.getContextObject(ctxName);
  if (!ctx) throw new ConfigError((n) => `${source}: current-context ${JSON.stringify(ctxName)} is not defined in it; pass ${n('context')}`, 'context');
  const cluster = kc.getCluster(ctx.cluster);
  if (!cluster) throw new ConfigError(`${source}: context ${JSON.stringify(ctxName)} names cluster ${JSON.stringify(ctx.cluster)}, which is not defined`);
  if (!cluster.server) throw new ConfigError(`${source}: cluster ${JSON.stringify(cluster.name)} has no server address`);
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    throw new ConfigError(
      `${source}: cluster ${JSON.stringify(cluster.name)} has server ${JSON.stringify(cluster.server)}, which is not a URL; write it like https://host:6443`,
    );
  }
  if (server.protocol !== 'https:' && server.protocol !== 'http:')
    throw new ConfigError(`${source}: cluster ${JSON.stringify(cluster.name)} has server ${JSON.stringify(cluster.server)}; it must be an https:// URL`);
  // client-node refuses plain HTTP unless verification is off; say so here rather than fail later.
  if (server.protocol === 'http:' && !cluster.skipTLSVerify)
    throw new ConfigError(
      `${source}: cluster ${JSON.stringify(cluster.name)} has a plain http:// server ${JSON.stringify(cluster.server)}; use https://, or set insecure-skip-tls-verify: true on the cluster if you mean it`,
    );
  // Our requests go over a connection of our own (see client.ts), which does not tunnel.
  if (cluster.proxyUrl)
    throw new ConfigError(
      `${source}: cluster ${JSON.stringify(cluster.name)} sets proxy-url ${JSON.stringify(cluster.proxyUrl)}, which leader-run does not support; reach the API server directly, or remove proxy-url`,
    );
  if (ctx.user && !kc.getUser(ctx.user))
    throw new ConfigError(`${source}: context ${JSON.stringify(ctxName)} names user ${JSON.stringify(ctx.user)}, which is not defined`);
  const user = ctx.user ? kc.getUser(ctx.user) : null;
  checkFile(cluster.caFile, `cluster ${JSON.stringify(cluster.name)} certificate-authority`, source);
  checkFile(user?.certFile, `user ${JSON.stringify(user?.name)} client-certificate`, source);
  checkFile(user?.keyFile, `user ${JSON.stringify(user?.name)} client-key`, source);

  const nsFile = path.join(SA_DIR, 'namespace');
  const podNamespace = source === 'in-cluster service account' && existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : '';
  return { kc, source, namespace: podNamespace || ctx.namespace || 'default' };
}

/** kubectl's merge of the KUBECONFIG files: a cluster, user or context defined in several
 *  files is taken from the first (every k3s kubeconfig calls all three `default`), and so is
 *  the current-context. client-node's mergeConfig throws on such duplicates instead. */
function mergeFirstWins(into: KubeConfig, configs: KubeConfig[]): void {
  const first = <T extends { name: string }>(lists: T[][]): T[] => {
    const seen = new Map<string, T>();
    for (const list of lists) for (const item of list) if (!seen.has(item.name)) seen.set(item.name, item);
    return [...seen.values()];
  };
  into.loadFromOptions({
    clusters: first(configs.map((c) => c.getClusters())),
    users: first(configs.map((c) => c.getUsers())),
    contexts: first(configs.map((c) => c.getContexts())),
    currentContext: configs.map((c) => c.getCurrentContext()).find((c) => !!c) ?? '',
  });
}

/** `from` names where the file was given: an option (the kubeconfig field), or a source of
 *  kubectl's (KUBECONFIG, the default file). */
function loadFile(kc: KubeConfig, file: string, from: 'kubeconfig' | (() => string)): void {
  const field = from === 'kubeconfig' ? 'kubeconfig' : undefined;
  const what = (n: FieldNames) => (from === 'kubeconfig' ? n('kubeconfig') : from());
  const problem = fileProblem(file);
  if (problem === 'missing') throw new ConfigError((n) => `${what(n)}: ${file} does not exist; give the path of a kubeconfig file`, field);
  if (problem) throw new ConfigError((n) => `${what(n)}: ${file} ${problem}; give the path of a readable kubeconfig file`, field);
  try {
    kc.loadFromFile(file);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    throw new ConfigError((n) => `${what(n)}: ${file} is not a valid kubeconfig: ${msg}`, field);
  }
}

function checkFile(file: string | undefined, what: string, source: string): void {
  const problem = file ? fileProblem(file) : undefined;
  if (problem) throw new ConfigError(`${source}: ${what} file ${file} ${problem === 'missing' ? 'does not exist' : problem}; fix the path in the kubeconfig`);
}

/** Why a file cannot be read, or undefined. A directory on the way that we may not enter is
 *  "permission denied", not "missing": the fix differs. */
function fileProblem(file: string): string | undefined {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EACCES' ? 'is not readable (permission denied on a directory in its path)' : 'missing';
  }
  if (st.isDirectory()) return 'is a directory, not a file';
  try {
    accessSync(file, constants.R_OK);
  } catch {
    return 'is not readable by this user (permission denied)';
  }
  return undefined;
}
