// What the tests of llmgw-spoold's span exports share: the published
// OTLP format (tests/otlp: opentelemetry-proto's .proto files, checked
// under the OTLP/JSON rules), and a receiver that keeps every export.
'use strict';
const crypto = require('crypto');
const http = require('http');
const path = require('path');

let protobuf, semconv;
try {
  protobuf = require('protobufjs');
  semconv = require('@opentelemetry/semantic-conventions/incubating');
} catch (e) {
  protobuf = null;
}

const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT32 = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
const HEX_IDS = {traceId: 32, spanId: 16, parentSpanId: 16};

// Where "value" departs from message type "type" under the OTLP/JSON
// rules: lowerCamelCase names, ids in hex, enums as integers, 64-bit
// integers as decimal strings or numbers, no unknown fields.
function check(type, value, at, problems) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`${at}: not an object`);
    return;
  }
  const byJson = {};
  for (const f of type.fieldsArray) byJson[f.name] = f;	// protobufjs names fields in lowerCamelCase
  for (const [k, v] of Object.entries(value)) {
    const f = byJson[k];
    if (!f) { problems.push(`${at}.${k}: no such field in ${type.fullName}`); continue; }
    const items = f.repeated ? (Array.isArray(v) ? v : (problems.push(`${at}.${k}: not an array`), [])) : [v];
    items.forEach((x, i) => {
      const where = f.repeated ? `${at}.${k}[${i}]` : `${at}.${k}`;
      f.resolve();
      if (f.resolvedType instanceof protobuf.Type) check(f.resolvedType, x, where, problems);
      else if (f.resolvedType instanceof protobuf.Enum) {
        if (!Number.isInteger(x) || !Object.values(f.resolvedType.values).includes(x))
          problems.push(`${where}: not a value of ${f.resolvedType.name}`);
      } else if (f.type === 'bytes') {
        const hex = HEX_IDS[k];
        if (hex ? !(typeof x === 'string' && new RegExp(`^[0-9a-f]{${hex}}$`).test(x)) : typeof x !== 'string')
          problems.push(`${where}: not ${hex ? `${hex} hex digits` : 'base64'}`);
      } else if (INT64.has(f.type)) {
        if (!(typeof x === 'string' && /^-?\d+$/.test(x)) && !Number.isInteger(x)) problems.push(`${where}: not an integer`);
      } else if (INT32.has(f.type)) {
        if (!Number.isInteger(x)) problems.push(`${where}: not an integer`);
      } else if (f.type === 'string') {
        if (typeof x !== 'string') problems.push(`${where}: not a string`);
      } else if (f.type === 'bool') {
        if (typeof x !== 'boolean') problems.push(`${where}: not a boolean`);
      } else if (f.type === 'double' || f.type === 'float') {
        if (typeof x !== 'number') problems.push(`${where}: not a number`);
      } else problems.push(`${where}: type ${f.type} not checked here`);
    });
  }
}

const hexOf = (prefix, id, n) => crypto.createHash('sha256').update(prefix + id).digest('hex').slice(0, 2 * n);
const attrs = list => Object.fromEntries((list || []).map(a => [a.key, Object.values(a.value)[0]]));

// The ExportTraceServiceRequest type, from the .proto files; null
// without protobufjs (npm ci in tests/).
function exportType() {
  if (!protobuf) return null;
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => path.join(__dirname, '..', 'otlp', target);
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
  return root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
}

// A receiver on 127.0.0.1: each export is kept with its path, headers,
// body and the status it got; decide(export) says that status (default
// 200) and may hold the answer back by returning a promise.
async function startReceiver(decide = () => 200) {
  const exports = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', d => { body += d; });
    req.on('end', async () => {
      const e = {path: req.url, headers: req.headers, body, status: 0};
      exports.push(e);
      e.status = await decide(e);
      res.writeHead(e.status, {'content-type': 'application/json'});
      res.end(e.status === 200 ? '{}' : '{"code":3,"message":"refused"}');
    });
  });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  return {exports, url: `http://127.0.0.1:${server.address().port}`,
    close: () => { server.closeAllConnections(); server.close(); }};
}

const spansOf = e => {
  try { return JSON.parse(e.body).resourceSpans.flatMap(r => r.scopeSpans.flatMap(s => s.spans)); } catch (x) { return []; }
};

module.exports = {protobuf, semconv, check, hexOf, attrs, exportType, startReceiver, spansOf};
