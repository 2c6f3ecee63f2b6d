// llmgw side by side with the FastAPI reference and a proxy that does no
// work, all against the project's stub upstream, on this machine, in one
// run: /chat throughput, latency and CPU per request; /chat/stream at
// several concurrencies (completion, time to first token over the direct
// upstream, llmgw's memory per open stream and its worker pool); and the
// ratios the targets are stated in.  bench/run.sh builds and starts it.
//
// usage: node bench/bench.js [--smoke] [--save] [--store]
//   --smoke  a few seconds of each, at 20 streams (CI runs this)
//   --save   keep the report in bench/results/bench-<date>.txt
//   --store  only keyed /chat on SQLite and PostgreSQL, and on SQLite under
//            Apache mod_fcgid (bench-store-<date>)
//   --chat   only /chat, with its ratios (bench-chat-<date>)
// With LLMGW_BUILDDIR set, the llmgw built in that folder is measured (an
// earlier commit's work tree: before and after, with the same benchmark).
'use strict';
const {spawn, execFileSync} = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const t = require('../tests/lib/tap');
const {request, freePort, waitPort, waitFor, sleep} = require('../tests/lib/http');
const {BUILD, LLMGW, TOKEN, ADMIN, which, workdir, startStub, startLighttpd, startLlmgw, llmgwEnv, writeConf, llmgwPids,
  llmgwCopy} =
  require('../tests/lib/servers');
const {startNginx, startApache, fcgidSnippet} = require('../tests/lib/webservers');
const {startPostgres, postgresMissing} = require('../tests/lib/pg');
const {HZ, ticks, family, procField, status, stacks} = require('./proc');
const {say, save, f1, f3, ratio, pad, lpad} = require('./report');
const {SMOKE, CONNECTIONS, CHAT_SECONDS, run, wrk, curlFloor} = require('./tools');
const {benchChat, chatRatios} = require('./chat');

const SAVE = process.argv.includes('--save');
const STORE_ONLY = process.argv.includes('--store');
const CHAT_ONLY = process.argv.includes('--chat');
const LEVELS = SMOKE ? [20] : [100, 1000, 5000];
const REST_MS = SMOKE ? 500 : 4500;	// for the pool to shrink (thread_idle 3s)
// The FastAPI reference: bench/fastapi_seed_app.py, a copy of the one in
// ../shared/bench.
const FASTAPI_DIR = process.env.FASTAPI_DIR || __dirname;
const STREAM = '[[tokens:20]] [[delay:20]]';
// Generating streams, for CPU per streamed token (#18): 50 deltas 10 ms
// apart, so many at once, for so many rounds.
const GEN_DELTAS = 50;
const GEN_STREAM = `[[tokens:${GEN_DELTAS}]] [[delay:10]]`;
const GEN_LEVELS = SMOKE ? [20] : [200, 1000, 5000];
// Rounds per level: at 5,000 every target is bound by the two cores, and a
// round takes seconds.
const genRounds = (n) => SMOKE ? 1 : n >= 5000 ? 2 : 10;
const ONE_STREAM = '[[tokens:2]] [[delay:5]]';
const ONE_ROUNDS = 1000;	// a p99 of 1,000 is its 10th worst, steadier
// llmgw's settings for the run: enough workers for every stream at once,
// and an idle time short enough to see the pool shrink.
const LLMGW_CONF = {max_threads: 6000, thread_idle: '3s'};

const chatBody = JSON.stringify({message: 'Hello there, how are you?'});
const messagesBody = (text, stream) => JSON.stringify({model: 'claude-sonnet-4-6', max_tokens: 100, stream,
  messages: [{role: 'user', content: text}]});

// The services under test.  Each: name, chat {url, body, token},
// stream(url body), pids(), llmgw pids (for memory), stop().
// A target's /chat/stream request with "text" as the message, for burst().
const chatStream = (url) => (text) => ({url, body: JSON.stringify({message: text}), token: TOKEN});

async function startTargets(stub) {
  const targets = [];
  const skipped = [];

  // llmgw behind lighttpd, which spawns it (deploy/lighttpd).
  {
    const dir = workdir('bench-lighttpd');
    writeConf(dir, LLMGW_CONF);
    const srv = await startLighttpd({dir, env: llmgwEnv(dir, stub)});
    if (!srv) skipped.push('llmgw + lighttpd: lighttpd is not installed');
    else {
      await request(srv.url('/healthz'));
      targets.push({name: 'llmgw + lighttpd', llmgw: true, dir,
        chat: {url: srv.url('/chat'), body: chatBody, token: TOKEN},
        stream: chatStream(srv.url('/chat/stream')),
        llmgwPids: () => llmgwPids(dir), webPids: () => [srv.proc.pid]});
    }
  }

  // llmgw on its own socket behind nginx (deploy/nginx); once more with
  // its database and spool in memory (tmpfs), which shows what the
  // filesystem costs: every request writes a spool file and a row.
  for (const shm of SMOKE || !fs.existsSync('/dev/shm') ? [false] : [false, true]) {
    const name = shm ? 'llmgw + nginx, tmpfs' : 'llmgw + nginx';
    if (!which('nginx')) { skipped.push(`${name}: nginx is not installed`); continue; }
    const dir = workdir('bench-nginx');
    writeConf(dir, {...LLMGW_CONF, listen_mode: '0666'});
    const sock = path.join(dir, 'llmgw.sock');
    let state = {};
    if (shm) {
      const mem = fs.mkdtempSync('/dev/shm/llmgw-bench-');
      t.onCleanup(() => fs.rmSync(mem, {recursive: true, force: true}));
      state = {LLMGW_DB: path.join(mem, 'llmgw.db'), LLMGW_SPOOL_DIR: path.join(mem, 'spool')};
    }
    const g = await startLlmgw({dir, env: llmgwEnv(dir, stub, state), listen: sock});
    const ng = await startNginx({dir, socket: sock, connections: 12000});
    if (ng.why) skipped.push(`${name}: ${ng.why}`);
    else targets.push({name, llmgw: true, dir,
      chat: {url: ng.url('/chat'), body: chatBody, token: TOKEN},
      stream: chatStream(ng.url('/chat/stream')),
      llmgwPids: () => [g.pid], webPids: () => family(ng.proc.pid)});
  }

  // The FastAPI reference under uvicorn, with 1 and 2 workers.
  const haveFastapi = (await run('/usr/bin/python3', ['-c', 'import fastapi, uvicorn, httpx'])).err === null &&
    fs.existsSync(path.join(FASTAPI_DIR, 'fastapi_seed_app.py'));
  // (The smoke run only the one the targets are stated against.)
  for (const workers of SMOKE ? [2] : [1, 2]) {
    const name = `FastAPI, ${workers} worker${workers > 1 ? 's' : ''}`;
    if (!haveFastapi) {
      skipped.push(`${name}: needs python3-fastapi python3-uvicorn python3-httpx and ${FASTAPI_DIR}`);
      continue;
    }
    const port = await freePort();
    const dir = workdir(`bench-fastapi${workers}`);
    const log = fs.openSync(path.join(dir, 'uvicorn.log'), 'a');
    const p = spawn('/usr/bin/python3', ['-m', 'uvicorn', 'fastapi_seed_app:app', '--app-dir', FASTAPI_DIR,
      '--host', '127.0.0.1', '--port', String(port), '--workers', String(workers)],
    {env: {...process.env, UPSTREAM: stub.url, API_TOKEN: TOKEN, ANTHROPIC_API_KEY: 'stub'},
      stdio: ['ignore', log, log]});
    t.onCleanup(() => { p.kill('SIGTERM'); return sleep(500); });
    await waitPort(port, 20000);
    const base = `http://127.0.0.1:${port}`;
    targets.push({name, dir,
      chat: {url: `${base}/chat`, body: chatBody, token: TOKEN},
      stream: chatStream(`${base}/chat/stream`),
      pids: () => family(p.pid)});
  }

  // nginx proxy_pass straight to the stub: a proxy doing no work.
  if (which('nginx')) {
    const dir = workdir('bench-proxy');
    const port = await freePort();
    const run = path.join(dir, 'nginx');
    fs.mkdirSync(run, {recursive: true});
    fs.writeFileSync(path.join(run, 'nginx.conf'), `daemon off;\nworker_processes 2;\nworker_rlimit_nofile 24100;\n` +
      `pid ${run}/nginx.pid;\nerror_log ${run}/error.log warn;\nevents { worker_connections 12000; }\n` +
      `http {\n  access_log off;\n  client_body_temp_path ${run}/body;\n  proxy_temp_path ${run}/proxy;\n` +
      `  fastcgi_temp_path ${run}/fastcgi;\n  uwsgi_temp_path ${run}/uwsgi;\n  scgi_temp_path ${run}/scgi;\n` +
      `  upstream stub { server 127.0.0.1:${stub.port}; keepalive 64; }\n` +
      `  server {\n    listen 127.0.0.1:${port};\n    location / {\n      proxy_pass http://stub;\n` +
      '      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n      proxy_buffering off;\n' +
      '    }\n  }\n}\n');
    const p = spawn(which('nginx'), ['-c', path.join(run, 'nginx.conf')], {stdio: 'ignore'});
    t.onCleanup(() => { p.kill('SIGQUIT'); return sleep(300); });
    await waitPort(port, 10000);
    const url = `http://127.0.0.1:${port}/v1/messages`;
    targets.push({name: 'nginx proxy (no logic)', proxy: true, dir,
      chat: {url, body: messagesBody('Hello there, how are you?', false)},
      stream: (text) => ({url, body: messagesBody(text, true)}),
      pids: () => family(p.pid)});
  }
  return {targets, skipped};
}

// How many streams the stub holds open.
const stubOpen = async (stub) => JSON.parse((await request(`${stub.url}/stats`)).text).open;

// A burst's errors, as " (what: count, ...)", or "".
const errorsText = (r) => Object.keys(r.errors).length ?
  ` (${Object.entries(r.errors).map(([k, v]) => `${k}: ${v}`).join(', ')})` : '';

async function burst(target, n, text, rounds = 1, warmup = 0, spreadMs = 0) {
  const s = target.stream(text);
  const r = await run(process.execPath, [path.join(__dirname, 'sse_burst.js'), s.url, String(n), s.body, s.token || '',
    String(rounds), String(warmup), String(spreadMs)], {timeout: 600000});
  try { return JSON.parse(r.stdout); } catch (e) { return {n, completed: 0, failed: n, errors: {crash: r.stderr.slice(0, 200)}}; }
}

// One stream at a time to each target in turn (see sse_burst.js --turns):
// a result per target, in the order given.
async function turns(xs, text, rounds, warmup) {
  const list = xs.map(x => ({name: x.name, ...x.stream(text)}));
  const r = await run(process.execPath, [path.join(__dirname, 'sse_burst.js'), '--turns', JSON.stringify(list),
    String(rounds), String(warmup)], {timeout: 1800000});
  const got = {};
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    try { const o = JSON.parse(line); got[o.name] = o; } catch (e) { /* not ours */ }
  }
  return xs.map(x => got[x.name] || {n: 1, completed: 0, failed: rounds, errors: {crash: r.stderr.slice(0, 200)}});
}

// llmgw's memory with "n" streams held open at the upstream.
async function heldStreams(stub, x, n) {
  const pid = x.llmgwPids()[0];
  await sleep(REST_MS);			// the pool at rest
  const idle = status(pid);
  const b = burst(x, n, '[[thinking:5000]] ' + STREAM);
  const all = await waitFor(async () => await stubOpen(stub) >= n, 30000, 100);
  await sleep(300);
  const held = status(pid);
  await b;
  await sleep(REST_MS);			// thread_idle 3s, and a little
  const after = status(pid);
  return {open: all ? n : 'not all', idle, held, after,
    per_stream_kb: all ? (held.rss_kb - idle.rss_kb) / n : null};
}

// CPU per streamed token: "n" generating streams at once through each
// target; the serving processes' CPU over the deltas relayed (for llmgw
// also the web server's part and its own), streams/s and whole-stream
// times.  The clients' CPU is not counted.
async function benchStreamCpu(targets, stub) {
  const floors = {};
  for (const n of GEN_LEVELS) {
    say(`${n} generating streams at once, ${GEN_DELTAS} deltas 10 ms apart, ${genRounds(n)} rounds`);
    say(`${pad('', 24)}${lpad('done', 7)}${lpad('failed', 8)}${lpad('streams/s', 11)}${lpad('end p50', 9)}` +
      `${lpad('end p99', 9)}${lpad('us/token', 10)}${lpad('web', 8)}${lpad('llmgw', 8)}`);
    for (const x of targets) {
      const web = x.llmgw ? x.webPids() : x.pids(), gw = x.llmgw ? x.llmgwPids() : [];
      const w0 = ticks(web), g0 = ticks(gw);
      const r = await burst(x, n, GEN_STREAM, genRounds(n));
      const deltas = r.completed * GEN_DELTAS;
      const us = (t0, t1) => deltas ? (t1 - t0) / HZ * 1e6 / deltas : null;
      const g = {...r, per_second: r.seconds ? r.completed / r.seconds : null,
        web_us: us(w0, ticks(web)), llmgw_us: x.llmgw ? us(g0, ticks(gw)) : 0};
      g.us = g.web_us === null ? null : g.web_us + g.llmgw_us;
      (x.gen = x.gen || {})[n] = g;
      say(`${pad(x.name, 24)}${lpad(r.completed, 7)}${lpad(r.failed, 8)}${lpad(f1(g.per_second), 11)}` +
        `${lpad(f1(r.total_p50), 9)}${lpad(f1(r.total_p99), 9)}${lpad(f1(g.us), 10)}` +
        `${lpad(x.llmgw ? f1(g.web_us) : '', 8)}${lpad(x.llmgw ? f1(g.llmgw_us) : '', 8)}`);
    }
    const fl = await streamFloor(stub, n), rl = await streamFloor(stub, n, true);
    const floorLine = (name, o, what) => o && say(`${pad(name, 24)}${lpad(o.transfers, 7)}${lpad(o.failed, 8)}` +
      `${lpad('', 29)}${lpad(f1(o.us), 10)}   ${what} (bench/curl_floor.c)`);
    floorLine('libcurl alone (floor)', fl, 'the same streams read and dropped, nothing else');
    floorLine('libcurl + a write each', rl, 'the same, each read written on to a Unix socket: a relay\'s floor');
    floors[n] = fl && {...fl, relay_us: rl ? rl.us : null};
  }
  return floors;
}

// libcurl alone receiving "n" of the generating streams at once from the
// stub, for as long as a round through a target takes: its CPU per event,
// the floor of llmgw's upstream side of a stream; with "relay", each read
// also written on to a Unix socket (what the other end's reading costs is
// not counted): the floor of one read and one write per event.
async function streamFloor(stub, n, relay) {
  const o = await curlFloor(stub, n, SMOKE ? 1 : 5, messagesBody(GEN_STREAM, true), relay);
  return o && o.transfers > 0 ? {transfers: o.transfers, failed: o.failed, us: o.cpu_us / GEN_DELTAS} : null;
}

async function benchStreams(stub, targets) {
  const direct = {name: 'upstream, direct', stream: (text) => ({url: `${stub.url}/v1/messages`,
    body: messagesBody(text, true)})};
  say(`/chat/stream: N streams opened at once, 20 tokens 20 ms apart; TTFT = time to first text;`);
  say('+p50, +p99: TTFT added over the upstream itself at the same concurrency');
  for (const n of [1, ...LEVELS]) {
    // One at a time measures the time to first token, so a short stream
    // does, and enough of them for a p99, after a few not counted (the
    // first opens connections and pages in code, for every target alike);
    // the targets take turns, so that the machine's slow moments fall on
    // each alike.
    const rounds = n === 1 ? (SMOKE ? 10 : ONE_ROUNDS) : 1;
    const warmup = n === 1 ? (SMOKE ? 3 : 10) : 0;
    const text = n === 1 ? ONE_STREAM : STREAM;
    say();
    say(n === 1 ? `one stream at a time, ${rounds} to each (after ${warmup} not counted), the targets in turn, ` +
      '2 tokens 5 ms apart' : `${n} concurrent streams`);
    say(`${pad('', 24)}${lpad('done', 7)}${lpad('failed', 8)}${lpad('TTFT p50', 10)}${lpad('p99', 8)}` +
      `${lpad('+p50', 8)}${lpad('+p99', 8)}${lpad('end p99', 9)}`);
    const one = n === 1 ? await turns([direct, ...targets], text, rounds, warmup) : null;
    const base = one ? one[0] : await burst(direct, n, text, rounds, warmup);
    say(`${pad(direct.name, 24)}${lpad(base.completed, 7)}${lpad(base.failed, 8)}${lpad(f1(base.ttft_p50), 10)}` +
      `${lpad(f1(base.ttft_p99), 8)}${lpad('', 8)}${lpad('', 8)}${lpad(f1(base.total_p99), 9)}`);
    for (const [i, x] of targets.entries()) {
      const r = one ? one[i + 1] : await burst(x, n, text, rounds, warmup);
      r.added_p50 = r.ttft_p50 - base.ttft_p50;
      r.added_p99 = r.ttft_p99 - base.ttft_p99;
      (x.streams = x.streams || {})[n] = r;
      const errs = errorsText(r);
      say(`${pad(x.name, 24)}${lpad(r.completed, 7)}${lpad(r.failed, 8)}${lpad(f1(r.ttft_p50), 10)}` +
        `${lpad(f1(r.ttft_p99), 8)}${lpad(f1(r.added_p50), 8)}${lpad(f1(r.added_p99), 8)}${lpad(f1(r.total_p99), 9)}${errs}`);
    }
    for (const x of targets.filter(y => y.llmgw && n > 1)) {
      const m = await heldStreams(stub, x, n);
      (x.memory = x.memory || {})[n] = m;
      say(`  ${x.name}: ${m.open} streams held open: RSS ${m.idle.rss_kb} -> ${m.held.rss_kb} KB, ` +
        `${f1(m.per_stream_kb)} KB per stream; threads ${m.idle.threads} -> ${m.held.threads} -> ` +
        `${m.after.threads} once idle; fds ${m.idle.fds} -> ${m.held.fds}`);
    }
  }
}

// 2,000 FastCGI peers, each holding half a record, against llmgw --listen:
// its memory per such connection, and whether it lets them go: its open
// descriptors back to idle once body_timeout closed them.  (RSS is shown,
// not judged: malloc keeps freed memory for reuse, and the worker pool's
// thread stacks come and go; leaks are valgrind's to find, in CI.)
async function benchHalfSent(stub) {
  const dir = workdir('bench-halfsent');
  writeConf(dir, {body_timeout: '2s'});
  const sock = path.join(dir, 'llmgw.sock');
  const g = await startLlmgw({dir, env: llmgwEnv(dir, stub), listen: sock});
  const rss = () => status(g.pid).rss_kb;
  const fds = () => fs.readdirSync(`/proc/${g.pid}/fd`).length;
  const head = Buffer.from([1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);	// BEGIN_REQUEST, responder
  const params = Buffer.concat([Buffer.from([1, 4, 0, 1, 0x03, 0xe8, 0, 0]), Buffer.alloc(500, 65)]);	// says 1,000, sends 500
  const before = rss(), fds0 = fds();
  const conns = Array.from({length: 2000}, () => {
    const c = net.connect({path: sock});
    c.on('error', () => {});
    c.write(Buffer.concat([head, params]));
    return c;
  });
  await sleep(500);
  const during = rss(), fds1 = fds();
  await waitFor(() => conns.every(c => c.destroyed || c.readableEnded), 15000);
  conns.forEach(c => c.destroy());
  const back = await waitFor(() => fds() <= fds0 + 16, 5000, 50);
  const after = rss(), fds2 = fds();
  say(`2,000 FastCGI connections each holding half a record (llmgw --listen, body_timeout 2s):`);
  say(`  RSS ${before} KB idle -> ${during} KB with them (${f1((during - before) / 2000)} KB each, target <= 16) -> ` +
    `${after} KB once llmgw closed them; descriptors ${fds0} -> ${fds1} -> ${fds2} (target: back to idle)`);
  await g.stop();
  return {per_conn_kb: (during - before) / 2000, back: !!back};
}

// 10,000 slow streams (one delta a second) held open at once through llmgw
// behind nginx (#18): llmgw's memory per open stream, in its threads'
// stacks and the rest, and its threads and memory once they ended.  Each
// stream holds two descriptors in llmgw (the FastCGI connection and the
// upstream socket), so where the open-files hard limit is below 20,000
// and a little (it cannot be raised without CAP_SYS_RESOURCE) the section
// holds as many as it allows and says so.  An llmgw and an nginx of its
// own: max_threads past 10,000, and nginx's workers each with a listening
// socket of their own (reuseport), so that neither takes more streams
// than its descriptors allow.
const SLOW_WANTED = SMOKE ? 50 : 10000;
const SLOW_DELTAS = SMOKE ? 3 : 30;
// They start over 10 s (1,000 a second), as streams of a busy site come,
// not in one instant: a burst of 10,000 connections overflows the
// listening socket's backlog (net.core.somaxconn), and nginx answers 502
// to a FastCGI connect() that finds it full.
const SLOW_SPREAD_MS = SMOKE ? 500 : 10000;
const WORKER_STACK_KB = 256;		// src/llmgw/server.c
async function benchSlowStreams(stub) {
  const hard = +execFileSync('sh', ['-c', 'ulimit -Hn'], {encoding: 'utf8'}).trim() || 1024;
  const n = Math.min(SLOW_WANTED, Math.floor((hard - 200) / 2));
  say(`${n} slow streams held open at once behind nginx, ${SLOW_DELTAS} deltas 1 s apart, started over ` +
    `${SLOW_SPREAD_MS / 1000} s` +
    (n < SLOW_WANTED ? ` (not ${SLOW_WANTED}: the open-files hard limit is ${hard})` : ''));
  const dir = workdir('bench-slow');
  writeConf(dir, {max_threads: n + 500, thread_idle: '3s', listen_mode: '0666'});
  const sock = path.join(dir, 'llmgw.sock');
  const g = await startLlmgw({dir, env: llmgwEnv(dir, stub), listen: sock});
  const ng = await startNginx({dir, socket: sock, connections: n + 1000, reuseport: true});
  if (ng.why) { say(`  not measured: ${ng.why}`); await g.stop(); return null; }
  await request(ng.url('/healthz'));
  await sleep(REST_MS);
  const idle = {...status(g.pid), ...stacks(g.pid, WORKER_STACK_KB)};
  const b = burst({stream: chatStream(ng.url('/chat/stream'))}, n, `[[tokens:${SLOW_DELTAS}]] [[delay:1000]]`,
    1, 0, SLOW_SPREAD_MS);
  const all = await waitFor(async () => await stubOpen(stub) >= n,
    SLOW_DELTAS * 1000, 200);
  await sleep(500);
  const held = {...status(g.pid), ...stacks(g.pid, WORKER_STACK_KB)};
  const r = await b;
  // Back to idle: the pool lets a worker go after thread_idle (3 s).
  await waitFor(() => status(g.pid).threads <= idle.threads + 1, 10000, 100);
  // The last worker to leave trims malloc on its way out: read the RSS
  // once it stops falling.
  let after = status(g.pid);
  await waitFor(async () => { const was = after.rss_kb; await sleep(200); after = status(g.pid);
    return after.rss_kb >= was; }, 3000, 0);
  await g.stop();
  const per = (k) => all ? (held[k] - idle[k]) / n : null;
  const m = {n, wanted: SLOW_WANTED, open: !!all, completed: r.completed, failed: r.failed, errors: r.errors, idle, held,
    after, per_stream_kb: per('rss_kb'), stack_kb: held.stacks ? held.stack_kb / held.stacks : null,
    other_kb: per('other_kb')};
  const errs = errorsText(r);
  say(`  ${all ? 'all open at once' : 'NOT all open at once'}; ${r.completed} completed, ${r.failed} failed${errs}; ` +
    `end p50 ${f1(r.total_p50 / 1000)} s`);
  say(`  llmgw RSS ${idle.rss_kb} -> ${held.rss_kb} KB: ${f1(m.per_stream_kb)} KB per open stream (target <= 16), ` +
    `of which a thread's stack ${f1(m.stack_kb)} KB and the rest ${f1(m.other_kb)} KB`);
  say(`  threads ${idle.threads} -> ${held.threads} -> ${after.threads}, RSS ${after.rss_kb} KB, ` +
    `fds ${idle.fds} -> ${held.fds} -> ${after.fds} once they ended`);
  return m;
}

// Apache mod_fcgid gives each llmgw process one request at a time, so an
// open stream is a process (#18): "n" streams held open at the upstream
// through deploy/apache/llmgw-fcgid.conf, and each process's proportional
// set size (shared pages divided among the processes that map them) and
// private dirty memory; beside it the private dirty memory of a process
// that only made libcurl transfers (bench/curl_floor.c, one in flight):
// the floor of any process that links libcurl and its libraries.
const FCGID_STREAMS = SMOKE ? 4 : 40;
async function benchFcgid(stub) {
  say(`Apache mod_fcgid: ${FCGID_STREAMS} streams held open, one llmgw process each`);
  const dir = workdir('bench-fcgid');
  writeConf(dir, {});
  const env = llmgwEnv(dir, stub);
  const srv = await startApache({dir, snippet: fcgidSnippet(llmgwCopy(dir), env), modules: ['alias', 'fcgid'], spawnsLlmgw: true});
  if (srv.why) { say(`  not measured: ${srv.why}`); return null; }
  const b = burst({stream: chatStream(srv.url('/chat/stream'))},
    FCGID_STREAMS, '[[thinking:20000]] ' + STREAM);
  // mod_fcgid starts processes about a wave a second.
  const all = await waitFor(async () => await stubOpen(stub) >= FCGID_STREAMS,
    90000, 200);
  await sleep(500);
  const pids = llmgwPids(dir);
  const rollup = (pid) => {
    const s = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return {pss: procField(s, 'Pss'), dirty: procField(s, 'Private_Dirty')};
  };
  const m = pids.map(pid => { try { return rollup(pid); } catch (e) { return null; } }).filter(Boolean);
  const mean = (k) => m.length ? m.reduce((a, x) => a + x[k], 0) / m.length : null;
  const threads = pids.map(pid => status(pid).threads);
  const fl = await curlFloor(stub, 1, 0.2);
  const floor = fl ? fl.private_dirty_kb : null;
  await srv.stop();
  await b;
  const r = {open: all ? FCGID_STREAMS : 'not all', processes: pids.length, pss_kb: mean('pss'),
    dirty_kb: mean('dirty'), floor_kb: floor};
  say(`  ${r.open} open, ${r.processes} llmgw processes of ${Math.min(...threads)}-${Math.max(...threads)} threads; ` +
    `per process (= per open stream): PSS ${f1(r.pss_kb)} KB, private dirty ${f1(r.dirty_kb)} KB (target: PSS <= 512)`);
  say(`  a process that only made libcurl transfers (bench/curl_floor, 1 in flight): private dirty ${floor} KB`);
  return r;
}

// Keyed /chat on each store (#17): llmgw + nginx with a key that has a
// budget (each request: the key looked up, a hold taken, a usage row), on a
// SQLite file and on PostgreSQL; CPU of llmgw, nginx and the PostgreSQL
// server's processes; and the latency a key adds over the static token,
// one request at a time.
const LATENCY_ROUNDS = SMOKE ? 50 : 500;

// A key with a budget no run uses up, in the store "env" names: its secret.
async function benchKey(env) {
  const made = await run(ADMIN, ['key', 'create', '--name', 'bench', '--budget-tokens', '1000000000000',
    '--period', 'day'], {env: {...process.env, ...env}});
  return made.stdout.trim();
}
async function benchStore(stub) {
  say(`keyed /chat, SQLite and PostgreSQL (and SQLite under mod_fcgid): wrk, ${CONNECTIONS} connections, ${CHAT_SECONDS} s; a key with a budget;`);
  say(`the latency a key adds over the static token, ${LATENCY_ROUNDS} requests one at a time (p50 / p99)`);
  const missing = postgresMissing();
  if (missing) { say(`not measured: ${missing}`); return null; }
  // With its defaults (fsync, synchronous commit): SQLite syncs too.
  const pg = await startPostgres('bench-pg', {durable: true});
  say(`${pad('', 24)}${lpad('req/s', 9)}${lpad('p50 ms', 9)}${lpad('p99 ms', 9)}${lpad('CPU s/1k', 10)}` +
    `${lpad('errors', 8)}${lpad('web', 8)}${lpad('llmgw', 8)}${lpad('db', 8)}${lpad('+key p50/p99 ms', 18)}`);
  const out = {};
  for (const store of ['SQLite', 'PostgreSQL']) {
    const dir = workdir(`bench-store-${store.toLowerCase()}`);
    writeConf(dir, {...LLMGW_CONF, listen_mode: '0666'});
    const env = llmgwEnv(dir, stub, store === 'PostgreSQL' ? {LLMGW_DB: pg.uri} : {});
    const secret = await benchKey(env);
    const sock = path.join(dir, 'llmgw.sock');
    const g = await startLlmgw({dir, env, listen: sock});
    const ng = await startNginx({dir, socket: sock, connections: 1000});
    if (ng.why) { say(`not measured: ${ng.why}`); await g.stop(); return null; }
    const url = ng.url('/chat');
    const latency = async (token) => {
      const ms = [];
      for (let i = 0; i < LATENCY_ROUNDS; i++) {
        const t0 = process.hrtime.bigint();
        await request(url, {method: 'POST', headers: {authorization: `Bearer ${token}`}, body: {message: 'hi'}});
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      ms.sort((a, b) => a - b);
      return {p50: ms[Math.floor(ms.length * 0.5)], p99: ms[Math.floor(ms.length * 0.99)]};
    };
    const plain = await latency(TOKEN), keyed = await latency(secret);
    const web = family(ng.proc.pid), gw = [g.pid], db = store === 'PostgreSQL' ? family(pg.pid()) : [];
    const c0 = [ticks(web), ticks(gw), ticks(db)];
    const r = await wrk(dir, url, chatBody, secret);
    const per1k = (i, pids) => r.requests ? (ticks(pids) - c0[i]) / HZ / r.requests * 1000 : null;
    const x = {...r, web: per1k(0, web), llmgw: per1k(1, gw), db: per1k(2, db),
      added_p50: keyed.p50 - plain.p50, added_p99: keyed.p99 - plain.p99};
    x.cpu = x.web + x.llmgw + x.db;
    out[store] = x;
    say(`${pad(`llmgw + nginx, ${store}`, 24)}${lpad(f1(x.rps), 9)}${lpad(f1(x.p50), 9)}${lpad(f1(x.p99), 9)}` +
      `${lpad(f3(x.cpu), 10)}${lpad(x.bad + (x.errors ? '+' : ''), 8)}${lpad(f3(x.web), 8)}${lpad(f3(x.llmgw), 8)}` +
      `${lpad(f3(x.db), 8)}${lpad(`${f1(x.added_p50)} / ${f1(x.added_p99)}`, 18)}`);
    await ng.stop();
    await g.stop();
  }
  out.fcgid = await storeUnderFcgid(stub);
  const a = out.SQLite, b = out.PostgreSQL;
  say(`PostgreSQL / SQLite: req/s ${ratio(b.rps, a.rps)} (target >= 0.5), CPU per request ${ratio(b.cpu, a.cpu)}`);
  if (out.fcgid)
    say(`SQLite under mod_fcgid / behind nginx: req/s ${ratio(out.fcgid.rps, a.rps)}`);
  return out;
}

// The same keyed /chat on SQLite under Apache mod_fcgid, one request per
// llmgw process (deploy/apache/llmgw-fcgid.conf): each request takes its
// hold and writes its usage row in transactions of its own process, so no
// two requests share a commit, and the processes meet at SQLite's lock.
async function storeUnderFcgid(stub) {
  const dir = workdir('bench-store-fcgid');
  writeConf(dir, {});
  const env = llmgwEnv(dir, stub);
  const secret = await benchKey(env);
  // llmgw runs as Apache's user: the database the key went into is its.
  const [uid, gid] = ['-u', '-g'].map(o => +execFileSync('id', [o, 'www-data'], {encoding: 'utf8'}));
  for (const f of fs.readdirSync(dir).filter(x => x.startsWith(path.basename(env.LLMGW_DB))))
    fs.chownSync(path.join(dir, f), uid, gid);
  const srv = await startApache({dir, snippet: fcgidSnippet(llmgwCopy(dir), env), modules: ['alias', 'fcgid'], spawnsLlmgw: true});
  if (srv.why) { say(`not measured under mod_fcgid: ${srv.why}`); return null; }
  // mod_fcgid starts its processes about a wave a second: a run to start them.
  if (!SMOKE) await wrk(dir, srv.url('/chat'), chatBody, secret);
  const web = family(srv.proc.pid), c0 = [ticks(web), ticks(llmgwPids(dir))];
  const r = await wrk(dir, srv.url('/chat'), chatBody, secret);
  const per1k = (a, b) => r.requests ? (b - a) / HZ / r.requests * 1000 : null;
  const x = {...r, web: per1k(c0[0], ticks(web)), llmgw: per1k(c0[1], ticks(llmgwPids(dir)))};
  say(`${pad('Apache mod_fcgid, SQLite', 24)}${lpad(f1(x.rps), 9)}${lpad(f1(x.p50), 9)}${lpad(f1(x.p99), 9)}` +
    `${lpad(f3(x.web + x.llmgw), 10)}${lpad(x.bad + (x.errors ? '+' : ''), 8)}${lpad(f3(x.web), 8)}${lpad(f3(x.llmgw), 8)}`);
  await srv.stop();
  return x;
}

function ratios(targets, floor, fcgid, slow, streamFloors) {
  const by = (name) => targets.find(x => x.name === name);
  const fa = by('FastAPI, 2 workers'), px = by('nginx proxy (no logic)');
  say();
  say('Ratios (llmgw / FastAPI 2 workers, llmgw / nginx proxy) and targets');
  for (const x of targets.filter(y => y.llmgw)) {
    say(`${x.name}:`);
    chatRatios(x, fa, px, floor);
    for (const n of GEN_LEVELS) {
      const g = x.gen && x.gen[n], pg = px && px.gen && px.gen[n];
      if (!g || !pg) continue;
      say(`  ${n} generating streams: CPU per token vs the proxy's per event ${ratio(g.us, pg.us)} (target <= 2.5), ` +
        `of which llmgw ${ratio(g.llmgw_us, pg.us)} (target <= 1); streams/s ${ratio(g.per_second, pg.per_second)}, ` +
        `end p50 ${ratio(g.total_p50, pg.total_p50)}, p99 ${ratio(g.total_p99, pg.total_p99)} (targets within 10%)`);
      const fl = streamFloors[n];
      if (fl)
        say(`    libcurl alone receiving the same streams ${ratio(fl.us, pg.us)} of the proxy's CPU per event` +
          (fl.relay_us ? `, and writing each read on ${ratio(fl.relay_us, pg.us)}; llmgw's part vs that ` +
            `${ratio(g.llmgw_us, fl.relay_us)}` : ''));
    }
    for (const n of [1, ...LEVELS]) {
      const s = x.streams && x.streams[n], m = x.memory && x.memory[n];
      if (!s) continue;
      say(`  ${n === 1 ? 'one at a time' : `${n} streams`}: ${s.failed} failed; added TTFT p99 ` +
        `${f1(s.added_p99)} ms (target <= 1)` + (m ? `; ${f1(m.per_stream_kb)} KB per open stream (target <= 40)` : ''));
      if (fa && fa.streams && fa.streams[n])
        say(`    vs FastAPI: added TTFT p50 ${f1(s.added_p50)} vs ${f1(fa.streams[n].added_p50)} ms, ` +
          `failed ${s.failed} vs ${fa.streams[n].failed}`);
    }
  }
  if (slow)
    say(`${slow.n} slow streams behind nginx: ${slow.failed} failed (target 0), ${f1(slow.per_stream_kb)} KB per open ` +
      `stream (target <= 16), threads ${slow.idle.threads} -> ${slow.held.threads} -> ${slow.after.threads} ` +
      '(target: back to idle)');
  if (fcgid && fcgid.pss_kb)
    say(`mod_fcgid: PSS per open stream ${f1(fcgid.pss_kb)} KB (target <= 512); libcurl's floor alone, private dirty ` +
      `${fcgid.floor_kb} KB`);
}

// Its answers are in its table (errors: what was not 2xx; a store that
// cannot keep up answers 503 past database_wait).
function storeOnly(started, stores) {
  if (SAVE) save('bench-store', started);
  t.ok(stores !== undefined, 'keyed /chat measured, or why not said');
}

function chatOnly(started, targets, floor) {
  const by = (name) => targets.find(x => x.name === name);
  say();
  say('Ratios (llmgw / FastAPI 2 workers, llmgw / nginx proxy) and targets');
  for (const x of targets.filter(y => y.llmgw)) {
    say(`${x.name}:`);
    chatRatios(x, by('FastAPI, 2 workers'), by('nginx proxy (no logic)'), floor);
  }
  if (SAVE) save('bench-chat', started);
  const bad = targets.filter(x => x.llmgw).map(x => x.chatResult.bad).reduce((a, b) => a + b, 0);
  t.ok(bad === 0, `every llmgw /chat answer was 2xx (${bad} were not)`);
}

t.main(async () => {
  for (const tool of ['wrk']) if (!which(tool)) t.skipAll(`${tool} is not installed (Debian package ${tool})`);
  const started = new Date();
  const stub = await startStub({STUB_QUIET: '1', STUB_TOKENS: '20'});
  const {targets, skipped} = STORE_ONLY ? {targets: [], skipped: []} : await startTargets(stub);
  const cpu = os.cpus();
  say(`llmgw benchmark${SMOKE ? ' (smoke run)' : ''}, ${started.toISOString()}`);
  say(`machine: ${cpu.length} x ${cpu[0].model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}; ` +
    `open files ${execFileSync('sh', ['-c', 'ulimit -n'], {encoding: 'utf8'}).trim()}`);
  // The commit measured, where there is one (not in a release tarball).
  const commit = (() => {
    try {
      return execFileSync('git', ['-C', BUILD, 'describe', '--always', '--dirty'],
        {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']}).trim();
    } catch (e) { return 'not a git checkout'; }
  })();
  say(`llmgw: ${execFileSync(LLMGW, ['--version'], {encoding: 'utf8'}).trim()} (${commit}), ` +
    `settings ${JSON.stringify(LLMGW_CONF)} (otherwise the defaults; access log on)`);
  say(`stub upstream: tests/stub/upstream.js, 20 tokens per reply`);
  for (const s of skipped) say(`not measured: ${s}`);
  say();
  if (STORE_ONLY) return storeOnly(started, await benchStore(stub));
  const floor = await benchChat(targets, stub);
  if (CHAT_ONLY) return chatOnly(started, targets, floor);
  say();
  await benchStreams(stub, targets);
  say();
  const streamFloors = await benchStreamCpu(targets.filter(x => x.llmgw || x.proxy), stub);
  say();
  const half = await benchHalfSent(stub);
  say();
  const slow = await benchSlowStreams(stub);
  say();
  const fcgid = await benchFcgid(stub);
  say();
  await benchStore(stub);
  say();
  ratios(targets, floor, fcgid, slow, streamFloors);
  const failures = targets.filter(x => x.llmgw).flatMap(x => [...Object.values(x.streams || {}),
    ...Object.values(x.gen || {})].map(s => s.failed));
  const chatBad = targets.filter(x => x.llmgw).map(x => x.chatResult.bad).reduce((a, b) => a + b, 0);
  if (SAVE) save('bench', started);
  t.ok(targets.some(x => x.llmgw), 'llmgw was measured');
  t.ok(chatBad === 0, `every llmgw /chat answer was 2xx (${chatBad} were not)`);
  t.ok(failures.every(f => f === 0), `no llmgw stream failed (${failures.join(', ')})`);
  t.ok(half.per_conn_kb < 16 && half.back, `half-sent connections: ${f1(half.per_conn_kb)} KB each, and let go`);
  t.ok(!slow || (slow.open && slow.failed === 0), `slow streams: all open at once, none failed`);
});
