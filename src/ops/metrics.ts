/**
 * Prometheus metrics, in a registry of our own (nothing registers globally, and no default
 * process metrics: a sidecar-sized process should stay light). The leader gauge carries
 * client-go's name, so existing dashboards and alerts on leader_election_master_status work.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StatusBoard } from './status-board.ts';

export interface Metrics {
  readonly contentType: string;
  text(): Promise<string>;
}

export function metricsFor(state: StatusBoard, lockName: string): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const master = new Gauge({
    name: 'leader_election_master_status',
    help: 'Whether this process leads (1) or not (0), as client-go reports it.',
    labelNames: ['name'],
    registers,
  });
  const transitions = new Counter({ name: 'leader_run_leader_transitions_total', help: 'Terms of leadership won by this process.', registers });
  const renew = new Histogram({
    name: 'leader_run_renew_duration_seconds',
    help: 'Time taken by successful renewals of the Lease.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const renewFailures = new Counter({ name: 'leader_run_renew_failures_total', help: 'Renewals that failed while leading.', registers });
  const fence = new Histogram({
    name: 'leader_run_fence_duration_seconds',
    help: "Time from losing leadership to the child's process tree confirmed dead.",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers,
  });
  const exits = new Counter({
    name: 'leader_run_child_exits_total',
    help: 'Exits of the child, by its status (the code, or 128 + the signal that ended it).',
    labelNames: ['status'],
    registers,
  });

  // Present from the start, so "not leading" is a 0 rather than a missing series.
  master.set({ name: lockName }, state.leading ? 1 : 0);
  state.subscribe({
    leading: (on) => master.set({ name: lockName }, on ? 1 : 0),
    termWon: () => transitions.inc(),
    renewed: (ms) => renew.observe(ms / 1000),
    renewFailed: () => renewFailures.inc(),
    fenced: (ms) => fence.observe(ms / 1000),
    childExited: (status) => exits.inc({ status: String(status) }),
  });
  return { contentType: registry.contentType, text: () => registry.metrics() };
}
