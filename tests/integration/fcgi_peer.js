// Whatever a peer on llmgw's FastCGI socket sends: a local user, a
// service tricked into connecting, a broken front end.  Against llmgw on
// its own unix socket, on TCP, and spawned by lighttpd (on the socket
// lighttpd made for it), each case is followed by a real request that
// must succeed, from the same process.  Then what peers that never
// finish cost: connections holding half a record, and peers that drip.
'use strict';
const t = require('../lib/tap');
const fs = require('fs');
const net = require('net');
const path = require('path');
const crypto = require('crypto');
const {request, sse, waitFor, freePort, sleep} = require('../lib/http');
const {fcgiRequest} = require('../lib/fcgi');
const {spawnSync} = require('child_process');
const {TOKEN, VALGRIND, LLMGW, workdir, startStub, startLlmgw, startLighttpd, llmgwEnv, writeConf, usageRow} =
  require('../lib/servers');

const BEGIN = 1, ABORT = 2, END = 3, PARAMS = 4, STDIN = 5, STDOUT = 6, GET_VALUES = 9, UNKNOWN_TYPE = 11;
const BODY_TIMEOUT_MS = 2000;
const HALF_TIMEOUT_MS = 8000;		// the half-sent connections' llmgw

function record(type, id, content = Buffer.alloc(0), {version = 1, pad = 0} = {}) {
  const h = Buffer.from([version, type, id >> 8, id & 255, content.length >> 8, content.length & 255, pad, 0]);
  return Buffer.concat([h, content, Buffer.alloc(pad)]);
}
function len(n) {
  if (n < 128) return Buffer.from([n]);
  const b = Buffer.alloc(4); b.writeUInt32BE((n | 0x80000000) >>> 0); return b;
}
function pairs(obj) {
  return Buffer.concat(Object.entries(obj).map(([k, v]) =>
    Buffer.concat([len(Buffer.byteLength(k)), len(Buffer.byteLength(v)), Buffer.from(k), Buffer.from(v)])));
}
const begin = (id, keep = 0) => record(BEGIN, id, Buffer.from([0, 1, keep, 0, 0, 0, 0, 0]));
const ENV = {GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'POST', SCRIPT_NAME: '', PATH_INFO: '/chat',
  CONTENT_TYPE: 'application/json', HTTP_AUTHORIZATION: `Bearer ${TOKEN}`};

// Each record llmgw sent back: {type, id, content}.
function records(buf) {
  const out = [];
  for (let off = 0; off + 8 <= buf.length;) {
    const n = buf.readUInt16BE(off + 4), pad = buf[off + 6];
    out.push({type: buf[off + 1], id: buf.readUInt16BE(off + 2), content: buf.subarray(off + 8, off + 8 + n)});
    off += 8 + n + pad;
  }
  return out;
}

// Send "bytes" (a Buffer, or pieces "drip" ms apart), then wait up to
// "wait" ms: {closed, ms, data, records}.
function raw(addr, bytes, {wait = 1500, drip = 0} = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(addr);
    let data = Buffer.alloc(0), closed = false;
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({closed, ms: Date.now() - t0, data, records: records(data)});
    };
    const timer = setTimeout(done, wait);
    sock.on('data', d => { data = Buffer.concat([data, d]); });
    sock.on('error', () => {});
    sock.on('close', () => { closed = true; done(); });
    sock.on('connect', async () => {
      for (const piece of Array.isArray(bytes) ? bytes : [bytes]) {
        if (closed) return;
        sock.write(piece);
        if (drip) await sleep(drip);
      }
    });
  });
}

const stdoutText = (r) => Buffer.concat(r.records.filter(x => x.type === STDOUT).map(x => x.content)).toString();
const statusOf = (r) => { const m = /^Status: (\d+)/m.exec(stdoutText(r)); return m ? +m[1] : 0; };

// The cases, each against one target: {addr, pid(), good(), log()}.
async function cases(name, tg) {
  const alive = async (what) => {
    const r = await tg.good();
    t.ok(r === 200 && tg.pid() === tg.pid0, `${name}: ${what}; then a request is served (${r}) by the same process`);
  };

  await t.test(`${name}: 150 connections, each a PARAMS record of 200 random bytes`, async () => {
    // What aborted llmgw under libfcgi: lengths in the random bytes claim
    // up to 2 GB, which it tried to allocate.
    const all = await Promise.all(Array.from({length: 150}, () =>
      raw(tg.addr, Buffer.concat([begin(1), record(PARAMS, 1, crypto.randomBytes(200)), record(PARAMS, 1)]),
        {wait: BODY_TIMEOUT_MS * 3})));
    t.ok(all.every(r => r.closed), `${name}: all 150 closed by llmgw (${all.filter(r => r.closed).length})`);
    await alive('150 random PARAMS');
  });

  await t.test(`${name}: records of any version, type, id, length and padding`, async () => {
    let r = await raw(tg.addr, Buffer.concat([record(BEGIN, 1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0]), {version: 2})]));
    t.ok(r.closed, `${name}: version 2: connection closed`);
    r = await raw(tg.addr, Buffer.concat([begin(1), record(STDOUT, 1, Buffer.from('hi'))]));
    t.ok(r.closed, `${name}: a STDOUT record from the peer: closed`);
    r = await raw(tg.addr, Buffer.concat([begin(1), record(99, 1, Buffer.from('x'))]));
    t.ok(r.closed, `${name}: type 99 for the request: closed`);
    r = await raw(tg.addr, Buffer.concat([record(42, 0, Buffer.from('?'), {pad: 255})]), {wait: 500});
    t.ok(!r.closed && r.records.length === 1 && r.records[0].type === UNKNOWN_TYPE && r.records[0].content[0] === 42,
      `${name}: management type 42 with 255 bytes of padding: UNKNOWN_TYPE, still connected`);
    r = await raw(tg.addr, Buffer.concat([begin(0)]));
    t.ok(r.closed, `${name}: BEGIN_REQUEST for id 0: closed`);
    r = await raw(tg.addr, Buffer.concat([begin(7), record(PARAMS, 7, pairs(ENV)), record(PARAMS, 9, Buffer.alloc(65535), {pad: 255}),
      record(PARAMS, 7), record(STDIN, 7, Buffer.from('{"message":"[[tokens:1]]"}')), record(STDIN, 7)]), {wait: 5000});
    t.ok(statusOf(r) === 200 && r.records.some(x => x.type === END && x.id === 7),
      `${name}: records of another id (64 KB, padded) are skipped; request 7 answered ${statusOf(r)}`);
    await alive('odd records');
  });

  await t.test(`${name}: lengths that lie`, async () => {
    let r = await raw(tg.addr, Buffer.concat([begin(1),
      record(PARAMS, 1, Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]), Buffer.from('ABCDE')])), record(PARAMS, 1)]));
    t.ok(r.closed, `${name}: a name of 2 GB claimed in a record of 10 bytes: closed`);
    r = await raw(tg.addr, Buffer.concat([begin(1), record(PARAMS, 1, Buffer.from([4, 100, 65, 66, 67, 68, 1, 2])), record(PARAMS, 1)]));
    t.ok(r.closed, `${name}: a value of 100 bytes with 2 there: closed`);
    r = await raw(tg.addr, Buffer.concat([begin(1), record(PARAMS, 1, Buffer.from([3, 1, 65, 0, 66, 67])), record(PARAMS, 1)]));
    t.ok(r.closed, `${name}: a NUL in a name: closed`);
    const big = Buffer.concat(Array.from({length: 4}, (_, i) => record(PARAMS, 1, pairs({[`HTTP_X_${i}`]: 'v'.repeat(60000)}))));
    r = await raw(tg.addr, Buffer.concat([begin(1), big, record(PARAMS, 1, pairs(ENV)), record(PARAMS, 1), record(STDIN, 1)]),
      {wait: 5000});
    t.is(statusOf(r), 431, `${name}: 240 KB of parameters (64 KB allowed): 431`);
    await alive('lying lengths');
  });

  await t.test(`${name}: GET_VALUES asking the same name twenty times`, async () => {
    // libfcgi wrote each answer into 64 bytes on its stack.
    const ask = pairs(Object.fromEntries(Array.from({length: 20}, (_, i) => [i % 2 ? 'FCGI_MAX_CONNS' : 'FCGI_MPXS_CONNS', ''])));
    const r = await raw(tg.addr, record(GET_VALUES, 0, ask), {wait: 500});
    const text = r.records.length === 1 ? r.records[0].content.toString('latin1') : '';
    t.ok(text.split('FCGI_MAX_CONNS').length === 2 && text.split('FCGI_MPXS_CONNS').length === 2,
      `${name}: one answer, each name once (${JSON.stringify(text)})`);
    await alive('GET_VALUES');
  });

  await t.test(`${name}: a second request on a busy connection, and aborts`, async () => {
    let r = await raw(tg.addr, Buffer.concat([begin(1), begin(2), record(PARAMS, 1, pairs(ENV)), record(PARAMS, 1),
      record(STDIN, 1, Buffer.from('{"message":"[[tokens:1]]"}')), record(STDIN, 1)]), {wait: 5000});
    t.ok(r.records.some(x => x.type === END && x.id === 2 && x.content[4] === 1) && statusOf(r) === 200,
      `${name}: BEGIN_REQUEST for id 2 while 1 is in progress: CANT_MPX_CONN, and 1 is answered`);
    r = await raw(tg.addr, Buffer.concat([begin(1), record(PARAMS, 1, pairs(ENV)), begin(1)]));
    t.ok(r.closed, `${name}: BEGIN_REQUEST again for id 1: closed`);
    r = await raw(tg.addr, Buffer.concat([begin(1), record(PARAMS, 1, pairs(ENV)), record(ABORT, 1)]));
    t.ok(r.records.some(x => x.type === END && x.id === 1) && statusOf(r) === 0,
      `${name}: ABORT_REQUEST before the parameters end: END_REQUEST, no answer`);
    await alive('aborts');
  });

  await t.test(`${name}: ABORT_REQUEST in the middle of a stream stops the upstream transfer`, async () => {
    await tg.stub.reset();
    const id = `abort-${name.replace(/\W/g, '')}-${Date.now()}`;
    const env = {...ENV, PATH_INFO: '/chat/stream', HTTP_X_REQUEST_ID: id};
    const body = '{"message":"[[tokens:200]] [[delay:100]]"}';
    const r = await raw(tg.addr, [Buffer.concat([begin(1), record(PARAMS, 1, pairs(env)), record(PARAMS, 1),
      record(STDIN, 1, Buffer.from(body)), record(STDIN, 1)]), record(ABORT, 1)], {drip: 600, wait: 6000});
    t.ok(r.records.some(x => x.type === END && x.id === 1), `${name}: the request ended (END_REQUEST)`);
    const gone = await waitFor(async () => { const l = await tg.stub.log(); return l.length && l[0].closed_at ? l[0] : null; }, 10000);
    t.ok(gone && gone.client_closed_early && gone.deltas < 100,
      `${name}: the upstream transfer stopped after ${gone && gone.deltas} of 200 deltas`);
    const u = await waitFor(() => usageRow(tg.db, id), 5000);
    t.ok(u && u.disconnected === 1 && u.partial === 1, `${name}: the usage row says disconnected, partial`);
  });

  await t.test(`${name}: a peer that stops reading its stream holds up no other stream`, async () => {
    // The upstream loop thread writes a stream's deltas itself while its
    // worker sleeps and there is room in the socket to the web server;
    // were it to write into a full one, it would wait there, and every
    // stream with it.  Small deltas a millisecond apart: each is relayed,
    // until the socket is full.
    const DELTAS = 3000;
    const env = {...ENV, PATH_INFO: '/chat/stream'};
    const sock = net.connect(tg.addr);
    const chunks = [];
    sock.on('error', () => {});
    sock.pause();
    sock.write(Buffer.concat([begin(1), record(PARAMS, 1, pairs(env)), record(PARAMS, 1),
      record(STDIN, 1, Buffer.from(`{"message":"[[tokens:${DELTAS}]] [[delay:1]]"}`)), record(STDIN, 1)]));
    await sleep(1000);		// its socket full, its worker waiting on it
    const t0 = Date.now();
    const others = await Promise.all(Array.from({length: 4}, () =>
      fcgiRequest(tg.addr, env, '{"message":"[[tokens:20]] [[delay:10]]"}', {timeout: 20000}).catch(e => ({status: e.message}))));
    const ms = Date.now() - t0;
    t.ok(others.every(r => r.status === 200 && (r.body.match(/^data: /gm) || []).length === 21),
      `${name}: four other streams were served whole meanwhile (${others.map(r => r.status).join(', ')})`);
    // Alone, each takes about 0.2 s; behind a loop thread waiting on the
    // stalled peer they would wait for it to read.
    t.ok(ms < 8000, `${name}: in ${ms} ms`);
    const whole = await new Promise(resolve => {
      const timer = setTimeout(() => resolve(null), 30000);
      sock.on('data', d => {
        chunks.push(d);
        const recs = records(Buffer.concat(chunks));
        if (recs.some(x => x.type === END)) { clearTimeout(timer); resolve(recs); }
      });
      sock.resume();
    });
    sock.destroy();
    const text = whole && Buffer.concat(whole.filter(x => x.type === STDOUT).map(x => x.content)).toString();
    const got = text ? (text.match(/^data: (?!\[DONE\])/gm) || []).length : -1;
    t.is(got, DELTAS, `${name}: once it read again, the stalled peer got its whole reply`);
  });

  await t.test(`${name}: records that never end`, async () => {
    // Another id's PARAMS, for ever: skipped, but the request they are
    // part of is late after body_timeout.
    const endless = Array.from({length: 100}, () => record(PARAMS, 3, Buffer.alloc(60000)));
    const r = await raw(tg.addr, [begin(1), ...endless], {drip: 50, wait: BODY_TIMEOUT_MS * 4});
    t.ok(r.closed && r.ms >= BODY_TIMEOUT_MS - 100, `${name}: closed after ${r.ms} ms, at body_timeout (2 s)`);
    const body = Array.from({length: 40}, () => record(STDIN, 1, Buffer.alloc(60000, 120)));
    const b = await raw(tg.addr, [Buffer.concat([begin(1), record(PARAMS, 1, pairs(ENV)), record(PARAMS, 1)]), ...body],
      {drip: 10, wait: 5000});
    t.is(statusOf(b), 413, `${name}: a body of 2.4 MB with no Content-Length (1M allowed): 413`);
    await alive('endless records');
  });
}

t.main(async () => {
  const dir = workdir('fcgi-peer');
  const stub = await startStub();
  writeConf(dir, {body_timeout: `${BODY_TIMEOUT_MS / 1000}s`, retry_base: '50ms', keepalive_interval: '1s'});
  const env = llmgwEnv(dir, stub);
  const db = env.LLMGW_DB;
  const good = (addr) => async () => (await fcgiRequest(addr, {...ENV, PATH_INFO: '/chat'}, '{"message":"[[tokens:1]]"}')).status;
  // Workers serving a request now, from /metrics (this scrape is one).
  const busy = async (addr) => {
    const r = await fcgiRequest(addr, {...ENV, REQUEST_METHOD: 'GET', PATH_INFO: '/metrics', REMOTE_ADDR: '127.0.0.1'}, '');
    const m = /^llmgw_worker_threads\{state="busy"\} (\d+)/m.exec(r.body);
    return m ? +m[1] : -1;
  };

  const sock = path.join(dir, 'llmgw.sock');
  const g = await startLlmgw({dir, env, listen: sock});
  const unix = {addr: {path: sock}, pid: () => (g.exited ? -1 : g.pid), pid0: g.pid, stub, db};
  unix.good = good(unix.addr);
  await cases('unix socket', unix);

  const port = await freePort();
  const tdir = path.join(dir, 'tcp');
  fs.mkdirSync(tdir);
  const g2 = await startLlmgw({dir: tdir, env, listen: `127.0.0.1:${port}`});
  const tcp = {addr: {host: '127.0.0.1', port}, pid: () => (g2.exited ? -1 : g2.pid), pid0: g2.pid, stub, db};
  tcp.good = good(tcp.addr);
  await cases('TCP', tcp);

  const ldir = path.join(dir, 'spawned');
  fs.mkdirSync(ldir);
  writeConf(ldir, {body_timeout: `${BODY_TIMEOUT_MS / 1000}s`, retry_base: '50ms', keepalive_interval: '1s'});
  const srv = await startLighttpd({dir: ldir, env: llmgwEnv(ldir, stub)});
  if (!srv) {
    t.skip('spawned by lighttpd', 'lighttpd is not installed (Debian package lighttpd)');
  } else {
    t.onCleanup(() => srv.stop());
    // lighttpd made the socket and started llmgw on it: a request through
    // lighttpd first, so that it is running.
    const viaHttp = async () => (await request(srv.url('/chat'), {method: 'POST',
      headers: {authorization: `Bearer ${TOKEN}`}, body: {message: '[[tokens:1]]'}})).status;
    t.is(await viaHttp(), 200, 'lighttpd and the llmgw it spawned serve');
    const lsock = fs.readdirSync(srv.rundir).filter(f => f.startsWith('llmgw.sock')).map(f => path.join(srv.rundir, f))[0];
    const pids = srv.pids();
    const spawned = {addr: {path: lsock}, pid: () => { const p = srv.pids(); return p.length === 1 ? p[0] : -1; },
      pid0: pids.length === 1 ? pids[0] : -2, stub, db: path.join(ldir, 'llmgw.db'), good: viaHttp};
    await cases('spawned by lighttpd', spawned);
  }

  await t.test('2,000 connections holding half a record', async () => {
    if (VALGRIND) return t.skip('2,000 connections', 'too slow under valgrind');
    // An llmgw of its own, with a body_timeout long enough that on a slow
    // machine (a sanitizer build, a busy core) the first connections are
    // still open when the last is accepted.
    const hdir = path.join(dir, 'half');
    fs.mkdirSync(hdir);
    // Its own configuration file: the shared one says 2 s.
    const hconf = writeConf(hdir, {body_timeout: `${HALF_TIMEOUT_MS / 1000}s`});
    const hsock = path.join(hdir, 'llmgw.sock');
    const g = await startLlmgw({dir: hdir, env: {...env, LLMGW_CONFIG: hconf}, listen: hsock});
    const rss = () => +/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${g.pid}/status`, 'utf8'))[1];
    const threads = () => +/Threads:\s+(\d+)/.exec(fs.readFileSync(`/proc/${g.pid}/status`, 'utf8'))[1];
    const before = rss(), t0 = threads(), fds0 = fs.readdirSync(`/proc/${g.pid}/fd`).length;
    // Each a BEGIN, and a PARAMS record that says 1,000 bytes and sends 500.
    const conns = Array.from({length: 2000}, () => {
      const c = net.connect({path: hsock});
      c.on('error', () => {});
      c.write(Buffer.concat([begin(1), record(PARAMS, 1, Buffer.alloc(1000, 65)).subarray(0, 8 + 500)]));
      return c;
    });
    // Every byte sent; then the workers that took the first records go
    // back to the pool as each connection waits for the rest (on a loaded
    // machine that takes a moment): before body_timeout closes them, with
    // every connection still open, no more than the scrape's own is busy.
    await Promise.all(conns.map(c => new Promise(res => c.write('', res))));
    const fds = () => fs.readdirSync(`/proc/${g.pid}/fd`).length;
    const sent = Date.now(), until = sent + HALF_TIMEOUT_MS - 1000;
    let b, open, tDuring;
    do {
      await sleep(50);
      b = await busy({path: hsock});
      open = fds() - fds0;
      tDuring = threads();
    } while ((b > 2 || open < 2000) && Date.now() < until);
    const during = rss();
    // Held, they would keep 2,000 workers busy (max_threads is 1,024).
    t.ok(b >= 1 && b <= 2 && open >= 2000, `workers busy with 2,000 connections half-sent: ${b} (the scrape's own); ` +
      `${open} connections open; ${tDuring} threads; ${Date.now() - sent} ms after the last byte`);
    t.is(await good({path: hsock})(), 200, 'a request is served meanwhile');
    t.diag(`llmgw RSS: ${before} KB idle, ${during} KB with 2,000 half-sent requests: ` +
      `${((during - before) / 2000).toFixed(2)} KB each`);
    // Under ASan the RSS is the sanitizer's (redzones, a quarantine of
    // freed memory it keeps): bench/ measures a plain build.
    const sanitized = /libasan/.test(spawnSync('ldd', [LLMGW], {encoding: 'utf8'}).stdout || '');
    if (sanitized) t.skip('memory per connection', 'an ASan build: bench/run.sh measures a plain one');
    else t.ok((during - before) / 2000 < 16, `memory per half-sent connection bounded: ${((during - before) / 2000).toFixed(2)} KB`);
    const closed = await waitFor(() => conns.every(c => c.destroyed || c.readableEnded), HALF_TIMEOUT_MS * 3);
    t.ok(closed, 'all closed by llmgw after body_timeout');
    conns.forEach(c => c.destroy());
    await sleep(300);
    const back = await waitFor(() => fs.readdirSync(`/proc/${g.pid}/fd`).length <= fds0 + 16, 5000, 50);
    t.ok(back, `and let go: descriptors ${fds0} idle, ${fs.readdirSync(`/proc/${g.pid}/fd`).length} after; ` +
      `RSS ${before} KB idle, ${during} with them, ${rss()} after`);
    await g.stop();
  });

  await t.test('1,100 peers dripping a byte every second hold no workers', async () => {
    if (VALGRIND) return t.skip('1,100 peers', 'too slow under valgrind');
    const threads = () => +/Threads:\s+(\d+)/.exec(fs.readFileSync(`/proc/${g.pid}/status`, 'utf8'))[1];
    const t0 = threads();
    const whole = Buffer.concat([begin(1), record(PARAMS, 1, pairs(ENV)), record(PARAMS, 1)]);
    const peers = Array.from({length: 1100}, () => {
      const c = net.connect({path: sock});
      c.on('error', () => {});
      let i = 0;
      const tick = setInterval(() => { if (i < whole.length && !c.destroyed) c.write(whole.subarray(i, ++i)); }, 1000);
      c.on('close', () => clearInterval(tick));
      return {c, tick};
    });
    await sleep(1500);
    const r0 = Date.now(), st = await unix.good(), ms = Date.now() - r0;
    t.ok(st === 200 && peers.some(p => !p.c.destroyed), `a request served while they drip (${ms} ms)`);
    // All the peers write their byte in the same moment each second: a
    // scrape at that moment, on a loaded machine, finds the workers that
    // took those bytes still at it.  Held, they would stay busy; so the
    // scrapes over two of the peers' seconds must find them back in the
    // pool at least once.
    let b = Infinity, most = 0;
    for (const until = Date.now() + 2000; Date.now() < until && b > 2;) {
      const now = await busy(unix.addr);
      b = Math.min(b, now);
      most = Math.max(most, now);
      await sleep(100);
    }
    t.ok(b >= 1 && b <= 2, `workers busy with 1,100 peers dripping: ${b} (the scrape's own; ${most} at most ` +
      `as bytes came); ${threads()} threads (${t0} idle)`);
    peers.forEach(p => { clearInterval(p.tick); p.c.destroy(); });
  });

  await t.test('the log names what went wrong', async () => {
    const log = g.log();
    t.like(log, /fastcgi: a record of an unknown version; connection closed/, 'an unknown version');
    t.like(log, /fastcgi: a parameter's length does not fit in the record; connection closed/, 'a length that lies');
    t.like(log, /fastcgi: the request's parameters did not come within the deadline; connection closed/, 'a late request');
    t.ok(!g.exited && !g2.exited, 'both llmgw processes still run');
  });
});
