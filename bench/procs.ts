// What the benchmark reads from /proc (Linux): CPU time, resident memory, and the
// watchdog process that leader-run forks.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { rssKiB } from '../test/control-plane/cluster.ts';
import { watchdogOf } from '../test/support/procs.ts';

export { rssKiB, watchdogOf };

let tck: number | undefined;
/** Clock ticks per second of utime/stime (almost always 100). */
export function clockTicks(): number {
  tck ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return tck;
}

export interface CpuSample {
  /** utime + stime of the process itself (not its children), in ms, from /proc/PID/stat. */
  statMs: number;
  /** Time on CPU in ms from /proc/PID/task/TID/schedstat, all threads: nanosecond resolution, where ticks are 10 ms. */
  schedMs: number | undefined;
  /** Context switches of all its threads: how often it wakes up. */
  switches: number | undefined;
  /** performance.now() when read. */
  at: number;
}

export function cpu(pid: number): CpuSample | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name may hold spaces: fields start after the last ')'; utime is field 14.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const statMs = ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks();
    // schedstat is per thread: sum them (V8's and Go's helper threads do part of the work).
    let schedMs: number | undefined;
    try {
      schedMs = 0;
      for (const tid of fs.readdirSync(`/proc/${pid}/task`))
        schedMs += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]) / 1e6;
    } catch {
      schedMs = undefined;
    }
    // Every thread's: a Go program's main thread sleeps while its goroutines run elsewhere.
    let switches: number | undefined;
    try {
      switches = 0;
      for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
        const st = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1');
        switches += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
      }
    } catch {
      switches = undefined;
    }
    return { statMs, schedMs, switches, at: performance.now() };
  } catch {
    return undefined;
  }
}

/** CPU use between two samples as a percentage of one core. */
export function cpuPercent(a: CpuSample, b: CpuSample): { stat: number; sched: number | undefined; wakeupsPerS: number | undefined; windowS: number } {
  const wall = b.at - a.at;
  return {
    stat: (100 * (b.statMs - a.statMs)) / wall,
    sched: a.schedMs !== undefined && b.schedMs !== undefined ? (100 * (b.schedMs - a.schedMs)) / wall : undefined,
    wakeupsPerS: a.switches !== undefined && b.switches !== undefined ? ((b.switches - a.switches) * 1000) / wall : undefined,
    windowS: wall / 1000,
  };
}

/** leader-run's watchdog: its forked child running watchdog.js (or .ts from source). */
