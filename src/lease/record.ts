/**
 * The Lease record, exactly as client-go's LeaseLock writes it (DESIGN §2), so a Go
 * controller and leader-run can campaign for the same Lease.
 *
 * Records are kept as the server's JSON: fields we do not own (strategy,
 * preferredHolder, anything added later) ride along untouched, and times stay
 * the strings the server returned, so comparing what we wrote with what we read
 * is exact.
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** A Lease name (a DNS subdomain) and a namespace name (a DNS label), as the API server checks them. */
export const LEASE_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const NAMESPACE_NAME = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The default holder identity: unique per process, as kube-controller-manager makes it, so
 *  a restarted process never mistakes its predecessor's record for its own. */
export function defaultIdentity(): string {
  return `${hostname()}_${randomBytes(8).toString('hex')}`;
}

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
  strategy?: string | null;
  preferredHolder?: string | null;
  [field: string]: unknown;
}

/** One observed version of the Lease object. */
export interface LeaseSnapshot {
  readonly uid: string;
  readonly resourceVersion: string;
  readonly spec: LeaseSpec;
  /** The whole object as read, which a conditional PUT sends back with a new spec. */
  readonly object: Record<string, unknown>;
}

/** MicroTime: RFC 3339 UTC with exactly six fractional digits; the API server rejects three. */
export function microTime(wallMs: number): string {
  const iso = new Date(Math.floor(wallMs)).toISOString(); // 2026-11-21T10:00:00.123Z
  const micros = String(Math.floor((wallMs % 1) * 1000)).padStart(3, '0');
  return `${iso.slice(0, -1)}${micros}Z`;
}

export function holderOf(s: LeaseSnapshot | null): string {
  return s?.spec.holderIdentity ?? '';
}

export function transitionsOf(s: LeaseSnapshot | null): number {
  return s?.spec.leaseTransitions ?? 0;
}

/** The record that starts our term. Transitions always advance, even past a record naming our
 *  own identity (an earlier incarnation), so the fencing token grows with every term; and past
 *  `above`, the largest leaseTransitions seen on Lease objects this one replaced, so a
 *  recreated Lease does not start the tokens again at 0. */
export function acquireSpec(prev: LeaseSnapshot | null, identity: string, durationSeconds: number, wallMs: number, above = -1): LeaseSpec {
  const now = microTime(wallMs);
  return {
    ...(prev?.spec ?? {}),
    holderIdentity: identity,
    leaseDurationSeconds: durationSeconds,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: Math.max(prev ? transitionsOf(prev) : -1, above) + 1,
  };
}

/** Whether a free record has the shape a release leaves (client-go's and ours: no holder,
 *  leaseDurationSeconds 1). Only such a record may be taken at once: any other free record
 *  (an admin's edit, a Lease recreated empty) may have been written under a leader that
 *  still runs. */
export function isReleased(spec: LeaseSpec): boolean {
  return (spec.holderIdentity ?? '') === '' && spec.leaseDurationSeconds === 1;
}

export function renewSpec(current: LeaseSnapshot, wallMs: number): LeaseSpec {
  return { ...current.spec, renewTime: microTime(wallMs) };
}

/** client-go's release: holder cleared, duration 1s, transitions kept, so the next candidate
 *  (ours or client-go's) takes over at once. */
export function releaseSpec(current: LeaseSnapshot, wallMs: number): LeaseSpec {
  const now = microTime(wallMs);
  return {
    ...current.spec,
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: transitionsOf(current),
  };
}

/** Whether two specs carry the same leadership claim; metadata-only writes (labels,
 *  annotations) bump the resourceVersion but leave this unchanged. */
export function sameClaim(a: LeaseSpec, b: LeaseSpec): boolean {
  return (
    (a.holderIdentity ?? '') === (b.holderIdentity ?? '') &&
    (a.leaseDurationSeconds ?? 0) === (b.leaseDurationSeconds ?? 0) &&
    (a.acquireTime ?? '') === (b.acquireTime ?? '') &&
    (a.renewTime ?? '') === (b.renewTime ?? '') &&
    (a.leaseTransitions ?? 0) === (b.leaseTransitions ?? 0)
  );
}

/** A key that changes whenever the record changes, for expiry judged by observation. */
export function observationKey(s: LeaseSnapshot | null): string {
  return s ? `${s.uid}/${s.resourceVersion}/${JSON.stringify(s.spec)}` : 'absent';
}

/**
 * A request that the leader hand over (`leader-run step-down`), as an annotation on the Lease.
 * It names the term it is for — the holder and its leaseTransitions — so that only that
 * leader acts on it, never a later one, and no clock is compared. An annotation is metadata:
 * the claim (the spec) is untouched, so a client-go peer, a follower, and "a foreign write
 * fences at once" all see no change of leadership.
 */
export const STEP_DOWN_ANNOTATION = 'leader-run.io/step-down';

export interface StepDownRequest {
  readonly holder: string;
  readonly transitions: number;
  /** `--to`: hand the Lease to this identity rather than free it. */
  readonly to?: string | undefined;
}

export function stepDownValue(r: StepDownRequest): string {
  return JSON.stringify(r.to ? { holder: r.holder, transitions: r.transitions, to: r.to } : { holder: r.holder, transitions: r.transitions });
}

/** The request on `snap` for the leader of term (`holder`, `transitions`), if there is one. */
export function stepDownRequestOf(snap: LeaseSnapshot | null, holder: string, transitions: number): StepDownRequest | null {
  const raw = annotationOf(snap, STEP_DOWN_ANNOTATION);
  if (!raw) return null;
  try {
    const r = JSON.parse(raw) as Partial<StepDownRequest>;
    if (r.holder !== holder || r.transitions !== transitions) return null;
    return { holder, transitions, to: typeof r.to === 'string' && r.to !== '' ? r.to : undefined };
  } catch {
    return null;
  }
}

/**
 * `leader-run step-down --to ID`: instead of a release, the leader writes a record naming ID
 * as holder — fresh, for the leader's own lease duration, transitions + 1 — and, beside it,
 * this annotation pinning that one record. A client-go candidate named ID finds itself holder
 * and renews (client-go takes such a record as its own); a leader-run candidate named ID takes
 * it at once (handedOverTo), which it never does for another record naming its identity; every
 * other candidate, client-go's included, sees a Lease held by ID and waits, and takes over only
 * when it has not changed for a lease duration (ID is gone). The record is written only once
 * the old leader's tree is confirmed gone, as a release is.
 */
export const HANDOVER_ANNOTATION = 'leader-run.io/handover';

export function handoverSpec(current: LeaseSnapshot, to: string, wallMs: number): LeaseSpec {
  const now = microTime(wallMs);
  return { ...current.spec, holderIdentity: to, acquireTime: now, renewTime: now, leaseTransitions: transitionsOf(current) + 1 };
}

export function handoverValue(from: string, spec: LeaseSpec): string {
  return JSON.stringify({ from, to: spec.holderIdentity, transitions: spec.leaseTransitions, renewTime: spec.renewTime });
}

/** Whether `snap` is exactly the record a step-down --to wrote for `identity`. */
export function handedOverTo(snap: LeaseSnapshot | null, identity: string): boolean {
  const raw = annotationOf(snap, HANDOVER_ANNOTATION);
  if (!snap || !raw || holderOf(snap) !== identity) return false;
  try {
    const h = JSON.parse(raw) as { to?: unknown; transitions?: unknown; renewTime?: unknown };
    return h.to === identity && h.transitions === transitionsOf(snap) && h.renewTime === snap.spec.renewTime;
  } catch {
    return false;
  }
}

function annotationOf(snap: LeaseSnapshot | null, key: string): string | undefined {
  const meta = (snap?.object['metadata'] ?? {}) as { annotations?: Record<string, string> };
  return meta.annotations?.[key];
}

/**
 * `--once-per WINDOW`: the last successful run, as an annotation on the Lease, written in the
 * same write that releases it — so no candidate can find the Lease free and the run not yet
 * recorded. Windows are fixed intervals of WINDOW from the Unix epoch (UTC): `1h` windows
 * start on the hour, `1d` at 00:00 UTC. A run belongs to the window in which it won the Lease.
 */
export const LAST_SUCCESS_ANNOTATION = 'leader-run.io/last-success';

export interface LastSuccess {
  /** MicroTime of the write that won the Lease for the run. */
  readonly started: string;
  /** MicroTime at which the child exited 0. */
  readonly finished: string;
  readonly holder: string;
  readonly fencingToken: number;
}

export function lastSuccessOf(snap: LeaseSnapshot | null): LastSuccess | null {
  const raw = annotationOf(snap, LAST_SUCCESS_ANNOTATION);
  if (!raw) return null;
  try {
    const r = JSON.parse(raw) as Partial<LastSuccess>;
    return typeof r.started === 'string' && Number.isFinite(Date.parse(r.started))
      ? { started: r.started, finished: String(r.finished ?? ''), holder: String(r.holder ?? ''), fencingToken: Number(r.fencingToken ?? 0) }
      : null;
  } catch {
    return null;
  }
}

export function lastSuccessValue(r: LastSuccess): string {
  return JSON.stringify({ started: r.started, finished: r.finished, holder: r.holder, fencingToken: r.fencingToken });
}

/** The annotations of the release that records a successful run (wall clock, Unix ms). */
export function lastSuccessAnnotations(run: { startedWall: number; finishedWall: number; fencingToken: number }, holder: string): Record<string, string> {
  const value = lastSuccessValue({ started: microTime(run.startedWall), finished: microTime(run.finishedWall), holder, fencingToken: run.fencingToken });
  return { [LAST_SUCCESS_ANNOTATION]: value };
}

/** The start (Unix ms) of the --once-per window holding `wallMs`. */
export function windowStart(wallMs: number, windowMs: number): number {
  return Math.floor(wallMs / windowMs) * windowMs;
}

/** The snapshot with `annotations` added, so that a conditional write from it sends them. */
export function withAnnotations(snap: LeaseSnapshot, annotations: Record<string, string>): LeaseSnapshot {
  const meta = (snap.object['metadata'] ?? {}) as { annotations?: Record<string, string> };
  return { ...snap, object: { ...snap.object, metadata: { ...meta, annotations: { ...meta.annotations, ...annotations } } } };
}
