/**
 * The demo's output: log lines scroll while a small table stays redrawn in place below them
 * on a terminal; elsewhere (CI, pipes) the table is printed as one line each time it changes,
 * since cursor movement would only garble a log file.
 */
import type { WriteStream } from 'node:tty';

export class Screen {
  readonly tty: boolean;
  readonly color: boolean;
  readonly #out: NodeJS.WriteStream | WriteStream;
  readonly #t0: number;
  #drawn = 0;
  #table: string[] = [];
  #lastKey = '';
  #closed = false;

  constructor(out: NodeJS.WriteStream = process.stdout) {
    this.#out = out;
    this.tty = out.isTTY === true && process.env['TERM'] !== 'dumb';
    this.color = this.tty && !process.env['NO_COLOR'];
    this.#t0 = performance.now();
  }

  /** Seconds since the demo started, as the log's time prefix. */
  stamp(): string {
    return `+${((performance.now() - this.#t0) / 1000).toFixed(1).padStart(5)}s`;
  }

  paint(sgr: string, s: string): string {
    return this.color ? `\x1b[${sgr}m${s}\x1b[0m` : s;
  }

  /** A line above the table (on a terminal) or just a line. */
  log(line: string): void {
    const text = `${this.paint('2', this.stamp())} ${line}\n`;
    if (!this.tty) {
      this.#out.write(text);
      return;
    }
    this.#out.write(this.#erase() + text + this.#draw());
  }

  /**
   * The table's current content. `key` is what counts as a change for non-terminal output
   * (so a "renewed 300 ms ago" that ticks every frame does not print a line each time).
   */
  table(lines: string[], key: string, flat: string): void {
    if (this.#closed) return;
    if (!this.tty) {
      if (key !== this.#lastKey) this.#out.write(`${this.stamp()} ${flat}\n`);
      this.#lastKey = key;
      return;
    }
    // Lines wider than the terminal would wrap and break the count of lines to erase.
    const width = Math.max(20, (this.#out.columns ?? 100) - 1);
    this.#table = lines.map((l) => truncate(l, width));
    this.#out.write(this.#erase() + this.#draw());
  }

  /** Leaves the last table on screen and stops redrawing it. */
  close(): void {
    this.#closed = true;
    this.#drawn = 0;
    this.#table = [];
  }

  /** Removes the table from the screen and stops redrawing it (when interrupted). */
  clear(): void {
    if (this.tty) this.#out.write(this.#erase());
    this.close();
  }

  #erase(): string {
    if (this.#drawn === 0) return '';
    const n = this.#drawn;
    this.#drawn = 0;
    // To the start of the table's first line, then clear to the end of the screen.
    return `\x1b[${n}F\x1b[J`;
  }

  #draw(): string {
    this.#drawn = this.#table.length;
    return this.#table.map((l) => `${l}\n`).join('');
  }
}

/** Cuts to `width` visible characters, keeping ANSI colour codes intact. */
function truncate(s: string, width: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\x1b') {
      const end = s.indexOf('m', i);
      if (end > 0) {
        out += s.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    if (visible >= width) continue;
    out += s[i];
    visible++;
  }
  return out;
}
