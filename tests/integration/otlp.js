// llmgw-spoold's otlp sink against a receiver that checks each export
// against the published OTLP format (tests/otlp: the .proto files of
// opentelemetry-proto, under the OTLP/JSON rules) and the GenAI semantic
// conventions' attribute names (@opentelemetry/semantic-conventions):
// a streamed request, an upstream 529, a client that left, a client's
// traceparent continued; headers from otlp_headers_file; a receiver
// answering 503, then 200 (retried, delivered once), 400 to one record
// (dead-lettered, the others delivered), 401 past spool_attempts (kept,
// delivered once mended); llmgw-spoold killed with an export in flight
// (sent again with the same ids); ids derived from the record id.
'use strict';
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {request, sse, waitFor, sleep} = require('../lib/http');
const {spawnSync} = require('child_process');
const {setup, sql, startSpoold, writeConf, TOKEN, SPOOLD, sanitizerEnv} = require('../lib/servers');
const {protobuf, semconv, check, hexOf, attrs, exportType, startReceiver, spansOf} = require('../lib/otlp');

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736', CLIENT_SPAN = '00f067aa0ba902b7';

t.main(async () => {
  if (!protobuf) t.skipAll('protobufjs and @opentelemetry/semantic-conventions are not installed (npm ci in tests/)');
  const Export = exportType();

  // What the receiver answers: "answers" in turn, then 200 (400 to any
  // export holding the request "poison"; held back while "hold" is set).
  const answers = [];
  let hold = null;
  const rid = sp => attrs(sp.attributes)['llmgw.request_id'];
  const receiver = await startReceiver(async e => {
    if (hold) await hold.promise;
    if (spansOf(e).some(sp => rid(sp) === 'otlp-poison-1')) return 400;
    return answers.length ? answers.shift() : 200;
  });
  t.onCleanup(() => receiver.close());
  const exports = receiver.exports;

  const {url, dir, env, db} = await setup('otlp', {conf: {log_content: 'full'}});
  const spool = env.LLMGW_SPOOL_DIR;
  const headersFile = path.join(dir, 'otlp-headers');
  fs.writeFileSync(headersFile, '# the collector\'s token\nAuthorization: Bearer otlp-secret-1\n\nX-Scope-OrgID: llmgw-tests\n',
    {mode: 0o600});
  writeConf(dir, {retry_base: '50ms', retry_max: '2s', sinks: 'database, otlp', log_content: 'full',
    otlp_endpoint: `${receiver.url}/`, otlp_headers_file: headersFile,
    spool_retry_base: '100ms', spool_retry_max: '200ms', spool_rescan: '100ms', spool_attempts: '3',
    spool_reclaim_after: '1s'});

  const auth = {authorization: `Bearer ${TOKEN}`, 'x-request-id': ''};
  const ids = {stream: 'otlp-stream-1', failed: 'otlp-529-1', left: 'otlp-left-1', traced: 'otlp-traced-1',
    badtrace: 'otlp-badtrace-1'};
  const s = await sse(url('/chat/stream'), {message: '[[tokens:4]]', max_tokens: 300},
    {headers: {...auth, 'x-request-id': ids.stream}});
  t.ok(s.done, 'a streamed request');
  const f = await request(url('/chat'), {method: 'POST', headers: {...auth, 'x-request-id': ids.failed},
    body: {message: '[[status:529]]'}});
  t.is(f.status, 503, 'an upstream 529: 503');
  await sse(url('/chat/stream'), {message: '[[tokens:50]] [[delay:50]]'},
    {headers: {...auth, 'x-request-id': ids.left}, abortAfter: 2});
  const tr = await request(url('/chat'), {method: 'POST', body: {message: 'hello'},
    headers: {...auth, 'x-request-id': ids.traced, traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`}});
  t.is(tr.status, 200, 'a request with a traceparent');
  const bt = await request(url('/chat'), {method: 'POST', body: {message: 'hello'},
    headers: {...auth, 'x-request-id': ids.badtrace, traceparent: `00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_SPAN}-01`}});
  t.is(bt.status, 200, 'a request with a traceparent that is not valid: served all the same');

  answers.push(503);	// the first export is refused for a while
  let spoold = startSpoold({dir, env: {...env, ...sanitizerEnv(dir)}});
  const delivered = () => exports.filter(e => e.status === 200).flatMap(spansOf);
  const got = await waitFor(() => Object.values(ids).every(id => delivered().some(sp => rid(sp) === id)), 20000, 100);
  t.ok(got, `the five spans arrived (${exports.length} exports)`);
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
    t.is(attrs(sample.resourceSpans[0].resource.attributes)[semconv.ATTR_SERVICE_NAME], 'llmgw', 'resource service.name = llmgw');
  });

  const byRequest = id => delivered().filter(sp => rid(sp) === id);
  const recordId = r => sql(db, `SELECT id FROM request_log WHERE request_id = '${r}'`)[0].id;
  await t.test('one span per request, in the GenAI conventions', async () => {
    for (const id of Object.values(ids)) t.is(byRequest(id).length, 1, `${id}: delivered once`);
    const ok = byRequest(ids.stream)[0], a = attrs(ok.attributes);
    t.is([ok.traceId, ok.spanId], [hexOf('llmgw trace ', recordId(ids.stream), 16), hexOf('llmgw span ', recordId(ids.stream), 8)],
      'trace and span ids derived from the record id');
    t.ok(!('parentSpanId' in ok), 'no parent: a trace of its own');
    t.is([a[semconv.ATTR_GEN_AI_OPERATION_NAME], a[semconv.ATTR_GEN_AI_PROVIDER_NAME], a[semconv.ATTR_GEN_AI_SYSTEM]],
      [semconv.GEN_AI_OPERATION_NAME_VALUE_CHAT, semconv.GEN_AI_PROVIDER_NAME_VALUE_ANTHROPIC,
        semconv.GEN_AI_SYSTEM_VALUE_ANTHROPIC], 'operation chat, provider anthropic');
    t.is(a[semconv.ATTR_GEN_AI_REQUEST_MODEL], 'claude-sonnet-4-6', 'the model');
    t.is(a[semconv.ATTR_GEN_AI_REQUEST_MAX_TOKENS], '300', 'max_tokens as asked');
    t.is(a[semconv.ATTR_GEN_AI_RESPONSE_ID], 'msg_stub', 'the reply\'s id, from message_start');
    t.is(a[semconv.ATTR_GEN_AI_RESPONSE_FINISH_REASONS], {values: [{stringValue: 'end_turn'}]},
      'the finish reasons: an array of strings');
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

  await t.test('log_content = full: the messages, in the conventions\' shape', async () => {
    const a = attrs(byRequest(ids.traced)[0].attributes);
    const input = JSON.parse(a[semconv.ATTR_GEN_AI_INPUT_MESSAGES]);
    const output = JSON.parse(a[semconv.ATTR_GEN_AI_OUTPUT_MESSAGES]);
    t.is(input, [{role: 'user', parts: [{type: 'text', content: 'hello'}]}], 'gen_ai.input.messages: the user\'s');
    t.is(output, [{role: 'assistant', parts: [{type: 'text', content: tr.json.reply}], finish_reason: 'end_turn'}],
      'gen_ai.output.messages: the reply, with its finish reason');
    t.is([a['llmgw.prompt_bytes'], a['llmgw.reply_bytes']], ['5', String(Buffer.byteLength(tr.json.reply))],
      'and the sizes of both');
  });

  await t.test('a client\'s traceparent: its trace goes on through llmgw', async () => {
    const sp = byRequest(ids.traced)[0];
    t.is([sp.traceId, sp.parentSpanId], [CLIENT_TRACE, CLIENT_SPAN], 'the client\'s trace, its span the parent');
    t.is(sp.spanId, hexOf('llmgw span ', recordId(ids.traced), 8), 'llmgw\'s own span id, from the record id');
    const other = byRequest(ids.badtrace)[0];
    t.is([other.traceId, other.parentSpanId], [hexOf('llmgw trace ', recordId(ids.badtrace), 16), undefined],
      'a traceparent that is not valid (upper-case hex) is ignored: a trace of its own');
  });

  await t.test('a record the receiver refuses as invalid goes to failed/, the others are delivered', async () => {
    const n0 = exports.length;
    for (let i = 1; i <= 5; i++) {
      const r = await request(url('/chat'), {method: 'POST', body: {message: `batch ${i}`},
        headers: {...auth, 'x-request-id': i === 3 ? 'otlp-poison-1' : `otlp-batch-${i}`}});
      t.is(r.status, 200, `request ${i} answered`);
    }
    const others = [1, 2, 4, 5].map(i => `otlp-batch-${i}`);
    const done = await waitFor(() => others.every(id => byRequest(id).length > 0) &&
      fs.readdirSync(path.join(spool, 'failed')).some(f => f.endsWith('.reason')), 20000, 100);
    t.ok(done, 'the four others delivered, one record in failed/');
    const reasons = fs.readdirSync(path.join(spool, 'failed')).filter(f => f.endsWith('.reason'))
      .map(f => fs.readFileSync(path.join(spool, 'failed', f), 'utf8'));
    t.is(reasons.length, 1, 'one record in failed/');
    t.like(reasons[0], /refused as invalid.*HTTP 400/, `with the reason (${reasons[0].trim()})`);
    const tried = exports.slice(n0).filter(e => spansOf(e).some(sp => rid(sp) === 'otlp-poison-1')).length;
    await sleep(1500);	// several retry intervals
    const later = exports.slice(n0).filter(e => spansOf(e).some(sp => rid(sp) === 'otlp-poison-1')).length;
    t.ok(tried >= 1 && tried <= 4 && later === tried,
      `offered ${tried} times while the batch was halved, then never again`);
    for (const id of others) t.is(byRequest(id).length, 1, `${id}: delivered once`);
  });

  await t.test('credentials refused (401) past spool_attempts: kept, delivered once mended', async () => {
    answers.push(401, 401, 401, 401, 401);
    const r = await request(url('/chat'), {method: 'POST', body: {message: 'kept'},
      headers: {...auth, 'x-request-id': 'otlp-401-1'}});
    t.is(r.status, 200, 'a request answered');
    const ok = await waitFor(() => byRequest('otlp-401-1').length === 1, 30000, 100);
    t.ok(ok, 'delivered after five 401s, with spool_attempts 3');
    t.is(answers.length, 0, 'every 401 was given');
    t.is(fs.readdirSync(path.join(spool, 'failed')).filter(f => f.endsWith('.reason')).length, 1,
      'nothing more in failed/');
    t.like(spoold.log(), /credentials refused; records kept/, 'the log says the records are kept');
  });

  await t.test('llmgw-spoold killed with an export in flight: sent again, the same spans', async () => {
    let release;
    hold = {promise: new Promise(r => { release = r; })};
    const n0 = exports.length;
    for (let i = 1; i <= 3; i++)
      await request(url('/chat'), {method: 'POST', body: {message: 'x'}, headers: {...auth, 'x-request-id': `otlp-kill-${i}`}});
    const inFlight = await waitFor(() => exports.length > n0, 10000, 20);
    t.ok(inFlight, 'an export is in flight');
    spoold.proc.kill('SIGKILL');
    await waitFor(() => spoold.exited, 5000);
    hold = null;
    release(200);	// taken by the receiver, never seen by the dead consumer
    const nKilled = exports.length;
    spoold = startSpoold({dir, env: {...env, ...sanitizerEnv(dir)}, log: 'spoold2.log'});
    const kill = [1, 2, 3].map(i => `otlp-kill-${i}`);
    const since = () => exports.slice(nKilled).filter(e => e.status === 200).flatMap(spansOf);
    const back = await waitFor(() => kill.every(id => since().some(sp => rid(sp) === id)), 30000, 100);
    t.ok(back, 'all three delivered again by the next llmgw-spoold');
    for (const id of kill) {
      const seen = exports.slice(n0).flatMap(spansOf).filter(sp => rid(sp) === id);
      const distinct = new Set(seen.map(sp => `${sp.traceId}/${sp.spanId}`));
      t.is(distinct.size, 1, `${id}: sent ${seen.length} times, always as the same span`);
    }
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
