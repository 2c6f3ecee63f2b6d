// Every upstream fault the gateway must survive, each with its exact
// outcome: what the client gets (HTTP status and detail, or the SSE error
// event after the tokens that came), the usage row, and the spool record.
'use strict';
const t = require('../lib/tap');
const path = require('path');
const {request, sse, freePort, waitFor} = require('../lib/http');
const {setup, usageRow, spoolRecords} = require('../lib/servers');

const conf = {retries: 2, retry_base: '50ms', retry_max: '200ms', first_byte_timeout: '1s', idle_timeout: '1s'};

// The spool record of request "id".
function spoolRecord(dir, id) {
  return waitFor(() => spoolRecords(path.join(dir, 'spool')).find(r => r.request_id === id) || null, 10000);
}

// What a test compares: the client's view, the row and the record.
async function outcome(ctx, r) {
  const id = r.headers['x-request-id'];
  const u = await usageRow(ctx.db, id);
  const rec = await spoolRecord(ctx.dir, id);
  let client;
  if (r.events !== undefined && r.status === 200)
    client = {status: 200, tokens: r.events.filter(e => e.event === '' && e.data !== '[DONE]').length,
      error: r.error ? JSON.parse(r.error).type : null, done: r.done};
  else
    client = {status: r.status, detail: JSON.parse(r.raw || r.text).detail};
  const pick = (x) => x && {status: x.status, upstream_status: x.upstream_status || null, retries: x.retries,
    partial: !!x.partial, output_tokens: x.output_tokens};
  return {client, usage: pick(u), record: pick(rec), errors: [u && u.upstream_error, rec && rec.upstream_error]};
}

t.main(async () => {
  const ctx = await setup('fault-matrix', {conf});
  const chat = (message) => request(ctx.url('/chat'), {method: 'POST', headers: ctx.auth, body: {message}});
  const stream = (message) => sse(ctx.url('/chat/stream'), {message}, {headers: ctx.auth});

  const cases = [
    ['529 overloaded', () => chat('[[status:529]]'),
      {status: 503, detail: 'AI service temporarily unavailable'},
      {status: 503, upstream_status: 529, retries: 2, partial: true, output_tokens: 0}, /overloaded/i],
    ['429 with retry-after', () => chat('[[status:429]] [[retry-after:7]]'),
      {status: 429, detail: 'AI service rate limit reached; retry later'},
      {status: 429, upstream_status: 429, retries: 0, partial: true, output_tokens: 0}, /rate/i],
    ['500', () => chat('[[status:500]]'),
      {status: 502, detail: 'AI service error'},
      {status: 502, upstream_status: 500, retries: 2, partial: true, output_tokens: 0}, /api_error|500|internal/i],
    ['slow headers', () => chat('[[headers-delay:3000]]'),
      {status: 504, detail: 'AI service timed out'},
      {status: 504, upstream_status: null, retries: 0, partial: true, output_tokens: 0}, /first_byte_timeout/],
    ['stall mid-stream', () => stream('[[tokens:5]] [[stall:2]]'),
      {status: 200, tokens: 2, error: 'upstream_timeout', done: false},
      {status: 200, upstream_status: 200, retries: 0, partial: true, output_tokens: 2}, /idle_timeout/],
    ['cut mid-stream', () => stream('[[tokens:5]] [[cut:3]]'),
      {status: 200, tokens: 3, error: 'upstream_cut', done: false},
      {status: 200, upstream_status: 200, retries: 0, partial: true, output_tokens: 3}, /cut|closed|ended/i],
    ['malformed JSON in an event', () => stream('[[tokens:5]] [[malformed:1]]'),
      {status: 200, tokens: 1, error: 'upstream_malformed', done: false},
      {status: 200, upstream_status: 200, retries: 0, partial: true, output_tokens: 1}, /malformed/i],
    ['an oversized event', () => stream('[[big-event]]'),
      {status: 502, detail: 'the AI service sent more than llmgw accepts'},
      // message_start counts one output token, as the Messages API does.
      {status: 502, upstream_status: 200, retries: 0, partial: true, output_tokens: 1}, /more than llmgw accepts/],
  ];
  for (const [name, call, client, row, err] of cases) {
    await t.test(name, async () => {
      const o = await outcome(ctx, await call());
      t.is(o.client, client, `${name}: the client sees ${JSON.stringify(client)}`);
      t.is(o.usage, row, `${name}: the usage row`);
      t.is(o.record, row, `${name}: the spool record`);
      t.ok(err.test(o.errors[0] || '') && o.errors[0] === o.errors[1], `${name}: upstream_error ${JSON.stringify(o.errors[0])}`);
    });
  }

  await t.test('a 10 MB reply', async () => {
    // The stub takes a while to build 10 MB, past the 1 s timeouts the
    // cases above use on a loaded machine: an llmgw with roomy ones.
    const roomy = await setup('fault-big', {conf: {...conf, first_byte_timeout: '30s', idle_timeout: '30s'}});
    const big = 10 * 1024 * 1024;
    let r = await request(roomy.url('/chat'), {method: 'POST', headers: roomy.auth,
      body: {message: `[[reply-bytes:${big}]]`}});
    let o = await outcome(roomy, r);
    t.is([r.status, r.json && r.json.reply.length], [200, big], '/chat: 200 and all of it');
    t.is(o.usage, {status: 200, upstream_status: 200, retries: 0, partial: false, output_tokens: o.usage.output_tokens},
      '/chat: a complete usage row');
    t.is(o.record, o.usage, '/chat: the same in the spool record');
    r = await sse(roomy.url('/chat/stream'), {message: `[[reply-bytes:${big}]]`}, {headers: roomy.auth});
    o = await outcome(roomy, r);
    t.is([r.status, r.text.length, r.done], [200, big, true], '/chat/stream: 200, all of it, [DONE]');
    t.is(o.usage && o.usage.partial, false, '/chat/stream: complete');
  });

  await t.test('connection refused', async () => {
    const port = await freePort();	// nothing listens there
    const down = await setup('fault-refused', {conf, env: {ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}`}});
    for (const route of ['/chat', '/chat/stream']) {
      const r = await request(down.url(route), {method: 'POST', headers: down.auth, body: {message: 'hi'}});
      const o = await outcome(down, r);
      t.is(o.client, {status: 502, detail: 'AI service unreachable'}, `${route}: 502, unreachable`);
      t.is(o.usage, {status: 502, upstream_status: null, retries: 2, partial: true, output_tokens: 0},
        `${route}: usage row, retried twice`);
      t.is(o.record, o.usage, `${route}: the spool record`);
      t.like(o.errors[0], /connect/i, `${route}: upstream_error says why`);
    }
  });

  await t.test('still serving', async () => {
    const r = await chat('[[tokens:2]]');
    t.is([r.status, r.json && r.json.reply], [200, 'tok0 tok1 '], 'after all of it, a normal request');
  });
});
