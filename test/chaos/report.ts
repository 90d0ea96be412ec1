/** The chaos run's summary, for people; its last line is for machines. */
import { type ChaosResult, FAULT_KINDS } from './chaos.ts';

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

const ms = (v: number): string => (Number.isNaN(v) ? '-' : `${Math.round(v)}ms`);

function duration(msTotal: number): string {
  const s = Math.round(msTotal / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function failedCount(r: ChaosResult): number {
  return r.overlaps.length + leftoverCount(r);
}

/** Processes left over (at the end, or older trees alive after a newer child started) and
 *  a Lease left held after every candidate stopped gracefully. */
export function leftoverCount(r: ChaosResult): number {
  return r.leftovers.length + r.strays.length + (r.leaseHeld ? 1 : 0);
}

export function summaryLine(r: ChaosResult): string {
  return `rounds=${r.results.length} overlaps=${r.overlaps.length} overlap_ms=${Math.ceil(r.overlapMs)} leftovers=${leftoverCount(r)}`;
}

export function report(r: ChaosResult): string[] {
  const out: string[] = [];
  out.push('');
  out.push(
    `chaos summary: seed ${r.seed}, ${r.results.length}/${r.requested} rounds in ${duration(r.wallMs)}` +
      (r.interrupted ? ' (interrupted)' : '') +
      (r.failed ? ` (failed: ${r.failed})` : ''),
  );
  out.push('');
  out.push('fault              rounds  takeover  ridden-out  stuck     p50     p90     p99     max');
  const all: number[] = [];
  for (const kind of FAULT_KINDS) {
    const rs = r.results.filter((x) => x.kind === kind);
    const t = rs
      .filter((x) => x.outcome === 'takeover')
      .map((x) => x.takeoverMs!)
      .sort((a, b) => a - b);
    all.push(...t);
    out.push(
      `${kind.padEnd(17)} ${String(rs.length).padStart(7)} ${String(t.length).padStart(9)} ` +
        `${String(rs.filter((x) => x.outcome === 'survived').length).padStart(11)} ${String(rs.filter((x) => x.outcome === 'stuck').length).padStart(6)} ` +
        [0.5, 0.9, 0.99, 1].map((p) => ms(percentile(t, p)).padStart(7)).join(' '),
    );
  }
  all.sort((a, b) => a - b);
  out.push(
    `${'all'.padEnd(17)} ${String(r.results.length).padStart(7)} ${String(all.length).padStart(9)} ` +
      `${String(r.results.filter((x) => x.outcome === 'survived').length).padStart(11)} ${String(r.results.filter((x) => x.outcome === 'stuck').length).padStart(6)} ` +
      [0.5, 0.9, 0.99, 1].map((p) => ms(percentile(all, p)).padStart(7)).join(' '),
  );
  out.push("(takeover: from the fault to the next child's start line in the ledger)");
  out.push('');
  out.push(`overlaps: ${r.overlaps.length} (${r.overlapMs.toFixed(1)} ms in all)`);
  for (const o of r.overlaps) {
    out.push(`  ${o.ms.toFixed(1)}ms ${o.a} (pid ${o.aPid}) / ${o.b} (pid ${o.bPid}) in round ${o.round ?? '?'} (${o.kind ?? '?'}): ${o.evidence ?? ''}`);
  }
  out.push(`client-go peer overlaps (it takes a Lease an admin wrote at once, with no hold; not counted): ${r.peerOverlaps.length}`);
  for (const o of r.peerOverlaps) out.push(`  ${o.ms.toFixed(1)}ms ${o.a} / ${o.b} (peer) in round ${o.round ?? '?'} (${o.kind ?? '?'}): ${o.evidence ?? ''}`);
  out.push(`processes left over: ${r.leftovers.length} at the end, ${r.strays.length} of older trees alive after a newer child started`);
  for (const l of [...r.leftovers, ...r.strays]) out.push(`  ${l}`);
  out.push(`leases left held: ${r.leaseHeld ? `1 (holder ${JSON.stringify(r.leaseHeld)})` : '0'}`);
  out.push(
    `candidate exits: ${
      Object.entries(r.exits)
        .map(([k, n]) => `${k}×${n}`)
        .join(' ') || 'none'
    }`,
  );
  for (const [status, list] of Object.entries(r.unexpectedExits)) {
    out.push(`  unexpected exit ${status}: ${list.length}×, e.g.`);
    for (const u of list.slice(0, 2)) out.push(`    ${u}`);
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  out.push(r.kept ? `work dir kept: ${r.dir}` : 'work dir removed');
  out.push(summaryLine(r));
  return out;
}
