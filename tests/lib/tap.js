// A small TAP producer for the integration tests.  Each check is one test
// point; a thrown error inside test() is a failure, never a crash.
'use strict';
const util = require('util');

let n = 0, failed = 0;
const cleanups = [];

function point(cond, msg, extra) {
  n++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${String(msg).replace(/\n/g, ' ')}`);
  if (!cond) {
    failed++;
    if (extra !== undefined)
      for (const line of String(extra).split('\n')) console.log(`#   ${line}`);
  }
  return cond;
}

const ok = (cond, msg) => point(!!cond, msg);
const is = (got, want, msg) => point(util.isDeepStrictEqual(got, want), msg,
  `got:  ${util.inspect(got, {depth: 5, breakLength: Infinity})}\nwant: ${util.inspect(want, {depth: 5, breakLength: Infinity})}`);
const like = (got, re, msg) => point(re.test(String(got)), msg, `got: ${util.inspect(got)}\nwant: ${re}`);
const skip = (msg, why) => { n++; console.log(`ok ${n} - ${msg} # SKIP ${why}`); };
const diag = (...a) => { for (const l of util.format(...a).split('\n')) console.log(`# ${l}`); };

async function test(name, fn) {
  diag(`--- ${name}`);
  try { await fn(); } catch (e) { point(false, `${name}: threw`, e && e.stack || e); }
}

// Run cleanups (servers) even on failure, then print the plan.
function onCleanup(fn) { cleanups.push(fn); }

async function done() {
  for (const fn of cleanups.reverse()) {
    try { await fn(); } catch (e) { point(false, 'cleanup', e && e.stack || e); }
  }
  console.log(`1..${n}`);
  process.exitCode = failed ? 1 : 0;
}

// Skip a whole file: one skipped point, with the reason, then the plan.
function skipAll(why) {
  console.log(`1..0 # SKIP ${why}`);
  process.exit(0);
}

// Run a test file's body; whatever it throws is a failure, and the plan is
// always printed.
function main(fn) {
  (async () => {
    try { await fn(); } catch (e) { point(false, 'test file threw', e && e.stack || e); }
    await done();
  })();
}

const failures = () => failed;

module.exports = {failures, ok, is, like, skip, diag, test, done, onCleanup, skipAll, point, main};
