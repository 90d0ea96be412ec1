#!/usr/bin/env node
// Thin launcher. Written so that any Node can parse it: on one older than the floor it
// says so plainly instead of crashing inside a dependency.
'use strict';
var floor = [22, 19];
var v = process.versions.node.split('.').map(Number);
if (v[0] < floor[0] || (v[0] === floor[0] && v[1] < floor[1])) {
  process.stderr.write('leader-run: Node ' + process.versions.node + ' is too old; leader-run needs Node >= ' + floor.join('.') + ' (install a current LTS, e.g. Node 24)\n');
  process.exit(78);
}
// Node's on-disk compile cache, as tsc does: a later run skips compiling what an earlier one
// did (~7 ms here). Not under /proc: Node 24.9 spins there for good.
var mod = process.getBuiltinModule('node:module');
if (mod.enableCompileCache && !/^\/proc(\/|$)/.test(process.getBuiltinModule('node:os').tmpdir())) {
  try { mod.enableCompileCache(); } catch (e) { /* a cache is a nicety; never a reason to fail */ }
}
import('../dist/cli.js').then(
  function (m) { return m.main(process.argv.slice(2)); }
).then(
  function (status) { process.exitCode = status; setImmediate(function () { process.exit(status); }); },
  function (e) { process.stderr.write('leader-run: internal error: ' + (e && e.message ? e.message : e) + '\n'); process.exit(70); }
);
