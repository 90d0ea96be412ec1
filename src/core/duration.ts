/** Durations as Go and kubectl write them: `1500ms`, `15s`, `1m`, `1m30s`, `1h`. */

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds, or undefined if `text` is not a duration. A bare number is refused: its
 *  unit would be a guess. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0; // as Go's time.ParseDuration takes it
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(m[1]) * (unitMs[m[2] ?? ''] ?? NaN);
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** Milliseconds written the way the flags accept them. */
export function formatDuration(ms: number): string {
  if (ms % 60000 === 0 && ms >= 60000) return `${ms / 60000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
