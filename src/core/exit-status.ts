/** leader-run's exit statuses (sysexits.h, and the shell's for a command), and how a child's
 *  end becomes one. The README's table is the contract. */
import { constants } from 'node:os';

export const ExitStatus = {
  ok: 0,
  usage: 64, // EX_USAGE: bad flags or arguments
  unavailable: 69, // EX_UNAVAILABLE: API unreachable past the start-up window
  software: 70, // EX_SOFTWARE: internal error; the watchdog failed
  tempfail: 75, // EX_TEMPFAIL: leadership lost, or --wait-timeout passed
  noperm: 77, // EX_NOPERM: 401/403 on the Lease
  config: 78, // EX_CONFIG: no usable kubeconfig or in-cluster config
  notExecutable: 126,
  notFound: 127,
} as const;

export type ExitCode = (typeof ExitStatus)[keyof typeof ExitStatus];

export function signalNumber(signal: string | null): number {
  return constants.signals[signal as NodeJS.Signals] ?? 0;
}

/** How a process ended, as the watchdog reports it. */
export interface ProcessEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child's status as a shell reports it: its code, or 128 + the signal that killed it. */
export function statusOfChild(e: ProcessEnd): number {
  return e.code !== null ? e.code : 128 + signalNumber(e.signal);
}

/** A command that cannot be executed, as a shell says it: 127 not found, 126 anything else. */
export function execFailureStatus(errno: string | undefined): 126 | 127 {
  return errno === 'ENOENT' ? ExitStatus.notFound : ExitStatus.notExecutable;
}
