// Operations: graceful shutdown (and its deadline), reload on SIGHUP,
// keep-alive comments, /metrics, the access log, mod_fcgid's one worker.
'use strict';
const {spawn, spawnSync} = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');
const t = require('../lib/tap');
const {fcgiRequest} = require('../lib/fcgi');
const {request, sse, freePort, waitFor, sleep} = require('../lib/http');
const {LLMGW, TOKEN, API_KEY, workdir, startStub, startLighttpd, startLlmgw, llmgwEnv, writeConf, usageRow,
  which, sanitizerReports} = require('../lib/servers');

const refused = (port) => new Promise(resolve => {
  const c = net.connect(port, '127.0.0.1');
  c.on('connect', () => { c.destroy(); resolve(false); });
  c.on('error', e => resolve(e.code === 'ECONNREFUSED'));
});

t.main(async () => {
  const dir = workdir('ops');
  const stub = await startStub();
  const env = llmgwEnv(dir, stub);
  const auth = {authorization: `Bearer ${TOKEN}`};

  // A stream is in flight once the upstream replies to it (under valgrind
  // that takes a while).
  const inFlight = () => waitFor(async () => (await (await fetch(`${stub.url}/stats`)).json()).open > 0, 20000);

  // llmgw on its own TCP socket with lighttpd in front; a fresh pair each time.
  const pair = async (settings) => {
    writeConf(dir, {retry_base: '50ms', ...settings});
    const port = await freePort();
    const g = await startLlmgw({dir, env, listen: `127.0.0.1:${port}`});
    const srv = await startLighttpd({dir, backend: {port}});
    if (!srv) t.skipAll('lighttpd is not installed (Debian package lighttpd)');
    return {g, srv, port};
  };

  await t.test('SIGTERM: the stream in flight completes, new connections are refused', async () => {
    const {g, srv, port} = await pair({shutdown_timeout: '60s'});
    const s = sse(srv.url('/chat/stream'), {message: '[[tokens:8]] [[delay:250]] in flight'}, {headers: auth});
    t.ok(await inFlight(), 'the stream is in flight');
    const t0 = Date.now();
    g.proc.kill('SIGTERM');
    t.ok(await waitFor(() => refused(port), 200, 20), 'a new connection to llmgw is refused at once');
    const r = await s;
    t.ok(r.status === 200 && r.done && r.complete && r.events.length === 9, 'the stream in flight completes, [DONE] and all');
    t.ok(await waitFor(() => g.exited, 30000), 'llmgw exits after it');
    t.is(g.code, 0, 'with status 0');
    // The stream has 2 s to go; waiting out shutdown_timeout would be 60.
    t.ok(Date.now() - t0 < 30000, `as its last stream ends, not at shutdown_timeout (${Date.now() - t0} ms)`);
    t.ok(await usageRow(env.LLMGW_DB, r.headers['x-request-id']), 'its usage row was written');
    await srv.stop();
  });

  await t.test('SIGTERM past shutdown_timeout: streams end with an error event', async () => {
    const {g, srv} = await pair({shutdown_timeout: '1s'});
    const s = sse(srv.url('/chat/stream'), {message: '[[tokens:150]] [[delay:200]] too long'}, {headers: auth});
    t.ok(await inFlight(), 'the stream is in flight');
    await sleep(600);		/* a few deltas on their way */
    const t0 = Date.now();
    g.proc.kill('SIGTERM');
    const r = await s;
    t.ok(r.status === 200 && !r.done, 'the stream did not finish');
    t.is(r.error && JSON.parse(r.error).type, 'shutting_down', 'it ended with an error event: shutting_down');
    t.ok(await waitFor(() => g.exited, 30000) && g.code === 0, 'llmgw exits 0');
    // The stream had 30 s to go; the deadline was 1 s.
    t.ok(Date.now() - t0 < 15000, `at the deadline, not the stream's end (${Date.now() - t0} ms)`);
    const u = await usageRow(env.LLMGW_DB, r.headers['x-request-id']);
    t.ok(u && u.partial === 1 && u.output_tokens > 0, `usage recorded, partial (${u && u.output_tokens} tokens)`);
    await srv.stop();
  });

  await t.test('SIGHUP reloads; a bad file is refused and the old one stays', async () => {
    const {g, srv} = await pair({model_max_tokens: 'claude-sonnet-4-6:2000'});
    const ask = (n) => request(srv.url('/chat'), {method: 'POST', headers: auth, body: {message: 'x', max_tokens: n}});
    t.is((await ask(3000)).status, 422, 'max_tokens 3000 over the limit of 2000');
    // The workers keep their request headers between requests: a reload
    // must reach them (anthropic_version here; api_key alike, unless the
    // environment sets it, as it does for these tests).
    await Promise.all(Array.from({length: 8}, () => ask(100)));
    const versions = async () => (await stub.log()).slice(-8).map(e => e.version);
    t.ok((await versions()).every(v => v === '2023-06-01'), 'anthropic-version 2023-06-01');
    const long = sse(srv.url('/chat/stream'), {message: '[[tokens:6]] [[delay:200]]'}, {headers: auth});
    writeConf(dir, {retry_base: '50ms', model_max_tokens: 'claude-sonnet-4-6:5000', anthropic_version: '2024-01-01'});
    g.proc.kill('SIGHUP');
    await waitFor(() => /configuration reloaded/.test(g.log()), 5000);
    t.is((await ask(3000)).status, 200, 'after SIGHUP the new limit applies');
    await Promise.all(Array.from({length: 8}, () => ask(100)));
    t.ok((await versions()).every(v => v === '2024-01-01'), 'and the new anthropic-version, from every worker');
    const r = await long;
    t.ok(r.done && r.complete, 'a stream running across the reload was not disturbed');
    fs.writeFileSync(path.join(dir, 'llmgw.conf'), 'model_max_tokens = claude-sonnet-4-6:1000\nthreads = lots\n');
    g.proc.kill('SIGHUP');
    await waitFor(() => /reload refused/.test(g.log()), 5000);
    t.like(g.log(), /reload refused, keeping the old configuration: .*llmgw\.conf:2: threads: "lots" is not a whole number/,
      'a bad file: refused with file:line');
    t.is((await ask(3000)).status, 200, 'and the old configuration stays in force');
    t.ok(!g.exited, 'llmgw keeps running');
    await srv.stop();
    t.is(await g.stop(), 0, 'SIGTERM: 0');
  });

  await t.test('keep-alive comments while the model thinks', async () => {
    const {g, srv} = await pair({keepalive_interval: '1s'});
    const r = await sse(srv.url('/chat/stream'), {message: '[[thinking:3500]] [[tokens:2]]'}, {headers: auth});
    t.ok(r.comments >= 2, `${r.comments} ": keep-alive" comments before the first token`);
    t.like(r.raw, /^: keep-alive\n\n/, 'the stream starts with one');
    t.ok(r.done && r.text === 'tok0 tok1 ', 'then the reply as usual');
    await stub.reset();
    const gone = await sse(srv.url('/chat/stream'), {message: '[[thinking:20000]] [[tokens:2]] gone'},
      {headers: auth, abortAt: 1500});
    t.ok(gone.aborted && gone.comments >= 1, 'a client that hangs up while the model thinks');
    const seen = await waitFor(async () => {
      const log = await stub.log();
      return log.length && log[0].closed_at ? log[0] : null;
    }, 5000);
    t.ok(seen && seen.client_closed_early, 'is noticed at the next keep-alive: the upstream transfer is stopped');
    const u = await usageRow(env.LLMGW_DB, gone.headers['x-request-id']);
    t.ok(u && u.disconnected === 1, 'and its usage row says disconnected');
    await srv.stop();
    await g.stop();
  });

  await t.test('/metrics without a token: loopback peers only', async () => {
    const {g, srv, port} = await pair({});
    t.is((await request(srv.url('/metrics'))).status, 200, 'through lighttpd from 127.0.0.1: 200');
    const get = (remote) => fcgiRequest({port}, {REQUEST_METHOD: 'GET', SCRIPT_NAME: '', PATH_INFO: '/metrics',
      ...(remote ? {REMOTE_ADDR: remote} : {})}, '');
    for (const ok of ['127.0.0.1', '127.9.8.7', '::1', '::ffff:127.0.0.1'])
      t.is((await get(ok)).status, 200, `REMOTE_ADDR ${ok}: 200`);
    for (const no of ['203.0.113.9', '10.0.0.1', '::ffff:10.0.0.1', '2001:db8::1', 'localhost', null]) {
      const r = await get(no);
      t.ok(r.status === 403 && /loopback/.test(r.json && r.json.detail), `REMOTE_ADDR ${no}: 403`);
    }
    await g.stop();
    await srv.stop();
  });

  await t.test('/metrics', async () => {
    const {g, srv, port} = await pair({metrics_token: 'metrics-secret-1', retries: 1});
    const far = await fcgiRequest({port}, {REQUEST_METHOD: 'GET', SCRIPT_NAME: '', PATH_INFO: '/metrics',
      REMOTE_ADDR: '203.0.113.9', HTTP_AUTHORIZATION: 'Bearer metrics-secret-1'}, '');
    t.is(far.status, 200, 'with metrics_token set, any peer with the token: 200');
    await request(srv.url('/chat'), {method: 'POST', headers: auth, body: {message: '[[tokens:3]] [[usage:10,3,1,2]]'}});
    await sse(srv.url('/chat/stream'), {message: '[[tokens:4]]'}, {headers: auth});
    await request(srv.url('/chat'), {method: 'POST', headers: auth, body: {message: '[[status:529]]'}});
    await request(srv.url('/chat'), {method: 'POST', body: {message: 'no token'}});
    t.is((await request(srv.url('/metrics'))).status, 401, 'needs metrics_token when one is set');
    // Counters are bumped once a request has ended: wait for the last one's.
    const r = await waitFor(async () => {
      const x = await request(srv.url('/metrics'), {headers: {authorization: 'Bearer metrics-secret-1'}});
      return x.text.includes('llmgw_requests_total{route="/chat",status="401"}') ? x : null;
    }, 5000) || await request(srv.url('/metrics'), {headers: {authorization: 'Bearer metrics-secret-1'}});
    t.is(r.status, 200, '200 with it');
    t.like(r.headers['content-type'], /^text\/plain; version=0\.0\.4/, 'Prometheus text format');
    // Parse it: every sample line is name{labels} value, every name has HELP and TYPE.
    const lines = r.text.trim().split('\n');
    const bad = lines.filter(l => !l.startsWith('#') &&
      !/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+]+$/.test(l));
    t.is(bad, [], 'every line parses');
    const samples = {};
    for (const l of lines.filter(l => !l.startsWith('#'))) {
      const i = l.lastIndexOf(' ');
      samples[l.slice(0, i)] = +l.slice(i + 1);
    }
    const names = new Set(Object.keys(samples).map(k => k.replace(/\{.*$/, '').replace(/_(bucket|sum|count)$/, '')));
    const typed = new Set(lines.filter(l => l.startsWith('# TYPE')).map(l => l.split(' ')[2]));
    t.is([...names].filter(n => !typed.has(n)), [], 'each metric has a TYPE');
    t.is(samples['llmgw_requests_total{route="/chat",status="200"}'], 1, 'requests by route and status');
    t.is(samples['llmgw_requests_total{route="/chat/stream",status="200"}'], 1, 'the stream');
    t.is(samples['llmgw_requests_total{route="/chat",status="503"}'], 1, 'the 503');
    t.is(samples['llmgw_requests_total{route="/chat",status="401"}'], 1, 'the 401');
    t.is(samples['llmgw_upstream_responses_total{status="529"}'], 1, 'upstream statuses');
    t.is(samples['llmgw_upstream_retries_total'], 1, 'retries (retries = 1 here)');
    t.is(samples['llmgw_tokens_total{model="claude-sonnet-4-6",kind="output"}'], 7, 'tokens by model and kind');
    t.is(samples['llmgw_tokens_total{model="claude-sonnet-4-6",kind="cache_read"}'], 2, 'cache tokens too');
    t.is(samples['llmgw_time_to_first_token_seconds_count'], 2, 'a TTFT histogram');
    t.ok(samples['llmgw_time_to_first_token_seconds_bucket{le="+Inf"}'] === 2, 'with +Inf bucket');
    t.is(samples['llmgw_requests_in_flight'], 0, 'nothing in flight now');
    t.ok(samples['llmgw_worker_threads{state="busy"}'] >= 1, 'worker threads, busy (this scrape) and idle');
    t.is(samples['llmgw_spool_write_failures_total'], 0, 'spool write failures');
    await srv.stop();
    await g.stop();
    writeConf(dir, {retry_base: '50ms', retries: 1});
  });

  await t.test('access log', async () => {
    const {g, srv} = await pair({retries: 1});
    const r = await sse(srv.url('/chat/stream'), {message: '[[tokens:2]] secret words'}, {headers: {...auth, 'x-request-id': 'acc-1'}});
    t.ok(r.done, 'a stream');
    await request(srv.url('/nowhere'), {headers: {'x-request-id': 'acc-2'}});
    await srv.stop();
    await g.stop();
    const lines = g.log().split('\n').filter(l => / access: /.test(l));
    const one = lines.find(l => l.includes('id=acc-1'));
    t.ok(one, 'one access line per request');
    const kv = {};
    for (const m of (one || '').split(' access: ')[1].matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) kv[m[1]] = m[2];
    t.is([kv.method, kv.path, kv.status, kv.key, kv.model, kv.output_tokens, kv.disconnected],
      ['POST', '/chat/stream', '200', 'static', 'claude-sonnet-4-6', '2', '0'], 'key=value fields');
    t.ok(+kv.ttft_ms >= 0 && +kv.total_ms >= +kv.ttft_ms && /^req_stub_/.test(kv.upstream_request_id), 'times and the upstream id');
    t.like(lines.find(l => l.includes('id=acc-2')), /path=\/nowhere status=404/, 'a 404 gets a line too');
    const all = g.log();
    t.ok(!all.includes(TOKEN) && !all.includes(API_KEY), 'no token or API key anywhere in the log');
    t.ok(!all.includes('secret words'), 'no message text');
  });

  await t.test('mod_fcgid sockets: one worker thread', async () => {
    if (!which('spawn-fcgi')) return t.skip('mod_fcgid detection', 'spawn-fcgi is not installed');
    const sockdir = path.join(dir, 'fcgid');
    fs.mkdirSync(sockdir);
    const sock = path.join(sockdir, '4242.7');
    const log = fs.openSync(path.join(dir, 'fcgid.log'), 'w');
    const p = spawn('spawn-fcgi', ['-n', '-s', sock, '--', LLMGW], {env: {...process.env, ...env},
      stdio: ['ignore', log, log]});
    await waitFor(() => fs.existsSync(sock), 5000);
    const srv = await startLighttpd({dir, backend: {socket: sock}});
    const r = await request(srv.url('/chat'), {method: 'POST', headers: auth, body: {message: 'x'}});
    t.is(r.status, 200, 'served through a <pid>.<n> socket (spawn-fcgi standing in for mod_fcgid)');
    const m = await request(srv.url('/metrics'));
    t.like(m.text, /llmgw_worker_threads\{state="busy"\} 1\nllmgw_worker_threads\{state="idle"\} 0/,
      'one worker thread in all');
    await srv.stop();
    p.kill('SIGTERM');
    await waitFor(() => p.exitCode !== null, 10000);
    t.like(fs.readFileSync(path.join(dir, 'fcgid.log'), 'utf8'), /serving FastCGI with 1 to 1 threads \(mod_fcgid/,
      'and it says why');
  });

  t.is(sanitizerReports(dir), [], 'no sanitizer reports');
});
