/**
 * leader-run as PID 1 (a container's entrypoint without an init).
 *
 * Processes orphaned inside the container are re-parented to PID 1, which must reap them or
 * they stay zombies. Node can only wait() for processes it spawned itself, so when we are
 * PID 1 we give that place to a few lines of /bin/sh — whose `wait` reaps any child — and
 * run leader-run again as its child. The shell passes on every signal leader-run handles
 * and exits with leader-run's status. Without /bin/sh (a distroless image) we stay PID 1
 * and say that orphans will not be reaped; run under tini or `docker run --init` there.
 */
import { existsSync } from 'node:fs';

const MARK = 'LEADER_RUN_INIT_PID';

// fd 3 keeps the real stdin: a background job in a non-interactive shell gets /dev/null.
const INIT = `
exec 3<&0
"$@" <&3 3<&- &
child=$!
exec 3<&-
for s in TERM INT QUIT HUP USR1 USR2; do trap "kill -$s $child 2>/dev/null" "$s"; done
while :; do
  wait "$child"
  status=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$status"
`;

/** Whether leader-run is a container's PID 1, or runs under the shell init that took its place. */
export function isContainerInit(): boolean {
  return process.pid === 1 || process.env[MARK] !== undefined;
}

/** Re-executes under the shell init if we are PID 1; returns only if we stay as we are. */
export function becomeInitIfPid1(): { warning?: string } {
  if (process.pid !== 1 || process.env[MARK]) return {};
  if (!existsSync('/bin/sh') || typeof process.execve !== 'function')
    return { warning: 'running as PID 1 without /bin/sh: orphaned processes will not be reaped; use an init (tini, docker run --init)' };
  const self = [process.execPath, ...process.execArgv, process.argv[1] ?? '', ...process.argv.slice(2)];
  process.execve('/bin/sh', ['sh', '-c', INIT, 'leader-run-init', ...self], { ...process.env, [MARK]: '1' });
  return {}; // not reached
}
