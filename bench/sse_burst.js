// Open N streams at once and follow each to its end: how many completed,
// how many failed, time to first text and to the end (p50, p99).  Runs in
// a process of its own so that the benchmark's bookkeeping does not slow
// the client down.  Understands llmgw's /chat/stream ("data: <text>") and
// the Messages API's events (content_block_delta), for the upstream
// itself and a proxy in front of it.
//
// usage: node sse_burst.js URL N BODY_JSON [TOKEN] [ROUNDS] [WARMUP] [SPREAD_MS]
// ROUNDS (default 1) bursts one after the other, after WARMUP (default 0)
// that are not counted; prints one JSON line.  With SPREAD_MS, a round's
// N streams start evenly over that many milliseconds instead of at once.
//    or: node sse_burst.js --turns TARGETS_JSON ROUNDS WARMUP
// One stream at a time to each of several targets in turn ([{name, url,
// body, token}], each round starting one later), so that every target
// meets the machine's slow moments alike; prints a JSON line per target.
'use strict';
const http = require('http');

const agent = new http.Agent({keepAlive: false, maxSockets: Infinity});

function newStats(name) {
  return {name, ttft: [], total: [], completed: 0, failed: 0, errors: {}};
}

// One stream to target "x" ({url, body, token}), counted in "st".
function one(x, st) {
  const u = new URL(x.url);
  return new Promise(resolve => {
    const t0 = process.hrtime.bigint();
    const headers = {'content-type': 'application/json', 'content-length': Buffer.byteLength(x.body)};
    if (x.token) headers.authorization = `Bearer ${x.token}`;
    let first = null, buf = '', ended = false;
    const fail = (why) => { if (!ended) { ended = true; st.failed++; st.errors[why] = (st.errors[why] || 0) + 1; resolve(); } };
    const req = http.request({host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers}, res => {
      if (res.statusCode !== 200) { res.resume(); return fail(`HTTP ${res.statusCode}`); }
      res.setEncoding('utf8');
      res.on('data', d => {
        if (first !== null) { buf = ''; return; }
        buf += d;
        if (/^data: (?!\[DONE\])/m.test(buf) && (!/^event:/m.test(buf) || /content_block_delta/.test(buf)))
          first = process.hrtime.bigint();
      });
      res.on('end', () => {
        if (ended) return;
        ended = true;
        const t1 = process.hrtime.bigint();
        if (first === null) { st.failed++; st.errors['no text'] = (st.errors['no text'] || 0) + 1; return resolve(); }
        st.completed++;
        st.ttft.push(Number(first - t0) / 1e6);
        st.total.push(Number(t1 - t0) / 1e6);
        resolve();
      });
      res.on('error', e => fail(e.code || 'response error'));
    });
    req.on('error', e => fail(e.code || 'request error'));
    req.setTimeout(120000, () => { req.destroy(); fail('timeout'); });
    req.end(x.body);
  });
}

const pct = (a, p) => {
  if (!a.length) return null;
  const s = [...a].sort((x, y) => x - y);
  return +s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2);
};

const summary = (st, n, rounds, seconds) => ({name: st.name, n, rounds, completed: st.completed, failed: st.failed,
  errors: st.errors, seconds, ttft_p50: pct(st.ttft, 0.5), ttft_p99: pct(st.ttft, 0.99),
  total_p50: pct(st.total, 0.5), total_p99: pct(st.total, 0.99)});

async function burst([url, n, body, token, rounds = '1', warmup = '0', spreadMs = '0']) {
  const x = {url, body, token};
  const start = (i, st) => +spreadMs ? new Promise(r => setTimeout(r, i * +spreadMs / +n)).then(() => one(x, st)) : one(x, st);
  for (let i = 0; i < +warmup; i++)
    await Promise.all(Array.from({length: +n}, () => one(x, newStats())));
  const st = newStats();
  const t0 = Date.now();
  for (let i = 0; i < +rounds; i++)
    await Promise.all(Array.from({length: +n}, (_, j) => start(j, st)));
  console.log(JSON.stringify(summary(st, +n, +rounds, (Date.now() - t0) / 1000)));
}

async function turns([targetsJson, rounds, warmup]) {
  const xs = JSON.parse(targetsJson);
  const stats = xs.map(x => newStats(x.name));
  const t0 = Date.now();
  for (let i = 0; i < +warmup + +rounds; i++)
    for (let j = 0; j < xs.length; j++) {
      const k = (i + j) % xs.length;
      await one(xs[k], i < +warmup ? newStats() : stats[k]);
    }
  for (const st of stats) console.log(JSON.stringify(summary(st, 1, +rounds, (Date.now() - t0) / 1000)));
}

(process.argv[2] === '--turns' ? turns(process.argv.slice(3)) : burst(process.argv.slice(2)));
