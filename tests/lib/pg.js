// A real PostgreSQL for a test, Debian's: a cluster made by initdb in a
// temporary folder, run by pg_ctl as an unprivileged user (nobody, when
// the tests run as root: PostgreSQL refuses root), listening on a Unix
// socket only, stopped and removed afterwards.
'use strict';
const fs = require('fs');
const path = require('path');
const {execFileSync} = require('child_process');
const tap = require('./tap');
const {workdir, BUILD} = require('./servers');

// The newest PostgreSQL's programs Debian installed, or null.
function binDir() {
  const base = '/usr/lib/postgresql';
  let versions = [];
  try { versions = fs.readdirSync(base).filter(v => /^\d+$/.test(v)).sort((a, b) => b - a); } catch (e) { return null; }
  for (const v of versions)
    if (fs.existsSync(path.join(base, v, 'bin', 'initdb'))) return path.join(base, v, 'bin');
  return null;
}

// Start a cluster with a database "llmgw" owned by the superuser "llmgw";
// or, given "setupSql" (a file such as deploy/postgresql/llmgw.sql), with
// the superuser "postgres" running that file to make the role and
// database "llmgw".  Tests run it without fsync; "durable" (for the
// benchmark, next to SQLite, which syncs) keeps PostgreSQL's defaults.
// Returns {uri, sql(query) -> rows, stop(), start()}; skips the whole test
// if PostgreSQL is not installed.
async function startPostgres(name = 'pg', {setupSql, durable = false} = {}) {
  const missing = postgresMissing();
  if (missing) tap.skipAll(missing);
  const bin = binDir();
  const dir = workdir(name);
  const asRoot = process.getuid() === 0;
  const nobody = asRoot ? {uid: +execFileSync('id', ['-u', 'nobody']).toString(), gid: +execFileSync('id', ['-g', 'nobody']).toString()} : {};
  const data = path.join(dir, 'data'), sock = path.join(dir, 'sock');
  fs.chmodSync(dir, 0o755);
  for (const d of [data, sock]) {
    fs.mkdirSync(d, {mode: 0o700});
    if (asRoot) fs.chownSync(d, nobody.uid, nobody.gid);
  }
  const run = (prog, args) => execFileSync(path.join(bin, prog), args, {...nobody, cwd: dir, encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, LC_ALL: 'C'}});
  const log = path.join(sock, 'server.log');
  run('initdb', ['-D', data, '-U', setupSql ? 'postgres' : 'llmgw', '--auth=trust', '-E', 'UTF8', '--no-locale', '-N']);
  const start = () => run('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o',
    `-k ${sock} -c listen_addresses=` + (durable ? '' : ' -c fsync=off -c synchronous_commit=off'), 'start']);
  const stop = () => {
    try { run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']); } catch (e) { /* not running */ }
  };
  start();
  tap.onCleanup(stop);
  if (setupSql) run('psql', ['-h', sock, '-U', 'postgres', '-d', 'postgres', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', setupSql]);
  else run('createdb', ['-h', sock, '-U', 'llmgw', 'llmgw']);
  // Rows of a query, through psql, as JSON objects.
  const sql = (query) => {
    const out = run('psql', ['-h', sock, '-U', 'llmgw', '-d', 'llmgw', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c',
      `SELECT coalesce(json_agg(t), '[]') FROM (${query}) t`]);
    return JSON.parse(out.trim());
  };
  // A statement without rows (an INSERT a test makes by hand).
  const exec = (statement) => run('psql', ['-h', sock, '-U', 'llmgw', '-d', 'llmgw', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
    '-c', statement]);
  // The postmaster's pid (its backends are its children), from its pid file.
  const pid = () => +fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0];
  return {uri: `postgresql://llmgw@/llmgw?host=${sock}`, sock, sql, exec, stop, start, pid,
    log: () => fs.readFileSync(log, 'utf8')};
}

// Why a test cannot have PostgreSQL here, or null if it can.
function postgresMissing() {
  if (!binDir()) return 'PostgreSQL is not installed (Debian package postgresql)';
  if (!/^#define HAVE_POSTGRESQL 1$/m.test(fs.readFileSync(path.join(BUILD, 'config.h'), 'utf8')))
    return 'llmgw was built without PostgreSQL (configure found no libpq-dev, or --without-postgresql)';
  return null;
}

module.exports = {startPostgres, postgresMissing};
