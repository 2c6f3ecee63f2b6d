// llmgw-spoold's otlp sink against a receiver that checks each export
// against the published OTLP format (tests/otlp: the .proto files of
// opentelemetry-proto, under the OTLP/JSON rules) and the GenAI semantic
// conventions' attribute names (@opentelemetry/semantic-conventions):
// a streamed request, an upstream 529, a client that left; headers from
// otlp_headers_file; a receiver answering 503, then 200 (retried,
// delivered once); ids derived from the record id.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const t = require('../lib/tap');
const {request, sse, waitFor} = require('../lib/http');
const {spawnSync} = require('child_process');
const {setup, sql, startSpoold, writeConf, TOKEN, SPOOLD, sanitizerEnv} = require('../lib/servers');

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

t.main(async () => {
  if (!protobuf) t.skipAll('protobufjs and @opentelemetry/semantic-conventions are not installed (npm ci in tests/)');
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => path.join(__dirname, '..', 'otlp', target);
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
  const Export = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

  // The receiver: answers what "answers" says next (then 200), keeps
  // every export with its headers and the status it got.
  const exports = [];
  const answers = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', d => { body += d; });
    req.on('end', () => {
      const status = answers.length ? answers.shift() : 200;
      exports.push({path: req.url, headers: req.headers, body, status});
      res.writeHead(status, {'content-type': 'application/json'});
      res.end(status === 200 ? '{}' : '{"code":14,"message":"unavailable"}');
    });
  });
  await new Promise(r => receiver.listen(0, '127.0.0.1', r));
  t.onCleanup(() => receiver.close());

  const {url, dir, env, db} = await setup('otlp');
  const headersFile = path.join(dir, 'otlp-headers');
  fs.writeFileSync(headersFile, '# the collector\'s token\nAuthorization: Bearer otlp-secret-1\n\nX-Scope-OrgID: llmgw-tests\n',
    {mode: 0o600});
  writeConf(dir, {retry_base: '50ms', retry_max: '2s', sinks: 'sqlite, otlp',
    otlp_endpoint: `http://127.0.0.1:${receiver.address().port}/`, otlp_headers_file: headersFile,
    spool_retry_base: '100ms', spool_retry_max: '200ms', spool_rescan: '100ms'});

  const auth = {authorization: `Bearer ${TOKEN}`, 'x-request-id': ''};
  const ids = {stream: 'otlp-stream-1', failed: 'otlp-529-1', left: 'otlp-left-1'};
  const s = await sse(url('/chat/stream'), {message: '[[tokens:4]]'}, {headers: {...auth, 'x-request-id': ids.stream}});
  t.ok(s.done, 'a streamed request');
  const f = await request(url('/chat'), {method: 'POST', headers: {...auth, 'x-request-id': ids.failed},
    body: {message: '[[status:529]]'}});
  t.is(f.status, 503, 'an upstream 529: 503');
  await sse(url('/chat/stream'), {message: '[[tokens:50]] [[delay:50]]'},
    {headers: {...auth, 'x-request-id': ids.left}, abortAfter: 2});

  answers.push(503);	// the first export is refused for a while
  const spoold = startSpoold({dir, env: {...env, ...sanitizerEnv(dir)}});
  const spansOf = e => { try { return JSON.parse(e.body).resourceSpans.flatMap(r => r.scopeSpans.flatMap(s => s.spans)); } catch (x) { return []; } };
  const delivered = () => exports.filter(e => e.status === 200).flatMap(spansOf);
  const got = await waitFor(() => Object.values(ids).every(id => delivered().some(sp =>
    attrs(sp.attributes)['llmgw.request_id'] === id)), 20000, 100);
  t.ok(got, `the three spans arrived (${exports.length} exports)`);
  t.is(exports[0] && exports[0].status, 503, 'the first export was answered 503');
  t.ok(exports.length >= 2, 'and sent again');
  t.like(spoold.log(), /otlp.*HTTP 503/, 'llmgw-spoold logs the 503');

  await t.test('every export is in the published format', async () => {
    t.ok(exports.every(e => e.path === '/v1/traces'), 'POST to {otlp_endpoint}/v1/traces');
    t.ok(exports.every(e => /^application\/json/.test(e.headers['content-type'])), 'JSON encoding');
    t.ok(exports.every(e => e.headers.authorization === 'Bearer otlp-secret-1' &&
      e.headers['x-scope-orgid'] === 'llmgw-tests'), 'with the headers of otlp_headers_file');
    for (const [i, e] of exports.entries()) {
      const problems = [];
      let body = null;
      try { body = JSON.parse(e.body); } catch (x) { problems.push('not JSON'); }
      if (body) check(Export, body, 'ExportTraceServiceRequest', problems);
      t.is(problems, [], `export ${i + 1}: an ExportTraceServiceRequest, nothing else`);
    }
    const sample = JSON.parse(exports[exports.length - 1].body);
    const spoiled = JSON.parse(JSON.stringify(sample));
    const span = spoiled.resourceSpans[0].scopeSpans[0].spans[0];
    span.traceId = Buffer.from(span.traceId, 'hex').toString('base64');
    span.kind = 'SPAN_KIND_CLIENT';
    span.gen_ai = 'x';
    const caught = [];
    check(Export, spoiled, 'spoiled', caught);
    t.is(caught.length, 3, `and the check does refuse a base64 id, an enum by name and an unknown field (${caught.length})`);
    const body = sample;
    t.is(attrs(body.resourceSpans[0].resource.attributes)[semconv.ATTR_SERVICE_NAME], 'llmgw', 'resource service.name = llmgw');
  });

  await t.test('one span per request, in the GenAI conventions', async () => {
    const spans = delivered();
    const byRequest = id => spans.filter(sp => attrs(sp.attributes)['llmgw.request_id'] === id);
    for (const id of Object.values(ids)) t.is(byRequest(id).length, 1, `${id}: delivered once`);
    const recordId = rid => sql(db, `SELECT id FROM request_log WHERE request_id = '${rid}'`)[0].id;
    const ok = byRequest(ids.stream)[0], a = attrs(ok.attributes);
    t.is([ok.traceId, ok.spanId], [hexOf('llmgw trace ', recordId(ids.stream), 16), hexOf('llmgw span ', recordId(ids.stream), 8)],
      'trace and span ids derived from the record id');
    t.is([a[semconv.ATTR_GEN_AI_OPERATION_NAME], a[semconv.ATTR_GEN_AI_PROVIDER_NAME], a[semconv.ATTR_GEN_AI_SYSTEM]],
      [semconv.GEN_AI_OPERATION_NAME_VALUE_CHAT, semconv.GEN_AI_PROVIDER_NAME_VALUE_ANTHROPIC,
        semconv.GEN_AI_SYSTEM_VALUE_ANTHROPIC], 'operation chat, provider anthropic');
    t.is(a[semconv.ATTR_GEN_AI_REQUEST_MODEL], 'claude-sonnet-4-6', 'the model');
    const u = sql(db, `SELECT input_tokens, output_tokens FROM usage WHERE request_id = '${ids.stream}'`)[0];
    t.is([a[semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS], a[semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]],
      [String(u.input_tokens), String(u.output_tokens)], 'the usage, as the usage row has it');
    t.is(a[semconv.ATTR_HTTP_RESPONSE_STATUS_CODE], '200', 'status 200');
    t.ok(!ok.status.code && a[semconv.ATTR_ERROR_TYPE] === undefined, 'no error');
    t.is(ok.name, 'chat claude-sonnet-4-6', 'named "{operation} {model}"');
    t.ok(BigInt(ok.endTimeUnixNano) >= BigInt(ok.startTimeUnixNano), 'it ends after it starts');
    const bad = attrs(byRequest(ids.failed)[0].attributes);
    t.is([byRequest(ids.failed)[0].status.code, bad[semconv.ATTR_ERROR_TYPE]], [2, '503'],
      'the 529: status ERROR, error.type 503');
    t.ok(byRequest(ids.failed)[0].status.message, `with a message (${byRequest(ids.failed)[0].status.message})`);
    const left = byRequest(ids.left)[0];
    t.is([left.status.code, attrs(left.attributes)[semconv.ATTR_ERROR_TYPE]], [2, 'client_disconnected'],
      'the client that left: ERROR, client_disconnected');
  });
  t.is(await spoold.stop(), 0, 'llmgw-spoold stops with 0');

  await t.test('a headers file that is not headers: file and line', async () => {
    fs.writeFileSync(headersFile, 'Authorization: Bearer x\nthis is not a header\n', {mode: 0o600});
    const r = spawnSync(SPOOLD, ['--once'], {env: {...process.env, ...env, ...sanitizerEnv(dir)}, encoding: 'utf8',
      timeout: 30000});
    t.ok(r.status !== 0, `llmgw-spoold exits ${r.status}`);
    t.like(r.stderr, new RegExp(`${headersFile}:2: not a header \\(Name: value\\)`), 'naming the file and line');
    t.ok(!r.stderr.includes('Bearer x'), 'and not the header it read');
  });
});
