/**
 * One run of leader-run: campaign, run the child while leading, stop it, release, exit.
 *
 * Order is the whole point: the child tree is confirmed dead FIRST, the Lease is released
 * SECOND, and only then do we exit. Every path ends in `finish`, exactly once, with the
 * exit status of DESIGN §4.
 */
import { constants } from 'node:os';
import { Elector, systemClock, type LossReason, type Term } from './election/elector.ts';
import { fmt, leaderDeadlines, watchdogGuard } from './election/timing.ts';
import { Child, type ChildExit, type Gone } from './child/child.ts';
import { resolveCommand } from './child/resolve.ts';
import type { Config } from './cli/options.ts';
import { KubeClient } from './kube/client.ts';
import { loadTarget } from './kube/config.ts';
import { ApiError, ExitStatus } from './kube/errors.ts';
import { LeaderRouting } from './kube/routing.ts';
import { KubeLeaseLock } from './lease/lock.ts';
import type { Logger } from './observe/log.ts';
import { RunState } from './observe/state.ts';

const stopSignals = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
const forwardedSignals = ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;
const signalNumber = (s: string | null): number => constants.signals[s as NodeJS.Signals] ?? 0;

export async function runLeader(cfg: Config, baseLog: Logger, version: string): Promise<number> {
  // Everything that can be wrong locally is checked before any request or process.
  const cmd = commandOf(cfg);
  if (!cmd.ok) {
    baseLog.error(cmd.message, { event: 'command-invalid' });
    return cmd.status;
  }
  const { file, args } = cmd;
  const target = loadTarget(cfg);
  const namespace = cfg.lockNamespace ?? target.namespace;
  const leaseName = `${namespace}/${cfg.lockName}`;
  const log = baseLog.with({ lease: leaseName, identity: cfg.identity });
  const client = await KubeClient.create(target.kc, `leader-run/${version}`);
  const lock = new KubeLeaseLock(client, namespace, cfg.lockName);
  const obs = new RunState({ lease: leaseName, identity: cfg.identity, renewDeadlineMs: cfg.timing.renewDeadlineMs, now: systemClock.now });
  // Loaded only when asked for: prom-client is not free to import.
  const http = cfg.http && (await (await import('./observe/http.ts')).startHttp(cfg.http, obs, cfg.lockName, log));
  const routing =
    cfg.routing &&
    new LeaderRouting(client, { ...cfg.routing, namespace: cfg.routing.podNamespace ?? namespace }, { deadlineMs: cfg.timing.renewDeadlineMs / 2, retryMs: cfg.timing.retryPeriodMs });
  const unlabelled = routing && (await routing.labelPod(log, cfg.startupTimeoutMs));
  if (unlabelled) {
    http?.close();
    client.close();
    return unlabelled;
  }
  const child = await Child.prepare(watchdogGuard(cfg.timing));
  log.info(`campaigning for Lease ${leaseName} on ${client.server.origin}`, {
    event: 'campaigning',
    timing: `D=${fmt(cfg.timing.leaseDurationMs)} R=${fmt(cfg.timing.renewDeadlineMs)} P=${fmt(cfg.timing.retryPeriodMs)} G=${fmt(cfg.timing.fenceGraceMs)}`,
  });

  let finish!: (status: number) => void;
  const finished = new Promise<number>((r) => (finish = r));
  let ending = false; // one stop sequence at a time
  let lost = false; // leadership was lost before the term ended: exit 75 whatever the child did
  let failed = false; // the watchdog failed: exit 70 (unless lost) — we killed the tree ourselves
  let childStarted = false;
  let stopSignal: NodeJS.Signals | null = null;
  const startedAt = Date.now();
  let lastError = '';
  let deniedSince: number | null = null; // monotonic start of a run of 401/403 while the server starts
  let checkingDenial = false;

  const elector = new Elector({ identity: cfg.identity, timing: cfg.timing }, lock, systemClock, {
    newLeader: (holder) => log.info(`new leader elected: ${holder}`, { event: 'new-leader', holder }),
    startedLeading: (term, anchor) => {
      obs.startedLeading(anchor);
      log.info(`started leading (fencing token ${term.fencingToken})`, { event: 'started-leading', token: term.fencingToken });
      if (ending) return; // a stop signal came while our acquire was in flight: release, don't start
      void startChild(term, anchor);
    },
    renewed: (anchor, latencyMs) => {
      child.anchor(anchor);
      obs.renewed(anchor, latencyMs);
      log.debug(`renewed in ${Math.round(latencyMs)}ms`, { event: 'renewed' });
    },
    stoppedLeading: (reason, detail) => void onLost(reason, detail),
    apiError: (e) => onApiError(e),
    watchFailed: (e) =>
      e.kind === 'forbidden'
        ? log.warn(`${e.message}; polling the Lease every retry period instead (grant watch on leases to react at once)`, { event: 'watch-forbidden' })
        : log.debug(`${e.message}; polling until the next read restarts the watch`, { event: 'watch-failed' }),
  });
  obs.attach({ observed: () => elector.observed, stopping: () => ending });

  async function startChild(term: Term, anchor: Parameters<Child['anchor']>[0]): Promise<void> {
    if (term.holdMs > 0) {
      // We hold the Lease (renewing it) but the work waits: see Term.holdMs.
      log.info(`the Lease is new, or was freed by no release: holding it ${fmt(term.holdMs)} before starting the child, in case a leader of the Lease it replaced has not noticed yet`, {
        event: 'new-lease-hold',
        holdMs: term.holdMs,
      });
      await new Promise((r) => setTimeout(r, Math.max(0, anchor.mono + term.holdMs - systemClock.now().mono)));
      if (ending) return;
      anchor = elector.anchor ?? anchor; // renewed meanwhile: the watchdog gets the newest anchor
    }
    if (routing) {
      // Traffic first, then the work: the child starts only once the Service selects this Pod.
      const failed = await routing.routeHere(log, () => elector.leading && !ending);
      if (ending) return;
      if (failed) {
        ending = true;
        return endTerm(failed);
      }
      anchor = elector.anchor ?? anchor; // renewed meanwhile: the watchdog gets the newest anchor
    }
    // The time left, not a state flag: a process frozen through the hold wakes up with the
    // hold's timer due before the guard's; the elector then ends the term on its next tick.
    if (elector.validForMs() <= 0) return;
    const env = {
      LEADER_RUN_IDENTITY: cfg.identity,
      LEADER_RUN_LEASE: leaseName,
      LEADER_RUN_LEASE_UID: term.uid,
      LEADER_RUN_FENCING_TOKEN: String(term.fencingToken),
    };
    childStarted = true;
    const res = await child.spawn(file, args, env, anchor, leaderDeadlines(cfg.timing));
    if (!res.ok) {
      if (ending) return; // a stop or a failure under way ends the term
      ending = true;
      if (res.status === ExitStatus.tempfail) {
        // The watchdog refused: by its clocks, the lease had expired.
        lost = true;
        log.warn(`not starting the child: ${res.message}`, { event: 'stopped-leading', reason: 'renew-deadline' });
      } else log.error(res.message, { event: 'child-failed' });
      await endTerm(res.status);
      return;
    }
    log.info(`child started: ${cfg.command.join(' ')}`, { event: 'child-started', pid: res.pid });
    const exit = await child.exited;
    obs.childExited(statusOf(exit));
    if (ending) return;
    log.info(`child exited by itself (${describeExit(exit)})`, { event: 'child-exited', ...exit });
    ending = true;
    await endTerm(statusOf(exit), await stopTree('SIGTERM'));
  }

  /** Voluntary: keep renewing while the tree stops (renewals keep feeding the watchdog). */
  async function stopTree(signal: NodeJS.Signals): Promise<Gone> {
    const t0 = Date.now();
    const gone = await child.stop(signal, cfg.shutdownGraceMs);
    if (gone.unkillable.length === 0) log.info(`child tree gone after ${Date.now() - t0}ms`, { event: 'child-gone' });
    return gone;
  }

  /** The one way a term ends once the tree is confirmed gone: release, then exit. A tree
   *  that could not be confirmed gone is never released over. */
  async function endTerm(status: number, gone: Gone = { unkillable: [] }): Promise<void> {
    if (gone.unkillable.length > 0) {
      log.error(
        `processes ${gone.unkillable.join(', ')} of the child's tree refuse SIGKILL (EPERM: they became another user through a setuid program); ` +
          `not releasing the Lease: it expires on its own. Run leader-run as that user, or as root`,
        { event: 'unkillable', pids: gone.unkillable },
      );
      elector.abandon();
      obs.notLeading();
      return finish(ExitStatus.software);
    }
    const released = await elector.release();
    obs.notLeading();
    if (released) log.info('released the Lease', { event: 'released' });
    finish(lost ? ExitStatus.tempfail : failed ? ExitStatus.software : status);
  }

  async function onLost(reason: LossReason, detail: string): Promise<void> {
    log.warn(`lost leadership: ${detail}; stopping the child`, { event: 'stopped-leading', reason });
    lost = true;
    obs.notLeading();
    if (ending) {
      // A voluntary stop is under way; it now has only the fence grace left.
      if (childStarted) child.fence();
      return;
    }
    ending = true;
    let gone: Gone | undefined;
    if (childStarted) {
      const t0 = Date.now();
      gone = await child.fence();
      obs.fenced(Date.now() - t0);
      if (gone.unkillable.length === 0) log.info(`child tree fenced in ${Date.now() - t0}ms`, { event: 'child-fenced' });
    }
    await endTerm(ExitStatus.tempfail, gone);
  }

  /** The watchdog died or stopped answering: the Child has killed, or is killing, the tree
   *  itself. End the run as an internal error. */
  function onWatchdogFailed(why: string): void {
    failed = true;
    log.error(`the watchdog process failed: ${why}; stopping`, { event: 'watchdog-failed' });
    if (ending) return; // the stop under way waits for the tree, which is being killed
    if (!childStarted && !elector.leading) return void stopCampaigningWith(ExitStatus.software);
    ending = true;
    void child.gone.then((gone) => endTerm(ExitStatus.software, gone));
  }

  function onApiError(e: ApiError): void {
    if (elector.leading) {
      obs.renewFailed();
      log.warn(`renewing failed: ${e.message}`, { event: 'renew-failed' });
      return;
    }
    if (ending) return;
    if ((e.kind === 'unauthorized' && e.status === 401) || e.kind === 'forbidden') {
      // An apiserver that is (re)starting denies requests until its authorizer is ready:
      // ask it (/readyz) before treating a denial as final, for up to the start-up window.
      if (!checkingDenial) {
        checkingDenial = true;
        void client.starting(AbortSignal.timeout(cfg.timing.retryPeriodMs)).then((starting) => {
          checkingDenial = false;
          if (ending) return;
          const now = systemClock.now().mono;
          if (deniedSince === null || elector.lastAnswerAt > deniedSince) deniedSince = now;
          if (starting && now - deniedSince < cfg.startupTimeoutMs) {
            log.warn(`${e.message}; the API server is still starting: retrying`, { event: 'api-error' });
            return;
          }
          judge(e);
        });
      }
      return;
    }
    judge(e);
  }

  /** What a failure before leading means: some end the run, each with its status; the rest are retried. */
  function judge(e: ApiError): void {
    if (e.kind === 'unauthorized') {
      // 401 is about who we are, not what we may do: RBAC advice would mislead. Without a
      // status, no request was sent: getting the credentials (e.g. an exec plugin) failed.
      const advice = e.status === 401 ? `the API server did not accept the credentials from ${target.source}` : `check the user's credentials in ${target.source}`;
      log.error(`${e.message}; ${advice}: renew the token or certificate, or pick another user or context`, { event: 'unauthorized' });
      return void stopCampaigningWith(ExitStatus.noperm);
    }
    if (e.kind === 'forbidden') {
      // The request's name ("get Lease ns/x") says which verb was refused.
      const verb = /^(get|create|update) Lease /.exec(e.message)?.[1];
      log.error(
        `${e.message}; ${verb ? `missing permission: ${verb} on leases (coordination.k8s.io) in namespace ${namespace}; ` : ''}` +
          `grant get, create and update on leases there — see examples/rbac.yaml`,
        { event: 'forbidden' },
      );
      return void stopCampaigningWith(ExitStatus.noperm);
    }
    if (e.kind === 'tls') {
      log.error(e.message, { event: 'tls' });
      return void stopCampaigningWith(ExitStatus.config);
    }
    if (e.kind === 'not-found' && /namespaces? .*not found/i.test(e.message)) {
      const from = cfg.lockNamespace === undefined ? ` (the kubeconfig context's namespace in ${target.source})` : ' (--lock-namespace)';
      log.error(`namespace ${namespace}${from} does not exist; create it (kubectl create namespace ${namespace}) or pass --lock-namespace with an existing one`, {
        event: 'namespace-missing',
      });
      return void stopCampaigningWith(ExitStatus.config);
    }
    if (!elector.reachedServer && Date.now() - startedAt >= cfg.startupTimeoutMs) {
      log.error(`API server unreachable for ${fmt(cfg.startupTimeoutMs)} (--startup-timeout): ${e.message}`, { event: 'unreachable' });
      return void stopCampaigningWith(ExitStatus.unavailable);
    }
    lastError = e.message;
    log.warn(e.message, { event: 'api-error' });
  }

  /** Leave before leading. If an acquire in flight won meanwhile, give the Lease back. */
  async function stopCampaigningWith(status: number): Promise<void> {
    if (ending) return;
    ending = true;
    if (await elector.stopCampaigning()) log.info('released the Lease (a write of ours whose answer was lost had landed)', { event: 'released' });
    if (elector.leading && childStarted) return endTerm(status, await stopTree(stopSignal ?? 'SIGTERM'));
    if (elector.leading) return endTerm(status);
    finish(status);
  }

  function onStopSignal(signal: NodeJS.Signals): void {
    if (ending) {
      // Asked again while stopping: pass it on, the child may want it.
      if (childStarted) child.forward(signal);
      return;
    }
    log.info(`received ${signal}: stopping`, { event: 'signal', signal });
    stopSignal = signal;
    if (!childStarted) return void stopCampaigningWith(128 + signalNumber(signal));
    ending = true;
    void (async () => {
      const gone = await stopTree(signal);
      await endTerm(statusOf(await child.exited), gone);
    })();
  }

  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const s of stopSignals) handlers.set(s, () => onStopSignal(s));
  for (const s of forwardedSignals) handlers.set(s, () => (childStarted ? child.forward(s) : undefined));
  for (const [s, h] of handlers) process.on(s, h);

  child.onFencing = (why) => {
    if (why !== 'deadline') return;
    // Its clocks say the lease is lost, whatever ours say: the term ends as a loss.
    lost = true;
    log.warn('the watchdog reached the lease deadline and is stopping the child', { event: 'watchdog-fence' });
  };
  child.onFailed = onWatchdogFailed;

  let waitTimer: NodeJS.Timeout | undefined;
  if (cfg.waitTimeoutMs !== undefined) {
    waitTimer = setTimeout(() => {
      if (childStarted || elector.leading || ending) return;
      log.warn(`not leading after ${fmt(cfg.waitTimeoutMs ?? 0)} (--wait-timeout): giving up`, { event: 'wait-timeout' });
      void stopCampaigningWith(cfg.waitTimeoutExitCode);
    }, cfg.waitTimeoutMs);
  }
  const startupTimer = setTimeout(() => {
    if (!elector.reachedServer && !ending) {
      log.error(`API server unreachable for ${fmt(cfg.startupTimeoutMs)} (--startup-timeout) at ${client.server.origin}${lastError ? `: ${lastError}` : ''}`, {
        event: 'unreachable',
      });
      void stopCampaigningWith(ExitStatus.unavailable);
    }
  }, cfg.startupTimeoutMs);

  void elector.run();
  const status = await finished;
  clearTimeout(waitTimer);
  clearTimeout(startupTimer);
  for (const [s, h] of handlers) process.off(s, h);
  child.close();
  client.close();
  http?.close();
  log.info(`exiting with status ${status}`, { event: 'exit', status });
  return status;
}

function commandOf(cfg: Config): { ok: true; file: string; args: string[] } | { ok: false; status: number; message: string } {
  if (cfg.shell) return { ok: true, file: '/bin/sh', args: ['-c', cfg.command.join(' ')] };
  const [file = '', ...args] = cfg.command;
  const r = resolveCommand(file);
  return r.ok ? { ok: true, file: r.file, args } : r;
}

/** The child's status as a shell reports it: its code, or 128 + the signal that killed it. */
function statusOf(e: ChildExit): number {
  if (e.code !== null) return e.code;
  return 128 + signalNumber(e.signal);
}

function describeExit(e: ChildExit): string {
  return e.code !== null ? `status ${e.code}` : `signal ${e.signal}`;
}
