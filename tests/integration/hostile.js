// Hostile and broken clients, straight at llmgw over FastCGI (what a web
// server might pass on, or a broken one might) and through lighttpd: each
// gets a clear 4xx with a JSON detail, none takes the process down, and
// the others are served meanwhile.
'use strict';
const t = require('../lib/tap');
const fs = require('fs');
const net = require('net');
const path = require('path');
const {SLOW, request, waitFor} = require('../lib/http');
const {fcgiRequest} = require('../lib/fcgi');
const {TOKEN, workdir, startStub, startLlmgw, startLighttpd, llmgwEnv, writeConf} = require('../lib/servers');

// A raw HTTP/1.1 exchange through lighttpd: what we send, byte for byte.
function rawHttp(port, text, {timeout = 10000} = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({host: '127.0.0.1', port});
    let got = '';
    const timer = setTimeout(() => sock.destroy(), timeout);
    sock.on('data', d => { got += d.toString('latin1'); });
    sock.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
      resolve({status: m ? +m[1] : 0, text: got});
    });
    sock.on('error', () => {});
    sock.write(text);
  });
}

t.main(async () => {
  const dir = workdir('hostile');
  const stub = await startStub();
  writeConf(dir, {body_timeout: '1s', body_limit: '64k', retry_base: '50ms'});
  const sock = path.join(dir, 'llmgw.sock');
  const env = llmgwEnv(dir, stub);
  const g = await startLlmgw({dir, env, listen: sock});
  const srv = await startLighttpd({dir, backend: {socket: sock}});
  const addr = {path: sock};
  const cgi = (extra = {}) => ({GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: 'POST',
    SCRIPT_NAME: '', PATH_INFO: '/chat', CONTENT_TYPE: 'application/json', HTTP_AUTHORIZATION: `Bearer ${TOKEN}`,
    ...extra});
  const json = (body) => cgi({CONTENT_LENGTH: String(Buffer.byteLength(body))});
  const good = () => fcgiRequest(addr, json('{"message":"[[tokens:2]]"}'), '{"message":"[[tokens:2]]"}');
  // A 4xx whose body is JSON with a detail matching "re".
  const clear = (r, status, re, name) =>
    t.ok(r.status === status && r.json && typeof r.json.detail !== 'undefined' && re.test(JSON.stringify(r.json.detail)),
      `${name}: ${r.status} ${String(JSON.stringify(r.json && r.json.detail)).slice(0, 100)}`);

  await t.test('a body that drips in', async () => {
    const body = '{"message":"' + 'x'.repeat(40) + '"}';
    let dripping = true;
    const drip = fcgiRequest(addr, json(body), [...body], {drip: 200});
    drip.then(() => { dripping = false; });
    await new Promise(r => setTimeout(r, 300));
    const others = await Promise.all([good(), good(), good()]);
    t.ok(others.every(r => r.status === 200) && dripping, `others served while it drips (${others.map(r => r.ms).join(', ')} ms)`);
    const r = await drip;
    clear(r, 408, /did not arrive within 1000 ms/, 'one byte every 200 ms');
    t.ok(r.ms < body.length * 200 / 2, `cut off after ${r.ms} ms, not the ${body.length * 200} ms it would take`);
  });

  await t.test('a body that stops coming', async () => {
    const pieces = ['{"message":'];
    pieces.open = true;		// no end of stdin
    const r = await fcgiRequest(addr, cgi({CONTENT_LENGTH: '100'}), pieces);
    clear(r, 408, /did not arrive/, 'Content-Length 100, 11 bytes, then silence');
  });

  await t.test('parameters that stop coming', async () => {
    // A FastCGI begin record, then a params record that promises 100
    // bytes and sends 10: the connection is dropped after body_timeout,
    // not held (with its worker) for ever.
    const start = Date.now();
    const closed = await new Promise((resolve) => {
      const c = net.connect({path: sock});
      const timer = setTimeout(() => { c.destroy(); resolve(false); }, 10000 * SLOW);
      c.on('error', () => {});
      c.on('close', () => { clearTimeout(timer); resolve(true); });
      c.write(Buffer.from([1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
      c.write(Buffer.concat([Buffer.from([1, 4, 0, 1, 0, 100, 0, 0]), Buffer.from('\x0e\x04REQUEST_')]));
    });
    const ms = Date.now() - start;
    // Held for ever, it would be our own timer (10 s) that closes it.
    t.ok(closed && ms >= 900, `closed by llmgw after ${ms} ms (body_timeout 1s)`);
    t.is((await good()).status, 200, 'and serving');
  });

  await t.test('sizes', async () => {
    let r = await fcgiRequest(addr, cgi({CONTENT_LENGTH: '99999999999999999999'}), '{}');
    clear(r, 413, /larger than 65536 bytes/, 'a huge Content-Length');
    // Waiting for that body would end in a 408 after body_timeout.
    t.is(r.status, 413, 'refused before reading anything, not timed out');
    r = await fcgiRequest(addr, cgi({CONTENT_LENGTH: '-5'}), '{}');
    clear(r, 413, /larger than/, 'a negative Content-Length');
    const big = '{"message":"' + 'x'.repeat(70000) + '"}';
    r = await fcgiRequest(addr, cgi(), big);
    clear(r, 413, /larger than 65536/, 'no Content-Length (a chunked body passed on) over body_limit');
    r = await fcgiRequest(addr, cgi(), ['{"mess', 'age":"[[tok', 'ens:2]]"}'], {drip: 20});
    t.is([r.status, r.json && r.json.reply], [200, 'tok0 tok1 '], 'no Content-Length, in pieces, within limits: served');
  });

  await t.test('bodies', async () => {
    let r = await fcgiRequest(addr, json('{"message":"\xff\xfe"}'), Buffer.from('{"message":"\xff\xfe"}', 'latin1'));
    clear(r, 422, /json_invalid|UTF-8/i, 'invalid UTF-8');
    const deep = '['.repeat(100000) + ']'.repeat(100000);
    r = await fcgiRequest(addr, cgi({CONTENT_LENGTH: String(deep.length)}), deep);
    clear(r, 413, /larger than/, 'JSON nested 100,000 deep (200 kB): over body_limit');
    const deep2 = '{"message":' + '['.repeat(30000) + ']'.repeat(30000) + '}';
    r = await fcgiRequest(addr, json(deep2), deep2);
    clear(r, 422, /json_invalid/, 'JSON nested 30,000 deep within body_limit');
    const nul = Buffer.from('{"message":"a\u0000b"}');
    r = await fcgiRequest(addr, cgi({CONTENT_LENGTH: String(nul.length)}), nul);
    clear(r, 422, /json_invalid/, 'a raw NUL byte');
    r = await fcgiRequest(addr, json('{"message":"a\\u0000b"}'), '{"message":"a\\u0000b"}');
    clear(r, 422, /NUL|null/i, 'an escaped NUL');
  });

  await t.test('CR and LF in fields that could reach headers', async () => {
    let r = await fcgiRequest(addr, {...json('{"message":"hi"}'), HTTP_X_REQUEST_ID: 'abc\r\nSet-Cookie: x=1'}, '{"message":"hi"}');
    clear(r, 400, /X-Request-Id holds control characters/, 'X-Request-Id with CRLF');
    t.ok(!/set-cookie/i.test(Object.keys(r.headers).join(' ')), 'no header smuggled into the answer');
    const m = '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}';
    r = await fcgiRequest(addr, {...cgi({PATH_INFO: '/v1/messages', CONTENT_LENGTH: String(m.length)}),
      HTTP_ANTHROPIC_BETA: 'x\r\nX-Evil: 1'}, m);
    t.ok(r.status === 400 && /not a plain header value/.test(r.body), 'anthropic-beta with CRLF: 400');
    const body = '{"message":"hi","model":"claude\\r\\nX-Evil: 1"}';
    r = await fcgiRequest(addr, json(body), body);
    t.ok(r.status === 200 || r.status === 422, `a model name with CRLF: ${r.status}, never a header`);
    t.ok(!/x-evil/i.test(Object.keys(r.headers).join(' ')), 'nothing smuggled');
    const log = g.log();
    t.ok(!/\nX-Evil/.test(log) && !/\nSet-Cookie/.test(log), 'and no forged line in the log');
  });

  await t.test('paths', async () => {
    for (const p of ['/../../etc/passwd', '/chat/../healthz', '/chat/', '//chat', '/chat%00', '/%2e%2e/etc/passwd']) {
      const r = await fcgiRequest(addr, cgi({PATH_INFO: p, CONTENT_LENGTH: '2'}), '{}');
      clear(r, 404, /Not Found/, `PATH_INFO ${p}`);
    }
  });

  await t.test('10,000 headers', async () => {
    const many = cgi({CONTENT_LENGTH: '2'});
    for (let i = 0; i < 10000; i++) many[`HTTP_X_H${i}`] = 'v';
    const r = await fcgiRequest(addr, many, '{}');
    clear(r, 431, /too many header fields/, 'straight over FastCGI');
    let head = 'GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n';
    for (let i = 0; i < 10000; i++) head += `X-H${i}: v\r\n`;
    const h = await rawHttp(srv.port, head + 'Connection: close\r\n\r\n');
    t.ok(h.status >= 400 && h.status < 500, `through lighttpd: ${h.status}`);
  });

  await t.test('through lighttpd', async () => {
    const body = '{"message":"[[tokens:2]]"}';
    const chunked = `POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
      'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
      `${(10).toString(16)}\r\n${body.slice(0, 10)}\r\n${(body.length - 10).toString(16)}\r\n${body.slice(10)}\r\n0\r\n\r\n`;
    let r = await rawHttp(srv.port, chunked);
    t.ok(r.status === 200 && r.text.includes('"reply":"tok0 tok1 "'), `a chunked body: ${r.status}, served`);
    r = await rawHttp(srv.port, 'POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n' +
      'Connection: close\r\n\r\nzz\r\nnope\r\n0\r\n\r\n');
    t.ok(r.status === 400, `malformed chunks: ${r.status}`);
    r = await rawHttp(srv.port, `POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\rb\r\n` +
      'Content-Length: 2\r\nConnection: close\r\n\r\n{}');
    t.ok(r.status === 400, `a bare CR in a header: ${r.status}`);
    r = await request(`${srv.base}/api/v1/../../../etc/passwd`);
    t.ok(r.status === 404 && !/root:/.test(r.text), `path traversal: ${r.status}, nothing served`);
  });

  await t.test('still the same process, still serving', async () => {
    t.ok(!g.exited, 'llmgw never exited');
    // lighttpd hangs up once it has the body, before the end record:
    // SIGPIPE must be ignored, not caught by libfcgi's empty handler.
    const sig = (name) => BigInt('0x' + new RegExp(`^${name}:\\s*([0-9a-f]+)`, 'm')
      .exec(fs.readFileSync(`/proc/${g.pid}/status`, 'utf8'))[1]);
    t.ok((sig('SigIgn') & (1n << 12n)) !== 0n, 'SIGPIPE is ignored');
    const r = await good();
    t.is(r.status, 200, 'a normal request after all of it');
    const u = await request(`${srv.base}/api/v1/chat`, {method: 'POST',
      headers: {authorization: `Bearer ${TOKEN}`}, body: {message: '[[tokens:1]]'}});
    t.is(u.status, 200, 'and through lighttpd');
  });
});
