/**
 * Records every version of the Lease as the admin sees it, straight from the apiserver (not
 * through any candidate's proxy): the evidence of who wrote what, and when, around a fault.
 * Reconnects on its own while the apiserver is frozen, killed or restarting.
 */
import fs from 'node:fs';
import https from 'node:https';
import type { ApiTarget } from '../support/cluster.ts';
import { monoNow } from '../support/procs.ts';

export interface LeaseEvent {
  mono: number;
  wall: number;
  type: string;
  rv: string;
  uid: string;
  holder: string;
  transitions: number | undefined;
  renewTime: string | undefined;
  duration: number | undefined;
}

const KEEP = 4000;

export class LeaseWatch {
  readonly events: LeaseEvent[] = [];
  readonly #to: ApiTarget;
  readonly #path: string;
  readonly #file: string;
  #req: ReturnType<typeof https.request> | undefined;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(to: ApiTarget, namespace: string, name: string, file: string) {
    this.#to = to;
    this.#path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases?watch=1&fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;
    this.#file = file;
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#req?.destroy();
  }

  /** Events with mono in [from, to]. */
  between(from: number, to: number): LeaseEvent[] {
    return this.events.filter((e) => e.mono >= from && e.mono <= to);
  }

  #connect(): void {
    if (this.#stopped) return;
    let buf = '';
    const req = https.request(
      new URL(this.#path, this.#to.server),
      {
        method: 'GET',
        ca: fs.readFileSync(this.#to.caFile),
        agent: false,
        headers: { authorization: `Bearer ${this.#to.token}`, accept: 'application/json' },
      },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (s: string) => {
          buf += s;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            this.#record(line);
          }
        });
        res.on('error', () => {});
        res.on('close', () => this.#again(req));
      },
    );
    // A frozen apiserver answers nothing: TCP keepalive does not help on loopback, so a
    // silent stream is simply left open until the server is back or is killed.
    req.on('error', () => this.#again(req));
    this.#req = req;
    req.end();
  }

  /** Reconnects once per lost connection, whichever of its error and close comes first. */
  #again(req: ReturnType<typeof https.request>): void {
    if (this.#stopped || this.#retry || req !== this.#req) return;
    this.#req = undefined;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#connect();
    }, 250);
  }

  #record(line: string): void {
    let ev: { type?: string; object?: { metadata?: Record<string, string>; spec?: Record<string, unknown> } };
    try {
      ev = JSON.parse(line);
    } catch {
      return;
    }
    const md = ev.object?.metadata ?? {};
    const spec = ev.object?.spec ?? {};
    const e: LeaseEvent = {
      mono: monoNow(),
      wall: Date.now(),
      type: ev.type ?? '?',
      rv: md['resourceVersion'] ?? '',
      uid: md['uid'] ?? '',
      holder: (spec['holderIdentity'] as string | undefined) ?? '',
      transitions: spec['leaseTransitions'] as number | undefined,
      renewTime: spec['renewTime'] as string | undefined,
      duration: spec['leaseDurationSeconds'] as number | undefined,
    };
    if (e.type === 'BOOKMARK' || e.type === 'ERROR') return;
    this.events.push(e);
    if (this.events.length > KEEP) this.events.splice(0, this.events.length - KEEP);
    fs.appendFileSync(this.#file, `${formatLeaseEvent(e)}\n`);
  }
}

export function formatLeaseEvent(e: LeaseEvent): string {
  return (
    `${e.mono.toFixed(1)} ${new Date(e.wall).toISOString()} lease ${e.type} rv=${e.rv} uid=${e.uid.slice(0, 8)} ` +
    `holder=${JSON.stringify(e.holder)} transitions=${e.transitions} renew=${e.renewTime} dur=${e.duration}`
  );
}
