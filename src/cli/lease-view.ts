/**
 * A Lease as `leader-run status` shows it. "Renewed ago" and "expires in" compare renewTime
 * with this machine's wall clock: fine for a person reading a screen, which is the only use
 * here. The election itself never does this (DESIGN §2).
 */
import { type LastSuccess, type LeaseSnapshot, lastSuccessOf } from '../lease/record.ts';

export type LeaseState = 'held' | 'expired' | 'released' | 'absent';

export interface LeaseView {
  lease: string;
  state: LeaseState;
  uid: string | null;
  holder: string | null;
  acquireTime: string | null;
  renewTime: string | null;
  leaseDurationSeconds: number | null;
  heldForSeconds: number | null;
  renewedAgoSeconds: number | null;
  /** As observed: leaseDurationSeconds − renewed ago; null unless held. */
  expiresInSeconds: number | null;
  transitions: number | null;
  strategy: string | null;
  preferredHolder: string | null;
  /** --once-per's record of the last successful run, if any. */
  lastSuccess: LastSuccess | null;
  observedAt: string;
}

export function leaseView(lease: string, snap: LeaseSnapshot | null, nowWall: number): LeaseView {
  const s = snap?.spec;
  const holder = s?.holderIdentity || null;
  const since = (t: string | null | undefined) => (t ? Math.max(0, (nowWall - Date.parse(t)) / 1000) : null);
  const renewedAgo = since(s?.renewTime);
  const duration = s?.leaseDurationSeconds ?? null;
  const left = duration !== null && renewedAgo !== null ? duration - renewedAgo : null;
  const state: LeaseState = !snap ? 'absent' : !holder ? 'released' : left !== null && left <= 0 ? 'expired' : 'held';
  const round = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);
  return {
    lease,
    state,
    uid: snap?.uid || null,
    holder,
    acquireTime: s?.acquireTime ?? null,
    renewTime: s?.renewTime ?? null,
    leaseDurationSeconds: duration,
    // For a released Lease, acquireTime is the release: nobody holds it.
    heldForSeconds: holder ? round(since(s?.acquireTime)) : null,
    renewedAgoSeconds: round(renewedAgo),
    expiresInSeconds: state === 'held' ? round(left) : null,
    transitions: s?.leaseTransitions ?? null,
    strategy: s?.strategy || null,
    preferredHolder: s?.preferredHolder || null,
    lastSuccess: lastSuccessOf(snap),
    observedAt: new Date(nowWall).toISOString(),
  };
}

/** What a --watch line is printed for: leadership changes, not every renewal. */
export function changeKey(v: LeaseView): string {
  return JSON.stringify([v.state, v.uid, v.holder, v.transitions, v.strategy, v.preferredHolder]);
}

export const COLUMNS = ['LEASE', 'HOLDER', 'HELD FOR', 'RENEWED', 'EXPIRES IN', 'TRANSITIONS', 'STRATEGY', 'PREFERRED HOLDER'] as const;

export function tableRow(v: LeaseView): string[] {
  const none = '<none>';
  if (v.state === 'absent') return [v.lease, '<no Lease>', '', '', '', '', '', ''];
  return [
    v.lease,
    v.holder ?? none,
    v.heldForSeconds === null ? '-' : human(v.heldForSeconds),
    v.renewedAgoSeconds === null ? '-' : `${human(v.renewedAgoSeconds)} ago`,
    v.state === 'held' ? human(v.expiresInSeconds ?? 0) : v.state,
    String(v.transitions ?? 0),
    v.strategy ?? none,
    v.preferredHolder ?? none,
  ];
}

/** 0.8s, 12s, 3m5s, 2h10m, 4d3h: tenths only where they tell something (renewals are seconds apart). */
export function human(seconds: number): string {
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? `${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600) ? `${Math.floor((s % 86400) / 3600)}h` : ''}`;
}

/** Pads columns to `widths`, which only grow, so lines printed later under --watch stay
 *  aligned with the header as long as their cells fit. */
export function formatTable(rows: ReadonlyArray<readonly string[]>, widths: number[]): string[] {
  for (const r of rows)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3)))
      .join('')
      .trimEnd(),
  );
}
