/**
 * One demo candidate: a leader-run process (restartable, as its supervisor would) talking to
 * the apiserver through its own fault proxy, with its JSON log parsed into events and its
 * child's output passed on line by line.
 */
import readline from 'node:readline';
import { spawnGuarded } from '../../test/control-plane/cluster.ts';
import type { FaultProxy } from '../../test/control-plane/proxy.ts';
import { alive, BIN, type LogRecord } from '../../test/support/leader-run.ts';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() when it was seen. */
  at: number;
}

/** One leader-run process; times are performance.now() when the demo saw the event. */
export class Incarnation {
  readonly pid: number;
  readonly kill: (sig: NodeJS.Signals) => void;
  readonly records: LogRecord[] = [];
  leading = false;
  ledAt: number | undefined;
  childPid: number | undefined;
  childAt: number | undefined;
  lostAt: number | undefined;
  exit: Exit | undefined;
  /** Set by whoever makes it exit (a signal, a cut network); any other exit is a failure. */
  exitExpected = false;

  constructor(pid: number, kill: (sig: NodeJS.Signals) => void) {
    this.pid = pid;
    this.kill = kill;
  }

  /** Its child is running now (a zombie does not count). */
  childRunning(): boolean {
    return this.childPid !== undefined && alive(this.childPid);
  }
}

export interface CandidateHooks {
  /** A record of leader-run's JSON log, after the candidate's state was updated from it. */
  onRecord(c: Candidate, rec: LogRecord): void;
  /** A line the child wrote to stdout (through leader-run's inherited stdio). */
  onChildLine(c: Candidate, line: string): void;
  /** A stderr line that is not JSON (a crash, a Node warning). */
  onOtherLine(c: Candidate, line: string): void;
  onExit(c: Candidate, exit: Exit): void;
}

export class Candidate {
  readonly name: string;
  readonly proxy: FaultProxy;
  readonly #argv: string[];
  readonly #hooks: CandidateHooks;
  readonly runs: Incarnation[] = [];

  constructor(name: string, proxy: FaultProxy, argv: string[], hooks: CandidateHooks) {
    this.name = name;
    this.proxy = proxy;
    this.#argv = argv;
    this.#hooks = hooks;
  }

  get run(): Incarnation | undefined {
    return this.runs.at(-1);
  }

  get running(): boolean {
    return this.run !== undefined && this.run.exit === undefined;
  }

  start(): Incarnation {
    // Our own settings only: LEADER_RUN_* from the caller's shell would change the story.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LEADER_RUN_')));
    // Guarded: SIGKILLed if the demo dies, however it dies.
    const proc = spawnGuarded(process.execPath, [BIN, ...this.#argv], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const inc = new Incarnation(proc.pid!, (sig) => proc.kill(sig));
    this.runs.push(inc);

    readline.createInterface({ input: proc.stdout!, crlfDelay: Infinity }).on('line', (line) => this.#hooks.onChildLine(this, line));
    readline.createInterface({ input: proc.stderr!, crlfDelay: Infinity }).on('line', (line) => {
      let rec: LogRecord;
      try {
        rec = JSON.parse(line) as LogRecord;
      } catch {
        this.#hooks.onOtherLine(this, line);
        return;
      }
      inc.records.push(rec);
      const now = performance.now();
      switch (rec.event) {
        case 'started-leading':
          inc.leading = true;
          inc.ledAt = now;
          break;
        case 'child-started':
          inc.childPid = typeof rec['pid'] === 'number' ? rec['pid'] : undefined;
          inc.childAt = now;
          break;
        case 'stopped-leading':
          inc.leading = false;
          inc.lostAt = now;
          break;
        case 'released':
          inc.leading = false;
          break;
      }
      this.#hooks.onRecord(this, rec);
    });
    proc.on('exit', (code, signal) => {
      inc.leading = false;
      inc.exit = { code, signal, at: performance.now() };
      this.#hooks.onExit(this, inc.exit);
    });
    return inc;
  }
}
