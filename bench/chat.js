// /chat under load (wrk): each target's requests/s, latency and CPU per
// request; for llmgw also the web server's part and its own, its own by
// thread, and the floors they are measured against: libcurl alone making
// the same upstream calls, and llmgw and its web server answering a
// request for no route (a 404: taking a request and answering it, with
// no work between).
'use strict';
const {HZ, ticks, threadTicks, switches} = require('./proc');
const {say, f3, f1, ratio, pad, lpad, median} = require('./report');
const {SMOKE, CONNECTIONS, CHAT_SECONDS, run, wrk, curlFloor} = require('./tools');

// The machine's speed drifts by 10% and more within minutes: /chat runs in
// rounds, every target once per round, and the figures are the medians.
const CHAT_ROUNDS = SMOKE ? 1 : 3;
const THREADS = ['workers', 'upstream', 'usage', 'spool'];

// The serving processes' CPU per 1,000 requests to "url" (/chat's by
// default); for llmgw also the web server's part and llmgw's, and
// llmgw's by thread.
async function chatOnce(x, url = x.chat.url) {
  if (!SMOKE)		// warm: connections, pages, the pool
    await run('wrk', ['-t1', '-c4', '-d1s', '-s', '/dev/null', url]).catch(() => {});
  const web = x.llmgw ? x.webPids() : x.pids(), gw = x.llmgw ? x.llmgwPids() : [];
  const pids = [...web, ...gw];
  const c0 = ticks(pids), w0 = ticks(web), t0 = threadTicks(gw), s0 = switches(gw);
  const r = await wrk(x.dir, url, x.chat.body, x.chat.token);
  const per1k = (a, b) => r.requests ? (b - a) / HZ / r.requests * 1000 : null;
  const t1 = threadTicks(gw), all = t => THREADS.reduce((a, k) => a + t[k], 0);
  return {...r, cpu_per_1k: per1k(c0, ticks(pids)),
    switches: x.llmgw && r.requests ? (switches(gw) - s0) / r.requests : null,
    web_per_1k: x.llmgw ? per1k(w0, ticks(web)) : null, llmgw_per_1k: x.llmgw ? per1k(all(t0), all(t1)) : null,
    threads: x.llmgw ? Object.fromEntries(THREADS.map(k => [k, per1k(t0[k], t1[k])])) : null};
}

// libcurl alone making the upstream calls of /chat: CPU per transfer, in
// the same units as the table, once per round.
async function curlFloorOnce(stub) {
  const o = await curlFloor(stub, CONNECTIONS, CHAT_SECONDS);
  return o && o.transfers > 0 && o.failed === 0 ?
    {cpu_per_1k: o.cpu_us / 1000, rps: o.per_second, switches: o.switches} : null;
}

async function benchChat(targets, stub) {
  say(`/chat: wrk, ${CONNECTIONS} connections, ${CHAT_SECONDS} s each; CPU of the serving processes per 1000 requests`);
  if (CHAT_ROUNDS > 1)
    say(`${CHAT_ROUNDS} rounds, each target once per round (each round starting one later); medians, and the CPU range`);
  say('(for llmgw also split: the web server\'s part, llmgw\'s part)');
  say(`${pad('', 24)}${lpad('req/s', 9)}${lpad('p50 ms', 9)}${lpad('p99 ms', 9)}${lpad('CPU s/1k', 10)}` +
    `${lpad('errors', 8)}${CHAT_ROUNDS > 1 ? lpad('CPU range', 14) : ''}${lpad('web', 8)}${lpad('llmgw', 8)}`);
  for (const x of targets) x.chatRuns = [];
  const floors = [];
  for (let round = 0; round < CHAT_ROUNDS; round++) {
    for (let i = 0; i < targets.length; i++) {
      const x = targets[(i + round) % targets.length];
      x.chatRuns.push(await chatOnce(x));
    }
    const fl = await curlFloorOnce(stub);
    if (fl) floors.push(fl);
  }
  for (const x of targets) {
    const runs = x.chatRuns, med = (k) => median(runs.map(z => z[k]));
    const cpus = runs.map(z => z.cpu_per_1k).filter(c => c !== null);
    x.chatResult = {rps: med('rps'), p50: med('p50'), p99: med('p99'), cpu_per_1k: med('cpu_per_1k'),
      web_per_1k: med('web_per_1k'), llmgw_per_1k: med('llmgw_per_1k'),
      threads: x.llmgw ? Object.fromEntries(THREADS.map(k => [k, median(runs.map(z => z.threads[k]))])) : null,
      switches: x.llmgw ? median(runs.map(z => z.switches)) : null,
      bad: runs.reduce((a, z) => a + z.bad, 0), errors: runs.map(z => z.errors).filter(Boolean).join('; ')};
    const c = x.chatResult;
    say(`${pad(x.name, 24)}${lpad(f1(c.rps), 9)}${lpad(f1(c.p50), 9)}${lpad(f1(c.p99), 9)}` +
      `${lpad(f3(c.cpu_per_1k), 10)}${lpad(c.bad + (c.errors ? '+' : ''), 8)}` +
      (CHAT_ROUNDS > 1 ? lpad(cpus.length ? `${f3(Math.min(...cpus))}-${f3(Math.max(...cpus))}` : '', 14) : '') +
      (x.llmgw ? `${lpad(f3(c.web_per_1k), 8)}${lpad(f3(c.llmgw_per_1k), 8)}` : ''));
  }
  const floor = floors.length ? {cpu_per_1k: median(floors.map(z => z.cpu_per_1k)), rps: median(floors.map(z => z.rps)),
    switches: median(floors.map(z => z.switches))} : null;
  if (floor)
    say(`${pad('libcurl alone (floor)', 24)}${lpad(f1(floor.rps), 9)}${lpad('', 18)}${lpad(f3(floor.cpu_per_1k), 10)}` +
      '   the upstream calls of /chat and nothing else, 50 in flight (bench/curl_floor.c)');
  await benchNoRoute(targets.filter(x => x.llmgw), floor);
  return floor;
}

// llmgw's part of /chat by thread (medians of the rounds), and a request
// for no route through the same web server, once per target: what taking
// a request and answering it costs the two, with no work between.  With
// each, llmgw's context switches per request: a thread that sleeps and is
// woken, which every hand-off between threads is, costs more CPU than
// most of the work (a 404 spends half of llmgw's in its one).
async function benchNoRoute(targets, floor) {
  if (!targets.length) return;
  say();
  say('llmgw\'s part of /chat by thread (CPU s/1k, medians): its workers, the upstream loop (libcurl\'s side),');
  say('the usage writer, the spool\'s closer, and its threads\' context switches per request; then a request');
  say('for no route (POST /no-such-route, 404), the same wrk, once: the web server\'s part and llmgw\'s of');
  say('taking a request and answering it, and llmgw\'s context switches' +
    (floor && floor.switches !== undefined ? ` (libcurl alone: ${f3(floor.switches)} per transfer)` : ''));
  say(`${pad('', 24)}${lpad('workers', 9)}${lpad('upstream', 9)}${lpad('usage', 9)}${lpad('spool', 9)}` +
    `${lpad('switches', 9)}${lpad('404 req/s', 11)}${lpad('web', 8)}${lpad('llmgw', 8)}${lpad('switches', 9)}`);
  for (const x of targets) {
    const th = x.chatResult.threads;
    const n = x.noRoute = await chatOnce(x, x.chat.url.replace(/\/chat$/, '/no-such-route'));
    say(`${pad(x.name, 24)}${THREADS.map(k => lpad(f3(th[k]), 9)).join('')}${lpad(f3(x.chatResult.switches), 9)}` +
      `${lpad(f1(n.rps), 11)}${lpad(f3(n.web_per_1k), 8)}${lpad(f3(n.llmgw_per_1k), 8)}${lpad(f3(n.switches), 9)}`);
  }
}

// A ratio of CPU per request in each round (targets measured minutes
// apart drift), as "median (lowest-highest)".
function roundRatios(x, y) {
  const rs = x.chatRuns.map((z, i) => y.chatRuns[i] && z.cpu_per_1k && y.chatRuns[i].cpu_per_1k ?
    z.cpu_per_1k / y.chatRuns[i].cpu_per_1k : null).filter(v => v !== null);
  if (rs.length < 2) return '';
  return `  (rounds ${Math.min(...rs).toFixed(2)}-${Math.max(...rs).toFixed(2)})`;
}

// /chat's ratios of llmgw target "x" against FastAPI "fa" and the proxy
// "px" (either may be missing), with libcurl's "floor".
function chatRatios(x, fa, px, floor) {
  const c = x.chatResult;
  if (fa) {
    say(`  req/s vs FastAPI:        ${ratio(c.rps, fa.chatResult.rps)}x   (target >= 5)`);
    say(`  CPU/request vs FastAPI:  ${ratio(c.cpu_per_1k, fa.chatResult.cpu_per_1k)}    (target <= 0.10)` +
      roundRatios(x, fa));
    say(`  p50 / p99 vs FastAPI:    ${ratio(c.p50, fa.chatResult.p50)} / ${ratio(c.p99, fa.chatResult.p99)}`);
  }
  if (!px) return;
  say(`  CPU/request vs proxy:    ${ratio(c.cpu_per_1k, px.chatResult.cpu_per_1k)}    (target <= 2)` +
    roundRatios(x, px));
  say(`    of which the web server ${ratio(c.web_per_1k, px.chatResult.cpu_per_1k)}, llmgw ` +
    `${ratio(c.llmgw_per_1k, px.chatResult.cpu_per_1k)}` +
    (floor ? `; libcurl alone, making the same upstream calls, ${ratio(floor.cpu_per_1k, px.chatResult.cpu_per_1k)}` : ''));
  if (floor) {
    say(`    llmgw's part vs the web server's plus libcurl's: ${ratio(c.llmgw_per_1k, c.web_per_1k + floor.cpu_per_1k)}` +
      '    (target <= 1)');
    const n = x.noRoute;
    if (n && n.llmgw_per_1k)
      say(`    llmgw's part vs its own 404 plus libcurl's: ${ratio(c.llmgw_per_1k, n.llmgw_per_1k + floor.cpu_per_1k)}; ` +
        `llmgw's 404 vs the web server's ${ratio(n.llmgw_per_1k, n.web_per_1k)}`);
  }
  say(`  req/s vs proxy:          ${ratio(c.rps, px.chatResult.rps)}`);
}

module.exports = {benchChat, chatRatios};
