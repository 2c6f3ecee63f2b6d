// The worker pool: idle workers wait in llmgw's epoll set themselves; the
// pool grows with concurrent requests, shrinks after thread_idle, and
// always leaves one worker watching while others are busy.  Behind nginx
// with fastcgi_keep_conn, so kept connections are re-armed too.
'use strict';
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {request, sse, sleep, waitFor} = require('../lib/http');
const {TOKEN, workdir, startStub, startLlmgw, llmgwEnv, writeConf} = require('../lib/servers');
const {startNginx} = require('../lib/webservers');

t.main(async () => {
  const stub = await startStub();
  const dir = workdir('pool');
  writeConf(dir, {listen_mode: '0666', threads: 1, thread_idle: '300ms'});
  const sock = path.join(dir, 'llmgw.sock');
  const g = await startLlmgw({dir, env: llmgwEnv(dir, stub), listen: sock});
  const srv = await startNginx({dir, socket: sock});
  if (srv.why) t.skipAll(srv.why);
  const auth = {authorization: `Bearer ${TOKEN}`};
  const threads = async () => {
    const m = (await request(srv.url('/metrics'))).text;
    const n = (state) => +(new RegExp(`llmgw_worker_threads\\{state="${state}"\\} (\\d+)`).exec(m) || [0, NaN])[1];
    return n('busy') + n('idle');
  };

  await t.test('the pool grows with concurrent streams and shrinks after thread_idle', async () => {
    const streams = Array.from({length: 8}, () =>
      sse(srv.url('/chat/stream'), {message: '[[tokens:10]] [[delay:100]]'}, {headers: auth}));
    const grown = await waitFor(async () => (await threads()) >= 9, 5000, 50);
    t.ok(grown, 'eight streams and a scrape at once: nine workers or more');
    const done = await Promise.all(streams);
    t.ok(done.every(s => s.status === 200 && s.done && !s.error), 'every stream complete');
    const shrunk = await waitFor(async () => (await threads()) <= 2, 10000, 200);
    t.ok(shrunk, 'back to the one of "threads = 1" (and the scrape\'s) once idle');
  });

  await t.test('a burst starts one worker per connection, not more', async () => {
    // The worker that accepts takes the rest of the burst from the
    // backlog and starts workers for it; workers on their way must count,
    // or each connection they find would start yet another.
    const osThreads = () => +/Threads:\s+(\d+)/.exec(fs.readFileSync(`/proc/${g.pid}/status`, 'utf8'))[1];
    await waitFor(async () => (await threads()) <= 2, 10000, 200);
    const before = osThreads();
    let peak = before;
    const watch = setInterval(() => { peak = Math.max(peak, osThreads()); }, 5);
    const n = 100;
    const streams = await Promise.all(Array.from({length: n}, () =>
      sse(srv.url('/chat/stream'), {message: '[[tokens:5]] [[delay:100]]'}, {headers: auth})));
    clearInterval(watch);
    t.ok(streams.every(s => s.status === 200 && s.done && !s.error), `${n} streams at once, all complete`);
    t.ok(peak - before <= n + 4, `at most one more thread per stream, and a few (${peak - before} more for ${n})`);
  });

  await t.test('threads are named for top -H and ps -L', async () => {
    const dir = `/proc/${g.pid}/task`;
    const names = new Set(fs.readdirSync(dir).map(tid => {
      try { return fs.readFileSync(`${dir}/${tid}/comm`, 'utf8').trim(); } catch (e) { return ''; }
    }));
    t.ok(['llmgw-worker', 'llmgw-upstream', 'llmgw-usage', 'llmgw-spool'].every(n => names.has(n)),
      `llmgw-worker, llmgw-upstream, llmgw-usage and llmgw-spool among ${[...names].sort().join(', ')}`);
  });

  await t.test('a long stream does not leave new requests unwatched', async () => {
    // One worker holds a stream; the pool shrinks around it, but keeps
    // one worker waiting, so a request is served before the stream ends.
    let streamEnd = null;
    const long = sse(srv.url('/chat/stream'), {message: '[[tokens:30]] [[delay:100]]'}, {headers: auth})
      .then(s => { streamEnd = Date.now(); return s; });
    await sleep(1200);
    const r = await request(srv.url('/chat'), {method: 'POST', headers: auth, body: {message: 'meanwhile'}});
    const chatEnd = Date.now();
    t.is(r.status, 200, 'a request while the stream runs: 200');
    t.ok(streamEnd === null || chatEnd < streamEnd, 'answered before the stream ended');
    t.is((await long).status, 200, 'and the stream completes');
  });

  await srv.stop();
  t.is(await g.stop(), 0, 'llmgw stops cleanly');
});
