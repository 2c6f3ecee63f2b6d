// The programs the benchmark runs besides the servers: wrk for /chat's
// load, and bench/curl_floor (libcurl alone: the floor of llmgw's
// upstream side).
'use strict';
const {execFile} = require('child_process');
const fs = require('fs');
const path = require('path');
const {SRC} = require('../tests/lib/servers');

const SMOKE = process.argv.includes('--smoke');
const CONNECTIONS = 50;
const CHAT_SECONDS = SMOKE ? 1 : 8;

function run(cmd, args, opts = {}) {
  return new Promise(resolve => execFile(cmd, args, {maxBuffer: 1 << 24, ...opts},
    (err, stdout, stderr) => resolve({err, stdout, stderr})));
}

// wrk at CONNECTIONS connections: requests/s, latency p50/p99 in ms.
async function wrk(dir, url, body, token) {
  const script = path.join(dir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  fs.writeFileSync(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\n` +
    'wrk.headers["Content-Type"] = "application/json"\n' +
    (token ? `wrk.headers["Authorization"] = "Bearer ${token}"\n` : ''));
  const r = await run('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${CHAT_SECONDS}s`, '--latency', '-s', script, url]);
  const out = r.stdout;
  const ms = (s) => { const m = /([\d.]+)(us|ms|s)/.exec(s); return m ? +m[1] * {us: 0.001, ms: 1, s: 1000}[m[2]] : NaN; };
  const line = (p) => (new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out) || [])[1];
  const n = +(/(\d+) requests in/.exec(out) || [0, 0])[1];
  const non2xx = +(/Non-2xx or 3xx responses: (\d+)/.exec(out) || [0, 0])[1];
  const errs = /Socket errors: (.*)/.exec(out);
  return {rps: +(/Requests\/sec:\s+([\d.]+)/.exec(out) || [0, 0])[1], p50: ms(line(50)), p99: ms(line(99)),
    requests: n, bad: non2xx, errors: errs ? errs[1] : ''};
}

// libcurl alone (bench/curl_floor.c): "inflight" transfers at a time to
// the stub for "secs" seconds, of "body" (or /chat's), and with "relay"
// each piece written on to a socket; its JSON line, or null if it is not
// built or said nothing.
async function curlFloor(stub, inflight, secs, body, relay) {
  const bin = path.join(SRC, 'bench', 'curl_floor');
  if (!fs.existsSync(bin)) return null;
  const r = await run(bin, [...(relay ? ['-r'] : []), `${stub.url}/v1/messages`, String(inflight), String(secs),
    ...(body ? [body] : [])]);
  try { return JSON.parse(r.stdout); } catch (e) { return null; }
}

module.exports = {SMOKE, CONNECTIONS, CHAT_SECONDS, run, wrk, curlFloor};
