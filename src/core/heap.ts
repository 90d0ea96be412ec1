/**
 * The heap once start-up is over. Start-up (the CLI parser, the kubeconfig, every module's
 * top-level code) grows V8's young generation to about 4 MiB and leaves garbage behind; a
 * process as quiet as leader-run then allocates too little for V8 ever to run the full
 * collection that would shrink it again, so it keeps that memory for as long as it runs.
 * One full collection, a few seconds in, gives it back.
 *
 * V8 offers no call for this: `--expose-gc` is switched on only for as long as it takes to
 * fetch `gc` from a new context, then off again. (A V8 flag that stays changed makes Node
 * compile what it loads afterwards from source: given on the command line, ~25 ms of start-up.)
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** By then a run has started up (it campaigns, leads or follows), and its watchdog with it. */
const STARTUP_MS = 5000;

/** One full garbage collection once start-up is over; it never keeps the process alive. */
export function collectStartupGarbage(afterMs = STARTUP_MS): void {
  setTimeout(() => {
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as (options: object) => void;
      setFlagsFromString('--no-expose-gc');
      // "last-resort": everything that can go, the young generation shrunk at once, whatever
      // V8 makes of the allocation rate (~20 ms, once).
      gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    } catch {
      // memory, not correctness: a Node without it keeps its heap as it was
    }
  }, afterMs).unref();
}
