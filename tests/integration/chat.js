// POST /chat through lighttpd: the whole reply, usage, ids, headers.
'use strict';
const t = require('../lib/tap');
const {request} = require('../lib/http');
const {setup, usageRow, API_KEY} = require('../lib/servers');

t.main(async () => {
  const {stub, url, auth, db} = await setup('chat');

  await t.test('a reply and its usage', async () => {
    const r = await request(url('/chat'), {method: 'POST', headers: auth,
      body: {message: 'hello [[tokens:4]] [[usage:12,4,2,3]]'}});
    t.is(r.status, 200, 'status 200');
    t.like(r.headers['content-type'], /^application\/json/, 'JSON');
    t.is(Object.keys(r.json).sort(), ['input_tokens', 'output_tokens', 'reply'], 'exactly the three fields');
    t.is(r.json.reply, 'tok0 tok1 tok2 tok3 ', 'the text of all blocks, joined');
    t.is(r.json.input_tokens, 12, 'input tokens');
    t.is(r.json.output_tokens, 4, 'output tokens');
    t.like(r.headers['x-request-id'], /^[0-9a-f]{32}$/, 'a generated X-Request-Id');
    t.is(r.headers['anthropic-ratelimit-requests-remaining'], undefined, "the organisation's rate-limit headers are not passed on");
    const log = await stub.log();
    const last = log[log.length - 1];
    t.is(last.model, 'claude-sonnet-4-6', 'default model sent upstream');
    t.is(last.max_tokens, 1024, 'default max_tokens sent upstream');
    t.is(last.stream, false, 'not streamed');
    t.is(last.api_key, API_KEY, 'x-api-key sent');
    t.is(last.version, '2023-06-01', 'anthropic-version sent');
    const row = await usageRow(db, r.headers['x-request-id']);
    t.ok(row, 'a usage row');
    if (row) {
      t.is([row.route, row.model, row.status], ['/chat', 'claude-sonnet-4-6', 200], 'route, model, status');
      t.is([row.input_tokens, row.output_tokens, row.cache_creation_input_tokens, row.cache_read_input_tokens],
        [12, 4, 2, 3], 'all four token counts');
      t.is([row.disconnected, row.partial, row.retries], [0, 0, 0], 'complete, no retries');
      t.ok(row.total_ms >= 0 && row.ttft_ms >= 0, 'times recorded');
      t.is(row.upstream_request_id, `req_stub_${last.n}`, 'upstream request-id recorded');
    }
  });

  await t.test('model and max_tokens as asked', async () => {
    const r = await request(url('/chat'), {method: 'POST', headers: auth,
      body: {message: 'x', model: 'claude-haiku-4-5', max_tokens: 77}});
    t.is(r.status, 200, 'status 200');
    const log = await stub.log();
    t.is([log[log.length - 1].model, log[log.length - 1].max_tokens], ['claude-haiku-4-5', 77], 'forwarded');
  });

  await t.test('X-Request-Id', async () => {
    let r = await request(url('/chat'), {method: 'POST', headers: {...auth, 'x-request-id': 'my-id.42'},
      body: {message: 'x'}});
    t.is(r.headers['x-request-id'], 'my-id.42', 'a well-formed incoming id is kept');
    r = await request(url('/chat'), {method: 'POST', headers: {...auth, 'x-request-id': 'bad id<script>'},
      body: {message: 'x'}});
    t.like(r.headers['x-request-id'], /^[0-9a-f]{32}$/, 'a malformed one is replaced');
    r = await request(url('/nowhere'), {});
    t.like(r.headers['x-request-id'], /^[0-9a-f]{32}$/, 'even errors carry one');
  });

  await t.test('unicode and newlines survive /chat', async () => {
    const r = await request(url('/chat'), {method: 'POST', headers: auth,
      body: {message: 'ünï [[unicode]] [[tokens:3]]'}});
    t.is(r.json.reply, 'ünï0 日本語 🚀 ünï1 日本語 🚀 ünï2 日本語 🚀 ', 'non-ASCII intact');
    const m = await request(url('/chat'), {method: 'POST', headers: auth,
      body: {message: '[[multiline]] [[tokens:2]]'}});
    t.is(m.json.reply, 'line0\n\nnext0\nline1\n\nnext1\n', 'newlines intact');
  });

  await t.test('a large reply', async () => {
    const r = await request(url('/chat'), {method: 'POST', headers: auth,
      body: {message: '[[reply-bytes:10485760]]'}});
    t.is(r.status, 200, '10 MB reply: 200');
    t.is(r.json && r.json.reply.length, 10485760, 'all of it');
  });

  await t.test('connections to the API are kept between bursts', async () => {
    // libcurl alone keeps four idle connections per transfer running when
    // one ends: after a burst it closes most, and the next burst opens
    // them again (a TLS handshake each against the real API).
    const stats = async () => JSON.parse((await request(`${stub.url}/stats`)).text);
    const before = (await stats()).connections;
    let ok = 0;
    for (let burst = 0; burst < 8; burst++) {
      const rs = await Promise.all(Array.from({length: 16}, (_, i) =>
        request(url('/chat'), {method: 'POST', headers: auth, body: {message: `burst ${burst} ${i}`}})));
      ok += rs.filter(r => r.status === 200).length;
    }
    const opened = (await stats()).connections - before;
    t.is(ok, 128, '8 bursts of 16: all 200');
    t.ok(opened <= 24, `at most one connection per request at once, and a few more (${opened} opened for 128)`);
  });

});
