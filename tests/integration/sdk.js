// POST /v1/messages: the Anthropic Messages API passed through, used by
// the official @anthropic-ai/sdk with only its base URL changed.
'use strict';
const {spawnSync} = require('child_process');
const t = require('../lib/tap');
const {request, sse, waitFor} = require('../lib/http');
const {setup, usageRow, sql, ADMIN, sanitizerEnv} = require('../lib/servers');

let Anthropic;
try { Anthropic = require('@anthropic-ai/sdk'); Anthropic = Anthropic.default || Anthropic; } catch (e) {
  Anthropic = null;
}

t.main(async () => {
  if (!Anthropic) t.skipAll('@anthropic-ai/sdk is not installed (npm install in tests/)');
  const {url, db, dir, env, stub, srv} = await setup('sdk');
  const admin = (...a) => spawnSync(ADMIN, a, {env: {...env, ...sanitizerEnv(dir)}, encoding: 'utf8'});
  const secret = admin('key', 'create', '--name', 'sdk-app').stdout.trim();
  const keyId = sql(db, "SELECT id FROM keys WHERE name = 'sdk-app'")[0].id;
  const client = new Anthropic({apiKey: secret, baseURL: srv.base + '/api/v1', maxRetries: 0});
  const ask = (content, extra = {}) => ({model: 'claude-sonnet-4-6', max_tokens: 200,
    messages: [{role: 'user', content}], ...extra});

  await t.test('non-streaming', async () => {
    const {data: msg, response} = await client.messages.create(ask('hello [[tokens:4]] [[usage:21,4,5,6]]')).withResponse();
    t.is(msg.type, 'message', 'a message');
    t.is(msg.content.map(b => b.text).join(''), 'tok0 tok1 tok2 tok3 ', 'its text, all blocks');
    t.is([msg.usage.input_tokens, msg.usage.output_tokens, msg.usage.cache_creation_input_tokens,
      msg.usage.cache_read_input_tokens], [21, 4, 5, 6], 'the usage, unchanged');
    t.like(response.headers.get('request-id'), /^req_stub_\d+$/, 'the upstream request-id header');
    t.is(response.headers.get('anthropic-ratelimit-requests-remaining'), null, "the organisation's rate-limit headers are not passed on");
    const u = await usageRow(db, response.headers.get('x-request-id'));
    t.ok(u && u.route === '/v1/messages' && u.key_id === keyId && u.input_tokens === 21 && u.output_tokens === 4 &&
      u.cache_read_input_tokens === 6, 'a usage row: route, key and tokens');
    const log = await stub.log();
    const sent = log[log.length - 1];
    t.is([sent.api_key, sent.version, sent.model, sent.max_tokens, sent.stream],
      [env.ANTHROPIC_API_KEY, '2023-06-01', 'claude-sonnet-4-6', 200, false],
      'upstream got the body as sent, with the gateway\'s key');
  });

  await t.test('streaming', async () => {
    const stream = client.messages.stream(ask('[[tokens:5]] [[delay:100]] [[multiline]]'));
    let text = '', deltas = 0;
    stream.on('text', d => { text += d; deltas++; });
    const final = await stream.finalMessage();
    t.is(text, 'line0\n\nnext0\nline1\n\nnext1\nline2\n\nnext2\nline3\n\nnext3\nline4\n\nnext4\n', 'the text, delta by delta');
    t.is(deltas, 5, 'five text events');
    t.is(final.usage.output_tokens, 5, 'final usage from message_delta');
    t.is(final.stop_reason, 'end_turn', 'stop reason');
    const events = [];
    for await (const ev of await client.messages.create(ask('[[tokens:2]]', {stream: true}))) events.push(ev.type);
    // (The SDK hides ping events; the raw check below sees them.)
    t.is(events, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta',
      'content_block_stop', 'message_delta', 'message_stop'], 'stream: true gives every event, in order');
  });

  await t.test('authentication and errors as the SDK knows them', async () => {
    const bad = new Anthropic({apiKey: 'llmgw_nope', baseURL: srv.base + '/api/v1', maxRetries: 0});
    try { await bad.messages.create(ask('x')); t.ok(false, 'a wrong key fails'); } catch (e) {
      t.ok(e instanceof Anthropic.AuthenticationError && e.status === 401, `a wrong key: AuthenticationError (${e.status})`);
      t.is(e.error && e.error.error && e.error.error.type, 'authentication_error', 'with the API\'s error shape');
    }
    const bearer = new Anthropic({authToken: secret, apiKey: null, baseURL: srv.base + '/api/v1', maxRetries: 0});
    const m = await bearer.messages.create(ask('[[tokens:1]]'));
    t.is(m.content[0].text + (m.content[1] ? m.content[1].text : ''), 'tok0 ', 'Authorization: Bearer works too');
    try { await client.messages.create(ask('[[status:400]] [[error-message:messages.0: bad]]')); } catch (e) {
      t.ok(e instanceof Anthropic.BadRequestError && e.status === 400, 'an upstream 400 passes through');
      t.is(e.error.error.message, 'messages.0: bad', 'with its message');
    }
    for (const st of [401, 403]) {
      try { await client.messages.create(ask(`[[status:${st}]] [[error-message:invalid x-api-key sk-ant-upstream]]`)); } catch (e) {
        t.ok(e instanceof Anthropic.InternalServerError && e.status === 502,
          `an upstream ${st} (llmgw's own key refused): 502 (${e.status})`);
        t.ok(!/x-api-key|sk-ant/.test(JSON.stringify(e.error)), 'the client does not read what the upstream said of it');
      }
    }
    try { await client.messages.create(ask('[[status:529]]')); } catch (e) {
      t.is(e.status, 529, 'an upstream 529 passes through (after llmgw\'s retries)');
      t.is(e.error.error.type, 'overloaded_error', 'as overloaded_error');
    }
    // The SDK's own default retries (2) on top of llmgw's (2) made 9 calls;
    // x-should-retry: false keeps it at llmgw's.
    const before = (await stub.log()).length;
    const retrying = new Anthropic({apiKey: secret, baseURL: srv.base + '/api/v1'});
    const t0 = Date.now();
    try { await retrying.messages.create(ask('[[status:529]] persistent')); } catch (e) {
      t.is(e.headers && e.headers.get('x-should-retry'), 'false', 'x-should-retry: false');
    }
    t.is((await stub.log()).length - before, 3, `a persistent 529: 3 upstream calls, llmgw's own (${Date.now() - t0} ms)`);
    // Streamed: the SDK refuses, unasked, a large max_tokens without.
    try { await client.messages.create(ask('x', {max_tokens: 200000, stream: true})); } catch (e) {
      t.ok(e instanceof Anthropic.BadRequestError && /max_tokens: at most 128000 for claude-sonnet-4-6/.test(e.message),
        `over the model's ceiling: 400 (${e.constructor.name}: ${e.message})`);
    }
    const tight = admin('key', 'create', '--name', 'tight', '--budget-tokens', '300', '--period', 'day').stdout.trim();
    const tc = new Anthropic({apiKey: tight, baseURL: srv.base + '/api/v1', maxRetries: 0});
    try { await tc.messages.create(ask('x', {max_tokens: 500})); } catch (e) {
      t.ok(e instanceof Anthropic.RateLimitError && e.status === 429, 'over the key\'s budget: RateLimitError');
      t.ok(+e.headers.get('retry-after') > 0, 'with retry-after');
    }
  });

  await t.test('events pass through verbatim', async () => {
    const r = await sse(url('/v1/messages'), ask('[[tokens:3]] [[unicode]]', {stream: true}),
      {headers: {'x-api-key': secret, 'anthropic-version': '2023-06-01'}});
    t.is(r.status, 200, '200');
    t.like(r.headers['content-type'], /^text\/event-stream/, 'text/event-stream');
    t.is(r.events.map(e => e.event), ['message_start', 'content_block_start', 'ping', 'content_block_delta',
      'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    'every event with its name');
    const deltas = r.events.filter(e => e.event === 'content_block_delta').map(e => JSON.parse(e.data).delta.text);
    t.is(deltas.join(''), 'ünï0 日本語 🚀 ünï1 日本語 🚀 ünï2 日本語 🚀 ', 'data as the upstream sent it');
    t.ok(!r.done, 'no [DONE]: that is /chat/stream\'s');
    const no = await request(url('/v1/messages'), {method: 'POST', body: ask('x')});
    t.is([no.status, no.json.type, no.json.error.type], [401, 'error', 'authentication_error'], 'no key: 401, API shape');
    const inv = await request(url('/v1/messages'), {method: 'POST', headers: {'x-api-key': secret}, body: {model: 'm'}});
    t.is([inv.status, inv.json.error.type], [400, 'invalid_request_error'], 'a body without max_tokens: 400');
    const inj = await request(url('/v1/messages'), {method: 'POST', headers: {'x-api-key': secret,
      'anthropic-beta': 'tools-\u00e9'}, body: ask('x')});
    t.is(inj.status, 400, 'a byte that is not plain ASCII in anthropic-beta: 400');
  });

  await t.test('a streaming client that stops', async () => {
    await stub.reset();
    const stream = client.messages.stream(ask('[[tokens:40]] [[delay:100]] going'));
    let n = 0;
    stream.on('text', () => { if (++n === 3) stream.abort(); });
    try { await stream.finalMessage(); } catch (e) { /* aborted, as meant */ }
    const e = await waitFor(async () => {
      const log = await stub.log();
      return log.length && log[0].closed_at ? log[0] : null;
    }, 5000);
    t.ok(e && e.client_closed_early && e.deltas < 40, `the upstream transfer stopped (${e && e.deltas} of 40)`);
    // An empty array is true: wait for a row, not for an answer.
    const rows = await waitFor(() => {
      const r = sql(db, "SELECT * FROM usage WHERE route = '/v1/messages' AND disconnected = 1");
      return r.length ? r : null;
    }, 5000);
    t.ok(rows && rows.length === 1 && rows[0].output_tokens >= 3, 'a usage row marked disconnected, partial tokens');
  });
});
