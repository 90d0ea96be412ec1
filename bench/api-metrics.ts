// Counting API requests per candidate from the apiserver's own /metrics.
//
// apiserver_request_total has no user label (only verb, resource, code…), so requests are
// attributed through API Priority and Fairness instead: every candidate (or group of
// candidates) gets one FlowSchema per verb that matches only its ServiceAccount(s), and
// apiserver_flowcontrol_dispatched_requests_total{flow_schema=…} then counts its requests
// by verb. The schemas route to workload-low, the priority level that ServiceAccounts use
// anyway (via the built-in "service-accounts" schema), so matching changes no behaviour.

import type { ClusterInfo } from '../test/control-plane/cluster.ts';
import { apiRequest, target } from '../test/control-plane/cluster.ts';

export const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] as const;
export type Verb = (typeof VERBS)[number] | 'other';
export type VerbCounts = Record<Verb, number>;

const FS_PATH = '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas';
const PRIORITY_LEVEL = 'workload-low';

const schemaName = (group: string, verb: Verb): string => `bench-${group}-${verb}`;

/** Creates the per-verb FlowSchemas of `group`, matching these ServiceAccounts in info.namespace. */
export async function attributeGroup(info: ClusterInfo, group: string, serviceAccounts: string[]): Promise<void> {
  const admin = target(info, 'admin');
  const subjects = serviceAccounts.map((name) => ({ kind: 'ServiceAccount', serviceAccount: { name, namespace: info.namespace } }));
  const schemas = [
    ...VERBS.map((verb) => ({
      name: schemaName(group, verb),
      precedence: 500,
      rules: {
        subjects,
        resourceRules: [{ verbs: [verb], apiGroups: ['*'], resources: ['*'], clusterScope: true, namespaces: ['*'] }],
      },
    })),
    // Anything else (non-resource URLs, other verbs) after the per-verb ones.
    {
      name: schemaName(group, 'other'),
      precedence: 600,
      rules: {
        subjects,
        resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], clusterScope: true, namespaces: ['*'] }],
        nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
      },
    },
  ];
  for (const s of schemas) {
    const res = await apiRequest(admin, 'POST', FS_PATH, {
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'FlowSchema',
      metadata: { name: s.name },
      spec: { priorityLevelConfiguration: { name: PRIORITY_LEVEL }, matchingPrecedence: s.precedence, rules: [s.rules] },
    });
    if (res.status !== 201 && res.status !== 409) throw new Error(`create FlowSchema ${s.name}: HTTP ${res.status} ${res.text}`);
  }
}

export interface Scrape {
  /** Wall ms when the answer arrived. */
  at: number;
  /** flow_schema → dispatched requests. */
  dispatched: Map<string, number>;
  /** "VERB resource" → requests (apiserver_request_total summed over codes etc.). */
  requests: Map<string, number>;
  /** "VERB resource" → open long-running requests (watches). */
  longrunning: Map<string, number>;
}

const LINE = /^(\w+)\{([^}]*)\} ([0-9.e+-]+)$/;

function labelsOf(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

export async function scrape(info: ClusterInfo): Promise<Scrape> {
  const res = await apiRequest(target(info, 'admin'), 'GET', '/metrics');
  if (res.status !== 200) throw new Error(`GET /metrics: HTTP ${res.status}`);
  const s: Scrape = { at: Date.now(), dispatched: new Map(), requests: new Map(), longrunning: new Map() };
  for (const line of res.text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, name, labelText, value] = m;
    if (name !== 'apiserver_flowcontrol_dispatched_requests_total' && name !== 'apiserver_request_total' && name !== 'apiserver_longrunning_requests') continue;
    const l = labelsOf(labelText!);
    const v = Number(value);
    if (name === 'apiserver_flowcontrol_dispatched_requests_total') s.dispatched.set(l['flow_schema']!, (s.dispatched.get(l['flow_schema']!) ?? 0) + v);
    else {
      const key = `${l['verb']} ${l['resource'] || l['subresource'] || '-'}`;
      const map = name === 'apiserver_request_total' ? s.requests : s.longrunning;
      map.set(key, (map.get(key) ?? 0) + v);
    }
  }
  return s;
}

/** Requests of `group` between two scrapes, by verb. */
export function groupDelta(a: Scrape, b: Scrape, group: string): VerbCounts {
  const out = {} as VerbCounts;
  for (const verb of [...VERBS, 'other'] as const) {
    const n = schemaName(group, verb);
    out[verb] = (b.dispatched.get(n) ?? 0) - (a.dispatched.get(n) ?? 0);
  }
  return out;
}

/** All requests the apiserver served between two scrapes (every client, itself included). */
export function totalDelta(a: Scrape, b: Scrape): { total: number; byKey: Record<string, number> } {
  const byKey: Record<string, number> = {};
  let total = 0;
  for (const [k, v] of b.requests) {
    const d = v - (a.requests.get(k) ?? 0);
    if (d > 0) {
      byKey[k] = d;
      total += d;
    }
  }
  return { total, byKey };
}

export const sumVerbs = (c: VerbCounts): number => Object.values(c).reduce((x, y) => x + y, 0);
export const reads = (c: VerbCounts): number => c.get + c.list + c.watch;
export const writes = (c: VerbCounts): number => c.create + c.update + c.patch + c.delete;
