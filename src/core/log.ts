/**
 * leader-run's own log, on stderr (the child's stdout and stderr are never touched):
 * text for people, JSON lines for machines. Each record carries the lease and our
 * identity; state changes carry an `event` name — a documented interface (the README's
 * "Logs" table), so the names are a closed type.
 */

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

export type LogEvent =
  // the election
  | 'campaigning'
  | 'new-leader'
  | 'started-leading'
  | 'new-lease-hold'
  | 'min-hold'
  | 'once-per-skip'
  | 'candidate-registered'
  | 'step-down'
  | 'renewed'
  | 'renew-failed'
  | 'stopped-leading'
  | 'released'
  | 'watch-forbidden'
  | 'watch-failed'
  // the child
  | 'child-started'
  | 'child-exited'
  | 'child-fenced'
  | 'child-gone'
  | 'child-failed'
  | 'child-killed'
  | 'waiting'
  | 'watchdog-fence'
  | 'watchdog-failed'
  | 'unkillable'
  | 'signal'
  | 'pid1'
  // operating it
  | 'http-listening'
  | 'http-error'
  | 'pod-labelled'
  | 'service-routed'
  | 'events-forbidden'
  | 'event-failed'
  // failures, each with what to fix
  | 'api-error'
  | 'unreachable'
  | 'unauthorized'
  | 'forbidden'
  | 'tls'
  | 'namespace-missing'
  | 'config-invalid'
  | 'command-invalid'
  | 'wait-timeout'
  | 'internal-error'
  | 'exit';

const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogFields {
  event?: LogEvent;
  [k: string]: unknown;
}

export class Logger {
  readonly #format: LogFormat;
  readonly #min: number;
  readonly #base: Record<string, unknown>;
  readonly #write: (line: string) => void;

  constructor(opts: { format: LogFormat; level: Level; base?: Record<string, unknown>; write?: (line: string) => void }) {
    this.#format = opts.format;
    this.#min = rank[opts.level];
    this.#base = opts.base ?? {};
    this.#write = opts.write ?? ((line) => process.stderr.write(line));
  }

  /** A logger whose records also carry `fields`. */
  with(fields: Record<string, unknown>): Logger {
    return new Logger({ format: this.#format, level: levelOf(this.#min), base: { ...this.#base, ...fields }, write: this.#write });
  }

  debug(msg: string, fields?: LogFields): void {
    this.#log('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#log('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#log('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#log('error', msg, fields);
  }

  log(level: Level, msg: string, fields?: LogFields): void {
    this.#log(level, msg, fields);
  }

  #log(level: Level, msg: string, fields: LogFields = {}): void {
    if (rank[level] < this.#min) return;
    const time = new Date().toISOString();
    if (this.#format === 'json') {
      this.#write(`${JSON.stringify({ time, level, msg, ...this.#base, ...fields })}\n`);
      return;
    }
    const kv = Object.entries({ ...fields, ...this.#base })
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
      .join(' ');
    this.#write(`${time} ${level.toUpperCase().padEnd(5)} leader-run: ${msg}${kv ? `  ${kv}` : ''}\n`);
  }
}

function levelOf(min: number): Level {
  return (Object.keys(rank) as Level[]).find((l) => rank[l] === min) ?? 'info';
}
