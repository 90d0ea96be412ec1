/**
 * Checks the command before campaigning, so a typo fails at once with 127/126 (as a shell
 * would) instead of after winning the Lease.
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

export type Resolved = { ok: true; file: string } | { ok: false; status: 126 | 127; message: string };

export function resolveCommand(command: string, envPath = process.env['PATH'] ?? ''): Resolved {
  if (command === '') return { ok: false, status: 127, message: 'the command is empty' };
  const candidates = command.includes('/')
    ? [command]
    : envPath
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, command));
  let denied: string | undefined;
  for (const file of candidates) {
    let isDir: boolean;
    try {
      isDir = statSync(file).isDirectory();
    } catch {
      continue;
    }
    if (isDir) {
      if (command.includes('/')) return { ok: false, status: 126, message: `${command}: is a directory, not an executable; give the program inside it` };
      continue;
    }
    try {
      accessSync(file, constants.X_OK);
      return { ok: true, file };
    } catch {
      denied ??= file;
    }
  }
  if (denied) return { ok: false, status: 126, message: `${denied}: permission denied (not executable); chmod +x it` };
  return command.includes('/')
    ? { ok: false, status: 127, message: `${command}: no such file; check the path (a relative one is taken from the current directory)` }
    : { ok: false, status: 127, message: `${command}: command not found in PATH; check the spelling, install it, or give its full path` };
}
