// A small FastCGI client, to talk to llmgw with no web server in between:
// the hostile-client tests send through it what a web server might pass
// on, or what a broken one might.
'use strict';
const net = require('net');

const BEGIN_REQUEST = 1, END_REQUEST = 3, PARAMS = 4, STDIN = 5, STDOUT = 6, STDERR = 7;

function record(type, id, content) {
  const out = [];
  for (let off = 0; off === 0 || off < content.length; off += 65535) {
    const part = content.subarray(off, off + 65535);
    const h = Buffer.alloc(8);
    h.writeUInt8(1, 0); h.writeUInt8(type, 1); h.writeUInt16BE(id, 2);
    h.writeUInt16BE(part.length, 4);
    out.push(h, part);
    if (part.length === 0) break;
  }
  return Buffer.concat(out);
}

function length(n) {
  if (n < 128) return Buffer.from([n]);
  const b = Buffer.alloc(4); b.writeUInt32BE((n | 0x80000000) >>> 0); return b;
}

function params(pairs) {
  const parts = [];
  for (const [k, v] of pairs) {
    const kb = Buffer.from(k), vb = Buffer.from(v);
    parts.push(length(kb.length), length(vb.length), kb, vb);
  }
  return Buffer.concat(parts);
}

// Send one request to llmgw at "addr" ({path} or {port}).  "env" is the
// CGI variables, as [name, value] pairs or an object; "body" a string or
// Buffer, or an array of pieces sent "drip" ms apart.  Resolves with
// {status, headers, body, json, ms} once llmgw ends the request or closes
// the connection.
function fcgiRequest(addr, env, body = '', {drip = 0, timeout = 30000} = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const sock = net.connect(addr.path ? {path: addr.path} : {host: '127.0.0.1', port: addr.port});
    const pairs = Array.isArray(env) ? env : Object.entries(env);
    const pieces = (Array.isArray(body) ? body : [body]).map(b => Buffer.from(b));
    let out = Buffer.alloc(0), acc = Buffer.alloc(0), done = false, ended = false;
    const timer = setTimeout(() => finish(new Error('timed out')), timeout);
    function finish(err) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) return reject(err);
      const text = out.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const head = end < 0 ? text : text.slice(0, end);
      const headers = {};
      for (const line of head.split('\r\n')) {
        const c = line.indexOf(':');
        if (c > 0) headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1).trim();
      }
      const status = headers.status ? parseInt(headers.status, 10) : (out.length ? 200 : 0);
      const b = end < 0 ? '' : Buffer.from(text.slice(end + 4), 'latin1').toString('utf8');
      let json = null;
      try { json = JSON.parse(b); } catch (e) { /* not JSON */ }
      resolve({status, headers, body: b, json, ms: Date.now() - t0});
    }
    sock.on('data', d => {
      acc = Buffer.concat([acc, d]);
      while (acc.length >= 8) {
        const type = acc[1], len = acc.readUInt16BE(4), pad = acc[6];
        if (acc.length < 8 + len + pad) break;
        const content = acc.subarray(8, 8 + len);
        if (type === STDOUT) out = Buffer.concat([out, content]);
        acc = acc.subarray(8 + len + pad);
        if (type === END_REQUEST) return finish();
      }
    });
    sock.on('end', () => { ended = true; });
    sock.on('close', () => finish());
    sock.on('error', () => finish());
    sock.on('connect', async () => {
      const begin = Buffer.from([0, 1, 0, 0, 0, 0, 0, 0]);	// responder, no keep-conn
      sock.write(Buffer.concat([record(BEGIN_REQUEST, 1, begin),
        record(PARAMS, 1, params(pairs)), record(PARAMS, 1, Buffer.alloc(0))]));
      // Between pieces, what llmgw sent is read before the next write:
      // a write after it closed fails, and the failure would end the
      // request before its answer is read.
      const closed = () => done || ended || out.length > 0;
      for (const piece of pieces) {
        if (closed()) return;
        if (piece.length) sock.write(record(STDIN, 1, piece));
        if (drip) {
          await new Promise(r => setTimeout(r, drip));
          await new Promise(r => setImmediate(r));
        }
      }
      if (!closed() && !(Array.isArray(body) && body.open)) sock.write(record(STDIN, 1, Buffer.alloc(0)));
    });
  });
}

module.exports = {fcgiRequest, STDERR};
