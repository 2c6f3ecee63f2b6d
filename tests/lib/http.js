// HTTP helpers for the tests: plain requests, and an SSE client that keeps
// the arrival time of every event.
'use strict';
const http = require('http');
const net = require('net');

// Under valgrind (LLMGW_VALGRIND=1) everything llmgw does takes several
// times longer, under ThreadSanitizer (LLMGW_SLOW=2) about twice as long:
// deadlines and timeouts stretch by this much.
const SLOW = process.env.LLMGW_VALGRIND ? 5 : +(process.env.LLMGW_SLOW || 1);

function request(url, {method = 'GET', headers = {}, body, timeout = 30000} = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body :
      Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = {...headers};
    if (data !== undefined && h['content-type'] === undefined && h['Content-Type'] === undefined)
      h['content-type'] = 'application/json';
    if (data !== undefined) h['content-length'] = data.length;
    const req = http.request({host: u.hostname, port: u.port, path: u.pathname + u.search,
      method, headers: h, agent: false}, res => {
      const chunks = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch (e) { json = undefined; }
        resolve({status: res.statusCode, headers: res.headers, text, json, raw});
      });
      res.on('error', reject);
    });
    req.setTimeout(timeout * SLOW, () => req.destroy(new Error(`timeout after ${timeout} ms: ${method} ${url}`)));
    req.on('error', reject);
    req.end(data);
  });
}

// POST and read an SSE stream.  Options: headers, abortAfter (hang up after
// that many data events), abortAt (hang up after that many ms), timeout
// (of silence).  Resolves with status, headers, events
// [{event, data, t}] (t: ms since the request began), text (the data of all
// plain events joined), done ([DONE] seen), error (event: error data), and
// complete (the HTTP response ended properly, not cut off).
function sse(url, body, {headers = {}, abortAfter, abortAt, timeout = 60000} = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const out = {status: 0, headers: {}, events: [], text: '', done: false, error: null,
                 aborted: false, raw: ''};
    let buf = '', ev = {event: '', data: [], has: false}, finished = false;
    const finish = () => { if (!finished) { finished = true; out.ended = ms(); resolve(out); } };
    const req = http.request({host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
      agent: false, headers: {'content-type': 'application/json', 'content-length': data.length, ...headers}},
    res => {
      out.status = res.statusCode;
      out.headers = res.headers;
      res.setEncoding('utf8');
      res.on('data', chunk => {
        out.raw += chunk;
        if (res.statusCode !== 200) return;
        buf += chunk;
        // Lines end in CRLF, LF or CR; a CR at the very end may be half a CRLF.
        let m;
        while ((m = /\r\n|\n|\r(?!$)/.exec(buf)) !== null) {
          const line = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          if (line === '') {
            if (ev.has) {
              const e = {event: ev.event, data: ev.data.join('\n'), t: ms()};
              out.events.push(e);
              if (e.event === 'error') out.error = e.data;
              else if (e.data === '[DONE]') out.done = true;
              else if (e.event === '') out.text += e.data;
              const plain = out.events.filter(x => x.event === '' && x.data !== '[DONE]').length;
              if (abortAfter !== undefined && plain >= abortAfter && !out.aborted) {
                out.aborted = true;
                req.destroy();
                res.destroy();
                return finish();
              }
            }
            ev = {event: '', data: [], has: false};
            continue;
          }
          if (line.startsWith(':')) { out.comments = (out.comments || 0) + 1; continue; }
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          let value = i < 0 ? '' : line.slice(i + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'data') { ev.data.push(value); ev.has = true; }
          else if (field === 'event') ev.event = value;
        }
      });
      res.on('end', () => { out.complete = true; finish(); });
      res.on('close', finish);
      res.on('error', () => finish());
    });
    req.setTimeout(timeout * SLOW, () => { out.timedOut = true; req.destroy(); finish(); });
    if (abortAt !== undefined)
      setTimeout(() => { if (!finished) { out.aborted = true; req.destroy(); finish(); } }, abortAt);
    req.on('error', e => { if (out.aborted) finish(); else if (!finished) { out.neterror = String(e); finish(); } });
    req.end(data);
  });
}

// A free TCP port on 127.0.0.1 (a race with other programs is possible but
// the servers retry on a new port if bind fails).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

function waitPort(port, ms = 15000, host = '127.0.0.1') {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const c = net.connect(port, host);
      c.on('connect', () => { c.destroy(); resolve(); });
      c.on('error', () => {
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${host}:${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

async function waitFor(fn, ms = 10000, step = 50) {
  const deadline = Date.now() + ms * SLOW;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) return v;
    await sleep(step);
  }
}

module.exports = {SLOW, request, sse, freePort, waitPort, sleep, waitFor};
