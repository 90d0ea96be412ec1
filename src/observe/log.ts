/**
 * leader-run's own log, on stderr (the child's stdout and stderr are never touched):
 * text for people, JSON lines for machines. Each record carries the lease and our
 * identity; state changes carry an `event` name so they can be matched on.
 */

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogFields {
  event?: string;
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

  #log(level: Level, msg: string, fields: LogFields = {}): void {
    if (rank[level] < this.#min) return;
    const time = new Date().toISOString();
    if (this.#format === 'json') {
      this.#write(JSON.stringify({ time, level, msg, ...this.#base, ...fields }) + '\n');
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
