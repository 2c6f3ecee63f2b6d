// Soak: mixed traffic for a long time against lighttpd + llmgw + the stub
// and llmgw-spoold, with random client disconnects and upstream faults.
// Samples llmgw's RSS, open fds and threads and the database's size,
// and reports start and end side by side, with requests served and any
// outcome that was not the one the fault should give.  Not part of CI.
//
// usage: node bench/soak.js [MINUTES] [CONCURRENCY]     (default 30, 16)
// The report is printed and kept in bench/results/soak-<date>.txt.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const t = require('../tests/lib/tap');
const {request, sse, sleep} = require('../tests/lib/http');
const {setup, startSpoold, llmgwPids, sql} = require('../tests/lib/servers');

const minutes = +(process.argv[2] || 30);
const concurrency = +(process.argv[3] || 16);

// What each kind of request asks the stub for, and what it must give.
const kinds = [
  {w: 40, name: 'stream', run: (c) => c.stream('[[tokens:20]] [[delay:20]]'), ok: r => r.status === 200 && r.done},
  {w: 20, name: 'chat', run: (c) => c.chat('[[tokens:10]]'), ok: r => r.status === 200},
  {w: 10, name: 'client hangs up', run: (c) => c.stream('[[tokens:40]] [[delay:20]]', {abortAfter: 1 + Math.floor(Math.random() * 10)}),
    ok: r => r.aborted},
  {w: 6, name: '529', run: (c) => c.chat('[[status:529]]'), ok: r => r.status === 503},
  {w: 6, name: '429', run: (c) => c.chat('[[status:429]] [[retry-after:30]]'), ok: r => r.status === 429},
  {w: 6, name: 'cut', run: (c) => c.stream('[[tokens:10]] [[cut:3]]'), ok: r => r.status === 200 && r.error},
  {w: 4, name: 'malformed', run: (c) => c.stream('[[tokens:10]] [[malformed:2]]'), ok: r => r.status === 200 && r.error},
  {w: 4, name: 'stall', run: (c) => c.stream('[[tokens:10]] [[stall:2]]'), ok: r => r.status === 200 && r.error},
  {w: 4, name: '422', run: (c) => c.chat(''), ok: r => r.status === 422},
];
const total = kinds.reduce((s, k) => s + k.w, 0);
const pick = () => { let x = Math.random() * total; for (const k of kinds) { if ((x -= k.w) < 0) return k; } return kinds[0]; };

function sample(pid, db) {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => +(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st) || [0, 0])[1];
  let dbBytes = 0;
  try { dbBytes = fs.statSync(db).size; } catch (e) { /* none */ }
  return {rss_kb: kb('VmRSS'), fds: fs.readdirSync(`/proc/${pid}/fd`).length, threads: kb('Threads'), db_bytes: dbBytes};
}

t.main(async () => {
  const {dir, url, auth, env, db} = await setup('soak', {conf: {idle_timeout: '1s', retries: 1,
    retry_base: '50ms', spool_rescan: '1s'}});
  const spoold = startSpoold({dir, env});
  // Each request named, so that its spool record can be found at the end.
  let seq = 0;
  const named = () => ({...auth, 'x-request-id': `soak-${seq++}`});
  const c = {
    chat: (message) => request(url('/chat'), {method: 'POST', headers: named(), body: {message}}),
    stream: (message, o = {}) => sse(url('/chat/stream'), {message}, {headers: named(), ...o}),
  };
  await c.chat('warm up');
  const pid = llmgwPids(dir)[0];
  const samples = [{t: 0, ...sample(pid, db)}];
  const counts = {};
  let served = 0, unexpected = 0;
  const t0 = Date.now(), end = t0 + minutes * 60000;
  const worker = async () => {
    while (Date.now() < end) {
      const k = pick();
      let r;
      try { r = await k.run(c); } catch (e) { r = {status: 0, error: String(e)}; }
      served++;
      counts[k.name] = (counts[k.name] || 0) + 1;
      if (!k.ok(r)) { unexpected++; if (unexpected <= 10) t.diag(`unexpected for ${k.name}: ${r.status} ${r.error || ''}`); }
    }
  };
  const ticker = setInterval(() => {
    samples.push({t: Math.round((Date.now() - t0) / 1000), ...sample(pid, db)});
  }, 30000);
  await Promise.all(Array.from({length: concurrency}, worker));
  clearInterval(ticker);
  await sleep(3000);			// let the spool drain, threads idle out
  // Every request leaves one record, delivered once into request_log.
  const spool = path.join(dir, 'spool');
  const waiting = () => ['new', 'cur', 'tmp'].reduce((n, d) => {
    try { return n + fs.readdirSync(path.join(spool, d)).filter(f => !f.startsWith('.')).length; } catch (e) { return n; }
  }, 0);
  for (let i = 0; i < 300 && waiting() > 0; i++) await sleep(100);
  const got = sql(db, "SELECT count(*) AS ids, coalesce(sum(n > 1), 0) AS dups FROM (SELECT count(*) AS n FROM request_log WHERE request_id LIKE 'soak-%' GROUP BY request_id)")[0];
  const lost = seq - got.ids, duplicated = got.dups;
  unexpected += lost + duplicated;
  samples.push({t: Math.round((Date.now() - t0) / 1000), ...sample(pid, db)});
  const first = samples[0], mid = samples[Math.min(2, samples.length - 1)], last = samples[samples.length - 1];
  const lines = [
    `llmgw soak: ${minutes} min, ${concurrency} clients, ${new Date().toISOString()}`,
    `machine: ${os.cpus().length} x ${os.cpus()[0].model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.release()}`,
    `requests: ${served} (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')})`,
    `records delivered by llmgw-spoold: ${got.ids} of ${seq} requests, ${lost} lost, ${duplicated} duplicated`,
    `unexpected outcomes (lost and duplicated records among them): ${unexpected}`,
    '',
    'sample        start      at 1 min   end',
    ...['rss_kb', 'fds', 'threads', 'db_bytes'].map(k =>
      `${k.padEnd(12)}${String(first[k]).padStart(8)}${String(mid[k]).padStart(11)}${String(last[k]).padStart(9)}`),
    '',
    'every sample (s, rss_kb, fds, threads, db_bytes):',
    ...samples.map(s => `${s.t} ${s.rss_kb} ${s.fds} ${s.threads} ${s.db_bytes}`),
  ];
  const report = lines.join('\n') + '\n';
  process.stdout.write(report.split('\n').map(l => `# ${l}`).join('\n') + '\n');
  const out = path.join(__dirname, 'results', `soak-${new Date().toISOString().slice(0, 16).replace(/:/g, '')}.txt`);
  fs.mkdirSync(path.dirname(out), {recursive: true});
  fs.writeFileSync(out, report);
  t.ok(unexpected === 0, `no unexpected outcomes; report in ${path.relative(process.cwd(), out)}`);
  await spoold.stop();
});
