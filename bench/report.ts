// The markdown table (and a few lines of breakdown) from the results object.
import type { Timing } from './candidates.ts';
import type { CrashSample, ExecSample, HandoffSample, ManyResult, MemorySample, SteadyMember, SteadyResult, StepDownSample } from './scenarios.ts';
import { ms, round, summarize } from './stats.ts';

type ByImpl<T> = { 'leader-run'?: T; 'client-go'?: T } | undefined;

const mib = (kib: number | undefined): string => (kib === undefined || Number.isNaN(kib) ? '–' : `${(kib / 1024).toFixed(1)} MiB`);
const pct = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '–' : `${x.toFixed(3)} %`);
const yes = (ok: boolean | undefined): string => (ok === undefined ? '–' : ok ? 'yes' : '**no**');
const num = (x: number): string => String(round(x, 1));

function p50p99(xs: number[] | undefined): { text: string; p50?: number; p99?: number } {
  const s = summarize(xs ?? []);
  if (!s) return { text: '–' };
  return { text: `${ms(s.p50)} / ${ms(s.p99)} (max ${ms(s.max)}, n=${s.n})`, p50: s.p50, p99: s.p99 };
}

export function report(results: Record<string, unknown>, timing: Timing): string[] {
  const rows: string[][] = [];
  const env = results.environment as Record<string, unknown>;
  const exec = results.exec as ByImpl<ExecSample[]>;
  const steady = results.steady as SteadyResult | undefined;
  const handoff = results.handoff as ByImpl<HandoffSample[]>;
  const crash = results.crash as ByImpl<CrashSample[]>;
  const many = results.many as ByImpl<ManyResult>;
  const memory = results.memory as ByImpl<MemorySample[]>;

  if (handoff) {
    const a = p50p99(handoff['leader-run']?.map((s) => s.ms));
    const b = p50p99(handoff['client-go']?.map((s) => s.ms));
    rows.push([
      'graceful handoff: SIGTERM → next one leading, p50 / p99',
      'p50 ≤ 25 ms, p99 ≤ 40 ms',
      a.text,
      b.text,
      yes(a.p50 === undefined ? undefined : a.p50 <= 25 && a.p99! <= 40),
    ]);
  }
  const stepDown = results.stepDown as ByImpl<StepDownSample[]>;
  if (stepDown) {
    const a = p50p99(stepDown['leader-run']?.map((s) => s.ms));
    const noticed = p50p99(stepDown['leader-run']?.map((s) => s.fromNoticeMs).filter((x): x is number => x !== undefined));
    rows.push([
      'step-down: `leader-run step-down` spawned → next child running, p50 / p99',
      'report',
      a.text,
      'none (nearest: the SIGTERM handoff above)',
      '–',
    ]);
    rows.push(['step-down: the leader noticed the request → next child running, p50 / p99', 'report', noticed.text, '–', '–']);
  }
  if (crash) {
    const a = p50p99(crash['leader-run']?.map((s) => s.fromRenewMs));
    const b = p50p99(crash['client-go']?.map((s) => s.fromRenewMs));
    const limit = timing.leaseDurationMs + 250;
    rows.push([
      'crash failover: last renewal → next one leading, p50 / p99',
      `p99 ≤ ${ms(limit)} (D + 250 ms)`,
      a.text,
      b.text,
      yes(a.p99 === undefined ? undefined : a.p99 <= limit),
    ]);
  }
  if (steady) {
    const of = (impl: string, role: string): SteadyMember[] => steady.members.filter((m) => m.impl === impl && m.role === role);
    const leaderCell = (impl: string): string =>
      of(impl, 'leader')
        .map((m) => `${num(m.perMinute.writes)} writes, ${num(m.perMinute.reads)} reads`)
        .join('; ') || '–';
    const followerCell = (impl: string): string =>
      of(impl, 'follower')
        .map(
          (m) =>
            `${num(m.perMinute.reads)} reads (get ${m.requests.get}, list ${m.requests.list}, watch ${m.requests.watch}), ${num(m.perMinute.writes)} writes`,
        )
        .join('; ') || '–';
    // One request of slack for where the window's edges fall in the renew cycle.
    const writeLimit = (steady.windowS / 60) * 30 + 1;
    const lrLeaders = of('leader-run', 'leader');
    const lrFollowers = of('leader-run', 'follower');
    rows.push([
      `API requests/min, leader (window ${Math.round(steady.windowS)} s)`,
      '≤ 30 writes, no reads',
      leaderCell('leader-run'),
      leaderCell('client-go'),
      yes(
        lrLeaders.length
          ? lrLeaders.every((m) => m.requests.update + m.requests.create <= writeLimit && m.perMinute.reads === 0 && m.requests.patch === 0)
          : undefined,
      ),
    ]);
    rows.push([
      'API requests/min, each follower',
      'no periodic reads (watch healthy)',
      followerCell('leader-run'),
      followerCell('client-go'),
      yes(lrFollowers.length ? lrFollowers.every((m) => m.requests.get + m.requests.list === 0 && m.requests.watch <= 1) : undefined),
    ]);
    const connCell = (impl: string): string =>
      steady.members
        .filter((m) => m.impl === impl)
        .map((m) => `${m.role[0]} ${num(m.connections.perHour)}`)
        .join(', ') || '–';
    rows.push([
      'new TLS connections per process per hour (l = leader, f = follower)',
      '1',
      connCell('leader-run'),
      connCell('client-go'),
      yes(
        steady.members.some((m) => m.impl === 'leader-run')
          ? steady.members.filter((m) => m.impl === 'leader-run').every((m) => m.connections.perHour <= 1)
          : undefined,
      ),
    ]);
  }
  if (exec) {
    const a = p50p99(exec['leader-run']?.map((s) => s.ms));
    const b = p50p99(exec['client-go']?.map((s) => s.ms));
    rows.push([
      'exec → child spawned (client-go: → OnStartedLeading), free Lease, p50 / p99',
      '≤ 80 ms (p50)',
      a.text,
      b.text,
      yes(a.p50 === undefined ? undefined : a.p50 <= 80),
    ]);
  }
  if (steady) {
    const leader = (impl: string): SteadyMember | undefined => steady.members.find((m) => m.impl === impl && m.role === 'leader');
    const lrL = leader('leader-run');
    const cgL = leader('client-go');
    rows.push([
      `CPU while leading, idle child: leader-run + its watchdog (% of one core over ${Math.round(steady.windowS)} s: /proc/PID/stat [all threads' schedstat, judged]; context switches/s, all threads)`,
      '≤ 0.1 % (sum)',
      lrL
        ? `leader-run ${pct(lrL.cpuPercent.main)} [${pct(lrL.cpuPercent.mainSched)}] + watchdog ${pct(lrL.cpuPercent.watchdog)} [${pct(lrL.cpuPercent.watchdogSched)}]; ` +
          `wakes ${num(lrL.wakeupsPerS.main ?? NaN)}/s + ${num(lrL.wakeupsPerS.watchdog ?? NaN)}/s`
        : '–',
      cgL ? `${pct(cgL.cpuPercent.main)} [${pct(cgL.cpuPercent.mainSched)}]; wakes ${num(cgL.wakeupsPerS.main ?? NaN)}/s` : '–',
      // Judged on schedstat where there is one: /proc/PID/stat counts whole 10 ms ticks.
      yes(lrL ? (lrL.cpuPercent.mainSched ?? lrL.cpuPercent.main) + (lrL.cpuPercent.watchdogSched ?? lrL.cpuPercent.watchdog ?? 0) <= 0.1 : undefined),
    ]);
  }
  if (memory) {
    const one = (impl: string, role: string): MemorySample | undefined => memory[impl as 'leader-run']?.find((m) => m.role === role);
    const cell = (m: MemorySample | undefined): string => {
      if (!m) return '–';
      const c = m.memory;
      const pss = c.pss.map((p) => `${p.comm} ${mib(p.pssKiB)}`).join(', ');
      return `**${mib(c.workingSetKiB)}** (usage ${mib(c.usageKiB)}, anon ${mib(c.anonKiB)}; PSS ${pss})`;
    };
    for (const [role, limit] of [
      ['leader', 24],
      ['follower', 20],
    ] as const) {
      const lr = one('leader-run', role);
      rows.push([
        `memory working set while ${role === 'leader' ? 'leading' : 'following'}: the candidate's whole tree in a cgroup of its own (usage − inactive file)`,
        `≤ ${limit} MiB`,
        cell(lr),
        cell(one('client-go', role)),
        yes(lr ? lr.memory.workingSetKiB / 1024 <= limit : undefined),
      ]);
    }
  }
  if (many) {
    const n = many['leader-run']?.candidates ?? many['client-go']?.candidates;
    const a = p50p99(many['leader-run']?.handoffs.map((s) => s.ms));
    const b = p50p99(many['client-go']?.handoffs.map((s) => s.ms));
    rows.push([`${n} candidates on one Lease: graceful handoff p50 / p99`, 'p99 (report)', a.text, b.text, '–']);
    const rate = (m: ManyResult | undefined): string =>
      m
        ? `${num(m.requestsPerMinute.total)} (${num(m.requestsPerMinute.writes)} writes, ${num(m.requestsPerMinute.reads)} reads); apiserver total ${num(m.apiserverRequestsPerMinute)}`
        : '–';
    rows.push([`${n} candidates: their API requests/min in steady state`, 'report', rate(many['leader-run']), rate(many['client-go']), '–']);
    const verbs = (m: ManyResult | undefined): string =>
      m
        ? Object.entries(m.requestsPerHandoffByVerb)
            .filter(([, v]) => v > 0)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')
        : '–';
    rows.push([`${n} candidates: their API requests per handoff, by verb`, 'report', verbs(many['leader-run']), verbs(many['client-go']), '–']);
    const mem = (m: ManyResult | undefined): string => (m ? `${m.rssTotalMiB.toFixed(0)} MiB total, up in ${m.startupS.toFixed(1)} s` : '–');
    rows.push([`${n} candidates: memory, start-up`, 'report', mem(many['leader-run']), mem(many['client-go']), '–']);
  }

  const out: string[] = [];
  out.push(
    `leader-run vs client-go — ${results.started}, Node ${env.node}, ${env.cpus} CPUs, load ${(env.loadavgStart as number[]).join(' ')} → ${((env.loadavgEnd as number[]) ?? []).join(' ')}, ` +
      `kube-apiserver ${env.kubernetes ?? '?'}, client-go ${env.clientGo ?? '?'}, D/R/P ${timing.leaseDuration}/${timing.renewDeadline}/${timing.retryPeriod}, leader-run ${env.commit} (dist/ built ${env.distBuilt ?? '?'}), ${results.durationS} s`,
  );
  out.push('');
  out.push('| figure | target for leader-run | leader-run | client-go | met |');
  out.push('|---|---|---|---|---|');
  for (const r of rows) out.push(`| ${r.join(' | ')} |`);

  const notes: string[] = [];
  const lrHand = handoff?.['leader-run'];
  if (lrHand?.length) {
    const med = (f: (s: HandoffSample) => number | undefined): string => ms(summarize(lrHand.map(f).filter((x): x is number => x !== undefined))?.p50);
    notes.push(
      `leader-run handoff, medians: SIGTERM → "signal" logged ${med((s) => s.signalLoggedMs)}, → "child-gone" ${med((s) => s.childGoneMs)}, → "released" ${med((s) => s.releasedMs)}; ` +
        `released → next started-leading ${med((s) => s.acquiredMs)}; started-leading → child running ${med((s) => s.spawnMs)} (log times, ms resolution); ` +
        `new TLS connections opened by the new leader during the handoff: ${lrHand.map((s) => s.newConnections ?? '?').join(' ')}`,
    );
  }
  const cgHand = handoff?.['client-go'];
  if (cgHand?.length) {
    const med = (f: (s: HandoffSample) => number | undefined): string => ms(summarize(cgHand.map(f).filter((x): x is number => x !== undefined))?.p50);
    notes.push(
      `client-go handoff, medians: SIGTERM → peer exited (released) ${med((s) => s.releasedMs)}, → next OnStartedLeading ${med((s) => s.acquiredMs)} (followers poll every P with jitter); ` +
        `new TLS connections by the new leader: ${cgHand.map((s) => s.newConnections ?? '?').join(' ')}`,
    );
  }
  const lrExec = exec?.['leader-run'];
  if (lrExec?.length) {
    const med = (f: (s: ExecSample) => number | undefined): string => ms(summarize(lrExec.map(f).filter((x): x is number => x !== undefined))?.p50);
    notes.push(
      `leader-run exec, medians from exec: campaigning logged ${med((s) => s.campaigningMs)}, started-leading ${med((s) => s.startedLeadingMs)}, child-started logged ${med((s) => s.childStartedLogMs)}`,
    );
  }
  if (crash) {
    for (const impl of ['leader-run', 'client-go'] as const) {
      const c = crash[impl];
      if (c?.length) notes.push(`${impl} crash failover, from SIGKILL: ${c.map((s) => ms(s.fromKillMs)).join(', ')}`);
    }
  }
  if (steady) {
    notes.push(
      `steady state: apiserver served ${num(steady.apiserverRequestsPerMinute)} requests/min in all (its own loopback traffic and the /metrics scrapes included); open Lease watches at the end ${steady.openLeaseWatches ?? '?'} (${steady.openLeaseWatchesBaseline ?? '?'} before any candidate: the apiserver's own)${steady.leaderChanged ? '; WARNING: a leader changed during the window' : ''}`,
    );
    const f = steady.members.filter((m) => m.role === 'follower');
    notes.push(
      'followers while following: ' +
        f
          .map(
            (m) =>
              `${m.id} RSS ${mib(m.rssMaxKiB.main)}${m.rssMaxKiB.watchdog !== undefined ? ` + ${mib(m.rssMaxKiB.watchdog)}` : ''}, CPU ${pct(m.cpuPercent.main)}${m.cpuPercent.watchdog !== undefined ? ` + ${pct(m.cpuPercent.watchdog)}` : ''}`,
          )
          .join('; '),
    );
  }
  const base = env.baseline as { idleRssKiB?: number; startExitMs?: number } | undefined;
  if (base)
    notes.push(
      `for scale, on this host a bare Node process idles at ${mib(base.idleRssKiB)} RSS, and \`node -e 0\` runs exec → exit in ${ms(base.startExitMs)} (median of 5)`,
    );
  if (env.clearedNodeExtraCaCerts !== undefined)
    notes.push(`NODE_EXTRA_CA_CERTS (${env.clearedNodeExtraCaCerts} on this host) was cleared for the candidates, as a Pod has none`);
  notes.push(
    env.compileCache
      ? "leader-run kept Node's compile cache (--compile-cache): every run after the first skipped compiling"
      : "leader-run ran without Node's compile cache (NODE_DISABLE_COMPILE_CACHE=1), as a Pod's first run does",
  );
  if (results.error) notes.push(`ERROR: ${results.error}`);
  if (results.interrupted) notes.push(`INTERRUPTED by ${results.interrupted}`);
  if (notes.length) out.push('', ...notes.map((n) => `- ${n}`));
  return out;
}
