// Starting and stopping what the integration tests talk to: the stub
// upstream and a real lighttpd in front of llmgw, each in its own folder.
'use strict';
const {spawn, execFileSync} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const {freePort, waitPort, sleep, waitFor} = require('./http');
const tap = require('./tap');

const SRC = process.env.LLMGW_SRCDIR || path.resolve(__dirname, '../..');
const BUILD = process.env.LLMGW_BUILDDIR || SRC;
// With LLMGW_VALGRIND=1 (tests/run-all.sh's second pass) every program
// runs under valgrind's memcheck: each name below is then a small script
// that starts valgrind, which writes a log per process in VALGRIND_LOGS
// only when it finds an error or a leak.
const VALGRIND_LOGS = path.join(BUILD, 'tests', 'valgrind-logs');
// Each program is built in its folder under src/ (README, "Hacking").
const PROGRAM_DIR = {'llmgw': 'llmgw', 'llmgw-spoold': 'spoold', 'llmgw-admin': 'admin'};
function program(name) {
  const real = path.join(BUILD, 'src', PROGRAM_DIR[name], name);
  if (!process.env.LLMGW_VALGRIND) return real;
  const dir = path.join(BUILD, 'tests', 'valgrind-bin');
  const wrapper = path.join(dir, name);
  fs.mkdirSync(dir, {recursive: true});
  fs.mkdirSync(VALGRIND_LOGS, {recursive: true, mode: 0o1777});
  fs.chmodSync(VALGRIND_LOGS, 0o1777);	// servers running as www-data log here too
  // valgrind's options are tests/valgrind.sh's, as for the unit tests.
  // Test files run in parallel and all write these: each its own
  // temporary.
  const tmp = `${wrapper}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, `#!/bin/sh
exec sh ${path.join(SRC, 'tests', 'valgrind.sh')} \\
    --log-file=${VALGRIND_LOGS}/${name}.%p.log ${real} "$@"
`, {mode: 0o755});
  fs.renameSync(tmp, wrapper);
  return wrapper;
}
const VALGRIND = !!process.env.LLMGW_VALGRIND;
const LLMGW = program('llmgw');
const SPOOLD = program('llmgw-spoold');
const ADMIN = program('llmgw-admin');

// Under valgrind a test file that is all load (thousands of requests, a
// dozen servers) would take an hour; such files say so and are skipped.
function heavy(why) {
  if (VALGRIND) tap.skipAll(`too slow under valgrind: ${why}`);
}
const TOKEN = 'test-token-7f3a9c';            // the static bearer token
const API_KEY = 'sk-ant-test-key-5b8e2d41';    // what llmgw sends upstream

function which(cmd) {
  for (const dir of (process.env.PATH + ':/usr/sbin:/sbin').split(':')) {
    const p = path.join(dir, cmd);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch (e) { /* next */ }
  }
  return null;
}

// A fresh folder for one test file; kept when the file fails.
function workdir(name) {
  const base = process.env.LLMGW_TEST_TMP || os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, `llmgw-${name}-`));
  tap.onCleanup(() => {
    if (tap.failures() === 0)
      fs.rmSync(dir, {recursive: true, force: true});
    else tap.diag(`kept ${dir} for a look`);
  });
  return dir;
}

function startStub(env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(SRC, 'tests/stub/upstream.js'), '0'],
      {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'inherit']});
    let out = '';
    p.stdout.on('data', d => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) {
        const port = +m[1];
        const url = `http://127.0.0.1:${port}`;
        const stub = {
          port, url, proc: p,
          async log() { return JSON.parse(await (await fetch(`${url}/log`)).text()); },
          async reset() { await fetch(`${url}/reset`, {method: 'POST'}); },
          stop() { return new Promise(r => { if (p.exitCode !== null) return r(); p.on('exit', r); p.kill('SIGTERM'); }); },
        };
        tap.onCleanup(() => stub.stop());
        resolve(stub);
      }
    });
    p.on('error', reject);
    p.on('exit', c => reject(new Error(`stub exited (${c})`)));
  });
}

// Sanitizer reports go to files in the test's folder, checked at the end.
function sanitizerEnv(dir) {
  return {
    ASAN_OPTIONS: `log_path=${dir}/asan:detect_leaks=1:detect_stack_use_after_return=1`,
    UBSAN_OPTIONS: `log_path=${dir}/ubsan:print_stacktrace=1:halt_on_error=1`,
    TSAN_OPTIONS: `log_path=${dir}/tsan:second_deadlock_stack=1`,
  };
}

function sanitizerReports(dir) {
  return fs.readdirSync(dir).filter(f => /^(asan|ubsan|tsan)\./.test(f))
    .map(f => `${f}:\n${fs.readFileSync(path.join(dir, f), 'utf8').slice(0, 4000)}`);
}

function lighttpdQuote(v) { return '"' + String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"'; }

// llmgw processes started for the folder "dir" (found through /proc).
function llmgwPids(dir) {
  const pids = [];
  for (const pid of fs.readdirSync('/proc').filter(x => /^\d+$/.test(x))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      // Under valgrind the program is an argument of valgrind's.
      if (path.basename(argv[0]) !== 'llmgw' &&
          !(/valgrind|memcheck/.test(path.basename(argv[0])) && argv.some(a => path.basename(a) === 'llmgw')))
        continue;
      const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
      // By its database, or its configuration where the database is a URI.
      if (env.includes(`LLMGW_DB=${dir}/`) || env.includes(`LLMGW_CONFIG=${dir}/`)) pids.push(+pid);
    } catch (e) { /* gone */ }
  }
  return pids;
}

// Write llmgw.conf for a test; "settings" is an object of key: value.
function writeConf(dir, settings = {}) {
  const file = path.join(dir, 'llmgw.conf');
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

// The environment llmgw runs with in the tests.
function llmgwEnv(dir, stub, extra = {}) {
  return {
    LLMGW_CONFIG: path.join(dir, 'llmgw.conf'),
    LLMGW_DB: path.join(dir, 'llmgw.db'),
    LLMGW_SPOOL_DIR: path.join(dir, 'spool'),
    LLMGW_API_TOKEN: TOKEN,
    ANTHROPIC_API_KEY: API_KEY,
    ANTHROPIC_BASE_URL: stub ? stub.url : 'http://127.0.0.1:9',
    LLMGW_ALLOW_ROOT: 'yes',	// CI runs as root
    ...sanitizerEnv(dir),
    ...extra,
  };
}

// A deploy/ snippet with its standard paths replaced for a test or the
// quickstart: the binary, the sockets, and llmgw's environment.
function fillSnippet(text, {socket, env = {}}) {
  const pairs = Object.entries(env).map(([k, v]) => `${lighttpdQuote(k)} => ${lighttpdQuote(v)}`);
  return text.split('/usr/local/sbin/llmgw').join(LLMGW)
    .split('/run/lighttpd/llmgw.sock').join(socket)
    .split('/run/llmgw/llmgw.sock').join(socket)
    .replace('"bin-environment" => ( "LLMGW_CONFIG" => "/etc/llmgw.conf" ),',
      `"bin-environment" => ( ${pairs.join(', ')} ),`);
}

// lighttpd in front of llmgw, from deploy/lighttpd: backend 'spawn'
// (llmgw-spawn.conf: lighttpd starts llmgw) or {socket: path}
// (llmgw-socket.conf).  {port: n} connects over TCP instead.
async function startLighttpd({dir, env = {}, backend = 'spawn', mount = '/api/v1', docroot, procs = 1}) {
  const lighttpd = which('lighttpd');
  if (!lighttpd) return null;
  const port = await freePort();
  const rundir = path.join(dir, 'lighttpd');
  fs.mkdirSync(rundir, {recursive: true});
  let snippet;
  if (backend === 'spawn')
    snippet = fillSnippet(fs.readFileSync(path.join(SRC, 'deploy/lighttpd/llmgw-spawn.conf'), 'utf8'),
      {socket: path.join(rundir, 'llmgw.sock'), env});
  else if (backend.socket)
    snippet = fillSnippet(fs.readFileSync(path.join(SRC, 'deploy/lighttpd/llmgw-socket.conf'), 'utf8'),
      {socket: backend.socket});
  else
    snippet = fs.readFileSync(path.join(SRC, 'deploy/lighttpd/llmgw-socket.conf'), 'utf8')
      .replace('"socket"      => "/run/llmgw/llmgw.sock",', `"host" => "127.0.0.1", "port" => ${backend.port},`);
  if (mount !== '/api/v1') snippet = snippet.split('"/api/v1"').join(`"${mount}"`);
  if (procs !== 1) snippet = snippet.replace('"max-procs"       => 1,', `"max-procs"       => ${procs},`);
  fs.writeFileSync(path.join(rundir, 'llmgw.conf'), snippet);
  const conf = fs.readFileSync(path.join(SRC, 'deploy/lighttpd/lighttpd.conf.in'), 'utf8')
    .replace(/@PORT@/g, port).replace(/@BIND@/g, '127.0.0.1')
    .replace(/@DOCROOT@/g, docroot || rundir).replace(/@RUNDIR@/g, rundir);
  const file = path.join(rundir, 'lighttpd.conf');
  fs.writeFileSync(file, conf);
  // lighttpd hands its stderr to the backends it spawns: llmgw's log.
  const errfd = fs.openSync(path.join(rundir, 'stderr.log'), 'a');
  const p = spawn(lighttpd, ['-D', '-f', file], {stdio: ['ignore', errfd, errfd],
    env: {...process.env, ...env}});
  fs.closeSync(errfd);
  let exited = false;
  p.on('exit', () => { exited = true; });
  await waitPort(port);
  const srv = {
    port, proc: p, dir, rundir,
    base: `http://127.0.0.1:${port}`,
    url: (route) => `http://127.0.0.1:${port}${mount}${route}`,
    log: () => ['lighttpd.log', 'stderr.log'].map(f => {
      try { return fs.readFileSync(path.join(rundir, f), 'utf8'); } catch (e) { return ''; }
    }).join(''),
    pids: () => llmgwPids(dir),
    async stop() {
      if (exited) return;
      // lighttpd sends its backends SIGTERM; they must be gone soon after.
      await stopSpawner(p, () => exited, backend === 'spawn' ? llmgwPids(dir) : [], dir,
        'llmgw exits after SIGTERM from lighttpd');
    },
  };
  tap.onCleanup(() => srv.stop());
  return srv;
}

// Stop a web server "p" with SIGTERM and check what it leaves: the llmgw
// processes it started ("pids") gone ("gone" names that test point), and
// no sanitizer report in "dir".
async function stopSpawner(p, exited, pids, dir, gone) {
  p.kill('SIGTERM');
  await waitFor(exited, 15000);
  if (!await waitFor(() => pids.every(pid => !fs.existsSync(`/proc/${pid}`)), 15000)) {
    tap.point(false, gone);
    for (const pid of pids) try { process.kill(pid, 'SIGKILL'); } catch (e) { /* gone */ }
  }
  const reports = sanitizerReports(dir);
  tap.point(reports.length === 0, `no sanitizer reports in ${path.basename(dir)}`, reports.join('\n'));
}

// llmgw on its own socket (--listen), for external-backend setups.
async function startLlmgw({dir, env = {}, listen, args = []}) {
  const p = spawn(LLMGW, ['--listen', listen, ...args], {env: {...process.env, ...env},
    stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'llmgw.log'), 'a')]});
  let exited = false, code = null;
  p.on('exit', (c, s) => { exited = true; code = c === null ? s : c; });
  const g = {
    proc: p, pid: p.pid,
    get exited() { return exited; }, get code() { return code; },
    log: () => fs.readFileSync(path.join(dir, 'llmgw.log'), 'utf8'),
    async stop(sig = 'SIGTERM') {
      if (exited) return code;
      p.kill(sig);
      await waitFor(() => exited, 15000);
      if (!exited) { tap.point(false, `llmgw exits after ${sig}`); p.kill('SIGKILL'); }
      return code;
    },
  };
  tap.onCleanup(() => g.stop());
  if (listen.startsWith('/')) await waitFor(() => fs.existsSync(listen), 10000);
  else await waitPort(+listen.split(':').pop());
  return g;
}

// llmgw-spoold as a daemon; its stderr goes to <dir>/spoold.log.
function startSpoold({dir, env = {}, args = [], log = 'spoold.log'}) {
  const p = spawn(SPOOLD, args, {env: {...process.env, ...env},
    stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, log), 'a')]});
  let exited = false, code = null;
  p.on('exit', (c, s) => { exited = true; code = c === null ? s : c; });
  const d = {
    proc: p, pid: p.pid,
    get exited() { return exited; }, get code() { return code; },
    log: () => fs.readFileSync(path.join(dir, log), 'utf8'),
    async stop(sig = 'SIGTERM') {
      if (exited) return code;
      p.kill(sig);
      await waitFor(() => exited, 15000);
      if (!exited) { tap.point(false, `llmgw-spoold exits after ${sig}`); p.kill('SIGKILL'); }
      return code;
    },
  };
  tap.onCleanup(() => d.stop());
  return d;
}

// One value or rows from a SQLite file, through the sqlite3 shell, run as
// the file's owner (a root-owned -wal or -shm would lock out www-data).
// A file that is not there yet is an error, never created.
function sql(db, query) {
  const st = fs.statSync(db);
  const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', db, query],
    {encoding: 'utf8', uid: st.uid, gid: st.gid, maxBuffer: 256 << 20});
  return out.trim() === '' ? [] : JSON.parse(out);
}

// A copy of llmgw in "dir", for servers running as another user.
function llmgwCopy(dir) {
  const bin = path.join(dir, 'bin', 'llmgw');
  fs.mkdirSync(path.dirname(bin), {recursive: true});
  fs.copyFileSync(LLMGW, bin);
  fs.chmodSync(bin, 0o755);
  fs.chmodSync(path.dirname(bin), 0o755);
  return bin;
}

// The usage row of request "id", once it has been written (or null);
// "query" runs the query (tests/lib/store.js passes PostgreSQL's).
async function usageRow(db, id, ms = 10000, query = sql) {
  const rows = await waitFor(() => {
    try {
      const x = query(db, `SELECT * FROM usage WHERE request_id = '${id}'`);
      return x.length ? x : null;
    } catch (e) {
      return null;	// not created yet
    }
  }, ms);
  return rows ? rows[0] : null;
}

module.exports = {spoolRecords, stopSpawner, heavy, VALGRIND, llmgwCopy, fillSnippet, lighttpdQuote, llmgwPids, usageRow, startSpoold, SPOOLD, ADMIN, SRC, BUILD, LLMGW, TOKEN, API_KEY, which, workdir, startStub, startLighttpd,
  startLlmgw, llmgwEnv, writeConf, sanitizerEnv, sanitizerReports, sql, sleep};

// The records waiting in a spool's new/: a file holds one or more, a JSON
// object per line (records written together share a file).  A file being
// written, or damaged, is skipped.  Records reach new/ a moment after
// their last write (a segment in tmp/ lingers 20 ms for more): wait, up
// to 3 s, until tmp/ holds no segment.
function spoolRecords(spool) {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 300; i++) {
    let segs = [];
    try { segs = fs.readdirSync(path.join(spool, 'tmp')).filter(f => f.endsWith('.seg')); } catch (e) { break; }
    if (segs.length === 0) break;
    Atomics.wait(pause, 0, 0, 10);
  }
  let names = [];
  try { names = fs.readdirSync(path.join(spool, 'new')).filter(f => !f.startsWith('.')); } catch (e) { return []; }
  return names.flatMap(f => {
    try {
      return fs.readFileSync(path.join(spool, 'new', f), 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l));
    } catch (e) { return []; }
  });
}

// The usual arrangement: a stub upstream, and lighttpd spawning llmgw
// configured by "conf" (llmgw.conf settings).  Skips the whole file when
// lighttpd is not installed.
async function setup(name, {conf = {}, env = {}, stubEnv = {}, mount, procs, docroot} = {}) {
  const dir = workdir(name);
  const stub = await startStub(stubEnv);
  writeConf(dir, {retry_base: '50ms', retry_max: '2s', ...conf});
  const llenv = llmgwEnv(dir, stub, env);
  const srv = await startLighttpd({dir, env: llenv, mount, procs, docroot});
  if (!srv) tap.skipAll('lighttpd is not installed (Debian package lighttpd)');
  const auth = {authorization: `Bearer ${TOKEN}`};
  return {dir, stub, srv, env: llenv, auth, db: llenv.LLMGW_DB, url: srv.url};
}
module.exports.setup = setup;
