// Open N streams at once and follow each to its end: how many completed,
// how many failed, time to first text and to the end (p50, p99).  Runs in
// a process of its own so that the benchmark's bookkeeping does not slow
// the client down.  Understands llmgw's /chat/stream ("data: <text>") and
// the Messages API's events (content_block_delta), for the upstream
// itself and a proxy in front of it.
//
// usage: node sse_burst.js URL N BODY_JSON [TOKEN] [ROUNDS] [WARMUP]
// ROUNDS (default 1) bursts one after the other, after WARMUP (default 0)
// that are not counted; prints one JSON line.
'use strict';
const http = require('http');

const [url, n, body, token, rounds = '1', warmup = '0'] = process.argv.slice(2);
const u = new URL(url);
const agent = new http.Agent({keepAlive: false, maxSockets: Infinity});
const ttft = [], total = [];
let completed = 0, failed = 0;
const errors = {};

function one() {
  return new Promise(resolve => {
    const t0 = process.hrtime.bigint();
    const headers = {'content-type': 'application/json', 'content-length': Buffer.byteLength(body)};
    if (token) headers.authorization = `Bearer ${token}`;
    let first = null, buf = '', ended = false;
    const fail = (why) => { if (!ended) { ended = true; failed++; errors[why] = (errors[why] || 0) + 1; resolve(); } };
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
        if (first === null) { failed++; errors['no text'] = (errors['no text'] || 0) + 1; return resolve(); }
        completed++;
        ttft.push(Number(first - t0) / 1e6);
        total.push(Number(t1 - t0) / 1e6);
        resolve();
      });
      res.on('error', e => fail(e.code || 'response error'));
    });
    req.on('error', e => fail(e.code || 'request error'));
    req.setTimeout(120000, () => { req.destroy(); fail('timeout'); });
    req.end(body);
  });
}

const pct = (a, p) => {
  if (!a.length) return null;
  const s = [...a].sort((x, y) => x - y);
  return +s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2);
};

(async () => {
  for (let i = 0; i < +warmup; i++)
    await Promise.all(Array.from({length: +n}, one));
  ttft.length = total.length = completed = failed = 0;
  for (const k of Object.keys(errors)) delete errors[k];
  const t0 = Date.now();
  for (let i = 0; i < +rounds; i++)
    await Promise.all(Array.from({length: +n}, one));
  console.log(JSON.stringify({n: +n, rounds: +rounds, completed, failed, errors, seconds: (Date.now() - t0) / 1000,
    ttft_p50: pct(ttft, 0.5), ttft_p99: pct(ttft, 0.99), total_p50: pct(total, 0.5), total_p99: pct(total, 0.99)}));
})();
