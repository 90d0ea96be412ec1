/**
 * One run of leader-run, wired: the elector, the watchdog and leader routing turn their
 * callbacks into events for the supervisor, which decides; this file carries out its effects,
 * on one clock. The order — the child's tree confirmed gone, then the Lease released, then the
 * exit — is the supervisor's (supervisor/supervisor.ts).
 */
import { resolveCommand } from './child/resolve.ts';
import { WatchdogHandle } from './child/watchdog-handle.ts';
import type { RunConfig } from './config.ts';
import { formatDuration } from './core/duration.ts';
import { ExitStatus, statusOfChild } from './core/exit-status.ts';
import type { LogEvent, Logger } from './core/log.ts';
import { systemClock } from './core/time.ts';
import { Campaign } from './election/campaign.ts';
import { deadlines } from './election/timing.ts';
import type { ApiError } from './kube/errors.ts';
import type { connectLease } from './lease/connect.ts';
import { type Candidacy, PING_WINDOW_MS, startCandidacy } from './lease/lease-candidate.ts';
import { type LeaseSnapshot, lastSuccessAnnotations, lastSuccessOf } from './lease/record.ts';
import { startHttp } from './ops/http.ts';
import { LeaseEvents } from './ops/lease-events.ts';
import { LeaderRouting, POD_LABEL, type RetryPolicy } from './ops/routing.ts';
import { type LeaderView, StatusBoard } from './ops/status-board.ts';
import type { Effect, RunEvent } from './supervisor/events.ts';
import { type FailureContext, type Operation, type Verdict, verdictFor } from './supervisor/failures.ts';
import { type StartupDecision, StartupWindow } from './supervisor/startup.ts';
import { Supervisor } from './supervisor/supervisor.ts';

const stopSignals = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
const forwardedSignals = ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;

/** How long the watchdog may take to start (a loaded host's Node start-up), at least. */
const WATCHDOG_START_MS = 5000;
/** An Event is worth at most this long a wait (and at most one retry period). */
const EVENT_DEADLINE_MS = 1000;

export async function runLeader(cfg: RunConfig, baseLog: Logger, version: string): Promise<number> {
  // Everything that can be wrong locally is checked before any request or process.
  const cmd = commandOf(cfg);
  if (!cmd.ok) {
    baseLog.error(cmd.message, { event: 'command-invalid' });
    return cmd.status;
  }
  const clock = systemClock;
  const d = deadlines(cfg.timing);
  // Forked first, so its start-up overlaps loading the Kubernetes client, the kubeconfig and
  // the first requests; only the spawn waits for it.
  const watchdog = WatchdogHandle.start(
    { pingMs: d.watchdogPingMs, silenceMs: d.watchdogSilenceMs, confirmBudgetMs: d.confirmBudgetMs },
    Math.max(d.watchdogSilenceMs, WATCHDOG_START_MS),
    { inJob: cfg.terminal },
  );
  const dropWatchdog = (): void => watchdog.disconnect();
  let connection: Awaited<ReturnType<typeof connectLease>>;
  try {
    // Imported only now, so the watchdog's fork above does not wait for the Kubernetes client to load.
    connection = await (await import('./lease/connect.ts')).connectLease(cfg.lease, cfg.kube, `leader-run/${version}`, cfg.slots);
  } catch (e) {
    dropWatchdog();
    throw e;
  }
  const { target, client, locks, namespace, lease } = connection;
  // With --slots, the records of a term also name its slot's Lease.
  let log = baseLog.with({ lease, identity: cfg.identity });
  const board = new StatusBoard({ lease, identity: cfg.identity, renewDeadlineMs: cfg.timing.renewDeadlineMs, now: clock.now });
  const stall = { thresholdMs: d.stallThresholdMs, rememberMs: d.stallRememberMs };
  // Loaded only when asked for: prom-client is not free to import.
  // POST /step-down dispatches into the supervisor, which is made below: the server answers
  // only once the run is wired.
  let stepDownNow: ((to: string | undefined) => boolean) | undefined;
  const http = cfg.http && (await startHttp(cfg.http, board, cfg.lease.name, log, stall, cfg.httpStepDown ? (to) => stepDownNow?.(to) ?? false : undefined));
  const routingNamespace = cfg.routing?.podNamespace ?? namespace;
  const ctx: FailureContext = {
    namespace,
    source: target.source,
    namespaceFrom: cfg.lease.namespace === undefined ? ` (the kubeconfig context's namespace in ${target.source})` : ' (--lock-namespace)',
    namespaceOption: '--lock-namespace',
    ...(cfg.routing && { routing: { pod: cfg.routing.pod, service: cfg.routing.service, podFrom: cfg.routing.podFrom } }),
  };
  const policy = (op: Operation, until: () => boolean): RetryPolicy => ({
    retry: (e) => verdictFor(e, op, op === 'lease' ? ctx : { ...ctx, namespace: routingNamespace }).retry,
    until,
    onRetry: (e) => log.warn(e.message, { event: 'api-error' }),
    pauseMs: cfg.timing.retryPeriodMs,
  });
  const routing =
    cfg.routing && new LeaderRouting(client, { namespace: routingNamespace, pod: cfg.routing.pod, service: cfg.routing.service }, d.routingRequestMs);
  const cleanup = (): void => {
    http?.close();
    client.close();
  };
  /** A step before campaigning failed: nothing was written to the Lease, no child started. */
  const endBeforeCampaign = (f: { status: number; event: LogEvent; message: string }): number => {
    log.error(f.message, { event: f.event });
    cleanup();
    dropWatchdog();
    return f.status;
  };
  if (routing) {
    const until = clock.now().mono + cfg.startupTimeoutMs;
    const o = await routing.labelPod(policy('pod-label', () => clock.now().mono < until));
    if (!o.ok) {
      const v = verdictFor(o.error, 'pod-label', { ...ctx, namespace: routingNamespace });
      return endBeforeCampaign(
        v.retry
          ? { status: ExitStatus.unavailable, event: 'unreachable', message: `could not label Pod ${routing.pod} within --startup-timeout: ${o.error.message}` }
          : v,
      );
    }
    log.info(`${o.changed ? 'labelled' : 'already labelled'} Pod ${routing.pod} ${POD_LABEL}=${cfg.routing!.pod}`, { event: 'pod-labelled' });
  }
  const t = cfg.timing;
  log.info(`campaigning for ${cfg.slots ? `one of the ${cfg.slots} Leases ${lease} (--slots)` : `Lease ${lease}`} on ${client.server.origin}`, {
    event: 'campaigning',
    timing: `D=${formatDuration(t.leaseDurationMs)} R=${formatDuration(t.renewDeadlineMs)} P=${formatDuration(t.retryPeriodMs)} G=${formatDuration(t.fenceGraceMs)}`,
    leaseDurationMs: t.leaseDurationMs,
    renewDeadlineMs: t.renewDeadlineMs,
    retryPeriodMs: t.retryPeriodMs,
    fenceGraceMs: t.fenceGraceMs,
    ...(cfg.timingDerived && { derived: cfg.timingDerived }),
  });

  // --coordinated: a LeaseCandidate beside the Lease, answering the controller's pings.
  let candidacy: Candidacy | undefined;
  if (cfg.coordinated) {
    const r = await startCandidacy(
      client,
      { namespace, name: cfg.identity, leaseName: cfg.lease.name, ...cfg.coordinated },
      {
        everyMs: Math.min(t.retryPeriodMs, PING_WINDOW_MS / 2),
        deadlineMs: cfg.startupTimeoutMs,
        retryMs: t.retryPeriodMs,
        verdict: (e) => verdictFor(e, 'lease-candidate', ctx),
        onTendError: (e) => log.warn(`renewing the LeaseCandidate failed: ${e.message}`, { event: 'api-error' }),
      },
    );
    if (!r.ok) return endBeforeCampaign(r);
    candidacy = r.candidacy;
    log.info(
      `registered LeaseCandidate ${namespace}/${cfg.identity} (binary ${r.spec.binaryVersion}, emulation ${r.spec.emulationVersion}): leading when the API server names it`,
      {
        event: 'candidate-registered',
        binaryVersion: r.spec.binaryVersion,
        emulationVersion: r.spec.emulationVersion,
      },
    );
  }

  const supervisor = new Supervisor({
    renewDeadlineMs: t.renewDeadlineMs,
    shutdownGraceMs: cfg.shutdownGraceMs,
    routing: !!routing,
    waitTimeoutMs: cfg.waitTimeoutMs,
    waitTimeoutExitCode: cfg.waitTimeoutExitCode,
    commandText: cfg.command.join(' '),
    stopSignal: cfg.stopSignal,
    minHoldMs: cfg.minHoldMs,
    oncePerMs: cfg.oncePerMs,
  });
  const startup = new StartupWindow(clock, cfg.startupTimeoutMs, '--startup-timeout', client.server.origin);
  let finish!: (status: number) => void;
  let exitCause = '';
  const waitingFor = new Map<number, string>();
  const finished = new Promise<number>((r) => (finish = r));
  const timers: Array<() => void> = [];

  let events: LeaseEvents | undefined;
  let termUid: string | undefined;
  let termLease = lease;
  let termSlot: number | undefined;
  const elector = new Campaign({ identity: cfg.identity, timing: t, coordinated: !!cfg.coordinated }, locks, clock, {
    newLeader: (holder, slot) =>
      cfg.slots
        ? log.info(`new leader of ${locks[slot]!.description} elected: ${holder}`, { event: 'new-leader', holder, slot })
        : log.info(`new leader elected: ${holder}`, { event: 'new-leader', holder }),
    startedLeading: (term, anchor, won, slot) => {
      termUid = term.uid;
      termLease = locks[slot]!.description;
      if (cfg.slots) {
        termSlot = slot;
        log = log.with({ lease: termLease, slot });
      }
      events = cfg.events
        ? new LeaseEvents(client, { namespace, lease: locks[slot]!.name, identity: cfg.identity }, log, Math.min(t.retryPeriodMs, EVENT_DEADLINE_MS))
        : undefined;
      void events?.record('became leader', termUid);
      board.startedLeading(anchor);
      log.info(`started leading (fencing token ${term.fencingToken})`, { event: 'started-leading', token: term.fencingToken });
      const last = cfg.oncePerMs ? lastSuccessOf(won) : null;
      dispatch({ type: 'leading', term, anchor, lastSuccess: last ? { startedWall: Date.parse(last.started), holder: last.holder } : undefined });
    },
    renewed: (anchor, latencyMs) => {
      watchdog.renewAnchor(anchor);
      board.renewed(anchor, latencyMs);
      log.debug(`renewed in ${Math.round(latencyMs)}ms`, { event: 'renewed', latencyMs: Math.round(latencyMs) });
      dispatch({ type: 'renewed', anchor });
    },
    stepDownRequested: (to) => dispatch({ type: 'step-down', to }),
    renewFailed: (e) => {
      board.renewFailed();
      log.warn(`renewing failed: ${e.message}`, { event: 'renew-failed' });
    },
    stoppedLeading: (reason, detail) => {
      void events?.record(`stopped leading (${reason})`, termUid);
      board.notLeading();
      dispatch({ type: 'lost', reason, detail });
    },
    campaignError: (e) => {
      if (supervisor.phase === 'campaigning') decideStartup(startup.failed(e, verdictFor(e, 'lease', ctx)), e);
    },
    answered: () => startup.answered(),
    declined: (holder, earliestMs, ours, slot, all) => {
      if (cfg.waitTimeoutMs === 0) return all && dispatch({ type: 'wait-timeout', holder });
      if (waitingFor.get(slot) === holder) return;
      waitingFor.set(slot, holder);
      const when = `the earliest takeover is in ${formatDuration(Math.round(earliestMs / 100) * 100)}, if it is not renewed meanwhile`;
      const which = cfg.slots ? `Lease ${locks[slot]!.description}` : 'the Lease';
      log.info(
        ours
          ? `${which} names our identity ${holder}, but this process did not write it (an earlier run, or another process with the same --id): waiting for it to expire; ${when}`
          : `waiting: ${which} is held by ${holder}; ${when}`,
        { event: 'waiting', holder, earliestTakeoverMs: earliestMs, ...(cfg.slots && { slot }) },
      );
    },
    watchFailed: (e) =>
      e.kind === 'forbidden'
        ? log.warn(`${e.message}; polling the Lease every retry period instead (grant watch on leases to react at once)`, { event: 'watch-forbidden' })
        : log.debug(`${e.message}; polling until the next read restarts the watch`, { event: 'watch-failed' }),
  });
  board.attach({ observed: () => leaderView(elector.observed), stopping: () => supervisor.stopping });
  watchdog.onStopping = (cause) => cause === 'deadline' && dispatch({ type: 'watchdog-deadline' });
  watchdog.onFailed = (why) => dispatch({ type: 'watchdog-failed', why });
  watchdog.onKilling = () => log.warn('the child did not stop in time: sending SIGKILL to its tree', { event: 'child-killed' });

  stepDownNow = (to) => {
    if (!supervisor.canStepDown) return false;
    dispatch({ type: 'step-down', to });
    return true;
  };

  function dispatch(e: RunEvent): void {
    for (const effect of supervisor.handle(e, clock.now())) apply(effect);
  }

  function apply(e: Effect): void {
    switch (e.type) {
      case 'log':
        return log.log(e.level, e.message, { event: e.event, ...e.fields });
      case 'start-hold':
        return void timers.push(clock.after(e.ms, () => dispatch({ type: 'hold-elapsed' })));
      case 'start-min-hold':
        return void timers.push(clock.after(e.ms, () => dispatch({ type: 'min-hold-elapsed' })));
      case 'route-here':
        return void routing!.routeHere(policy('service-route', () => supervisor.phase === 'routing')).then((o) => {
          if (o.ok)
            log.info(`Service ${routing!.service} ${o.changed ? 'now selects' : 'already selected'} ${POD_LABEL}=${cfg.routing!.pod}`, {
              event: 'service-routed',
            });
          const v = o.ok ? undefined : verdictFor(o.error, 'service-route', { ...ctx, namespace: routingNamespace });
          dispatch(
            o.ok
              ? { type: 'routed' }
              : { type: 'routing-failed', fatal: v && !v.retry ? v : { status: ExitStatus.unavailable, event: 'api-error', message: o.error.message } },
          );
        });
      case 'spawn':
        return void spawn(e.term.uid, e.term.fencingToken, e.anchor);
      case 'stop-tree':
        return void watchdog.stop(e.signal, e.graceMs).then((g) => dispatch({ type: 'tree-gone', unkillable: g.unkillable }));
      case 'fence': {
        const t0 = clock.now().mono;
        return void watchdog.fence().then((g) => {
          board.fenced(clock.now().mono - t0);
          dispatch({ type: 'tree-gone', unkillable: g.unkillable });
        });
      }
      case 'forward':
        return watchdog.forward(e.signal, e.to === 'session' ? 'session' : cfg.forwardTo);
      case 'stop-campaigning':
        return void elector.stopCampaigning().then((releasedLost) => dispatch({ type: 'campaign-stopped', leading: elector.leading, releasedLost }));
      case 'release': {
        const record = e.record && lastSuccessAnnotations(e.record, cfg.identity);
        // Coordinated: withdraw first, or the controller names this candidate again at once
        // and the next one waits for that record to expire.
        return void (candidacy?.stop() ?? Promise.resolve())
          .then(() => elector.release({ annotations: record, handoverTo: e.handoverTo }))
          .then(async (released) => {
            board.notLeading();
            // The run ends next: this Event is the one worth its few milliseconds of waiting.
            if (released) await events?.record(e.handoverTo ? `stopped leading (handed to ${e.handoverTo})` : 'stopped leading (released)', termUid);
            dispatch({ type: 'released', released, recorded: released && !!record, handedTo: released ? e.handoverTo : undefined });
          });
      }
      case 'abandon':
        elector.abandon();
        return board.notLeading();
      case 'exit':
        exitCause = e.cause;
        return finish(e.status);
    }
  }

  async function spawn(uid: string, token: number, anchor: Parameters<WatchdogHandle['spawn']>[3]): Promise<void> {
    const env = {
      LEADER_RUN_IDENTITY: cfg.identity,
      LEADER_RUN_LEASE: termLease,
      LEADER_RUN_LEASE_UID: uid,
      LEADER_RUN_FENCING_TOKEN: String(token),
      ...(termSlot !== undefined && { LEADER_RUN_SLOT: String(termSlot) }),
    };
    const leaseDeadlines = {
      termAfterMs: d.termAfterMs,
      killAfterMs: d.killAfterMs,
      fenceGraceMs: d.fenceGraceMs,
      confirmBudgetMs: d.confirmBudgetMs,
      checkMs: d.watchdogCheckMs,
    };
    const res = await watchdog.spawn(cmd.ok ? cmd.file : '', cmd.ok ? cmd.args : [], env, anchor, leaseDeadlines, cfg.stopSignal ?? 'SIGTERM');
    if (!res.ok) return dispatch({ type: 'spawn-failed', status: res.status, message: res.message });
    dispatch({ type: 'spawned', pid: res.pid });
    // child-started is on stderr now: the child may run (and write). Stopping meanwhile, it
    // never does: the stop kills it at the gate.
    if (supervisor.phase === 'running') watchdog.go();
    const exit = await watchdog.exited;
    board.childExited(statusOfChild(exit));
    dispatch({ type: 'child-exited', exit });
  }

  /** A campaign error in the start-up window: retry, ask whether the server is starting, or end. */
  function decideStartup(decision: StartupDecision, e: ApiError, verdict: Verdict = verdictFor(e, 'lease', ctx)): void {
    if (decision.do === 'retry') return void (decision.message && log.warn(decision.message, { event: 'api-error' }));
    if (decision.do === 'end') return dispatch({ type: 'fatal', fatal: decision.fatal });
    void client.starting(AbortSignal.timeout(t.retryPeriodMs)).then((starting) => {
      if (supervisor.phase === 'campaigning') decideStartup(startup.starting(starting, e, verdict), e, verdict);
    });
  }

  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const s of stopSignals) handlers.set(s, () => dispatch({ type: 'stop-signal', signal: s }));
  for (const s of forwardedSignals) handlers.set(s, () => dispatch({ type: 'forward-signal', signal: s }));
  for (const [s, h] of handlers) process.on(s, h);
  if (cfg.waitTimeoutMs) timers.push(clock.after(cfg.waitTimeoutMs, () => dispatch({ type: 'wait-timeout' })));
  timers.push(
    clock.after(cfg.startupTimeoutMs, () => {
      const fatal = startup.expired();
      if (fatal) dispatch({ type: 'fatal', fatal });
    }),
  );

  void elector.run();
  const status = await finished;
  await candidacy?.stop();
  for (const cancel of timers) cancel();
  for (const [s, h] of handlers) process.off(s, h);
  watchdog.disconnect();
  cleanup();
  log.info(`exiting with status ${status}`, { event: 'exit', status, cause: exitCause });
  return status;
}

function commandOf(cfg: RunConfig): { ok: true; file: string; args: string[] } | { ok: false; status: number; message: string } {
  if (cfg.shell) return { ok: true, file: '/bin/sh', args: ['-c', cfg.command.join(' ')] };
  const [file = '', ...args] = cfg.command;
  const r = resolveCommand(file);
  return r.ok ? { ok: true, file: r.file, args } : r;
}

function leaderView(snap: LeaseSnapshot | null): LeaderView | null {
  if (!snap) return null;
  return { holder: snap.spec.holderIdentity || null, since: snap.spec.acquireTime ?? null, transitions: snap.spec.leaseTransitions ?? null };
}
