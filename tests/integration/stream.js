// POST /chat/stream through lighttpd: events flushed as they arrive, exact
// text, [DONE], usage, errors after the first token, disconnects.
'use strict';
const t = require('../lib/tap');
const {sse, waitFor} = require('../lib/http');
const {setup, usageRow} = require('../lib/servers');

t.main(async () => {
  const {stub, url, auth, db} = await setup('stream', {conf: {idle_timeout: '1s'}});
  const stream = (message, opts = {}) => sse(url('/chat/stream'), {message}, {headers: auth, ...opts});
  const row = (id) => usageRow(db, id);

  await t.test('headers, events and [DONE]', async () => {
    const r = await stream('hi [[tokens:3]] [[usage:40,3,5,6]]');
    t.is(r.status, 200, 'status 200');
    t.like(r.headers['content-type'], /^text\/event-stream/, 'text/event-stream');
    t.is(r.headers['cache-control'], 'no-cache', 'Cache-Control: no-cache');
    t.is(r.headers['x-accel-buffering'], 'no', 'X-Accel-Buffering: no');
    t.is(r.events.map(e => e.data), ['tok0 ', 'tok1 ', 'tok2 ', '[DONE]'], 'one event per delta, then [DONE]');
    t.ok(r.done && !r.error, 'ends with [DONE]');
    const u = await row(r.headers['x-request-id']);
    t.ok(u, 'a usage row');
    if (u) {
      t.is([u.input_tokens, u.output_tokens], [40, 3], 'input from message_start, output from message_delta');
      t.is([u.cache_creation_input_tokens, u.cache_read_input_tokens], [5, 6], 'cache tokens kept');
      t.is([u.route, u.status, u.partial, u.disconnected], ['/chat/stream', 200, 0, 0], 'a complete stream');
      t.ok(u.ttft_ms !== null && u.ttft_ms <= u.total_ms, 'time to first token recorded');
    }
  });

  await t.test('include_usage: an event named usage before [DONE]', async () => {
    const r = await sse(url('/chat/stream'), {message: 'hi [[tokens:2]] [[usage:40,2]]', include_usage: true},
      {headers: auth});
    t.is(r.events.map(e => [e.event || '', e.data]),
      [['', 'tok0 '], ['', 'tok1 '], ['usage', '{"input_tokens":40,"output_tokens":2}'], ['', '[DONE]']],
      'text, then usage, then [DONE]');
    const bad = await sse(url('/chat/stream'), {message: 'hi', include_usage: 'yes'}, {headers: auth});
    t.is(bad.status, 422, 'a string for include_usage: 422');
  });

  await t.test('text arrives exactly', async () => {
    let r = await stream('[[multiline]] [[tokens:3]]');
    t.is(r.text, 'line0\n\nnext0\nline1\n\nnext1\nline2\n\nnext2\n', 'multi-line deltas reassemble exactly');
    t.like(r.raw, /data: line0\ndata: \ndata: next0\ndata: \n\n/, 'as several data lines of one event');
    r = await stream('[[unicode]] [[tokens:3]]');
    t.is(r.text, 'ünï0 日本語 🚀 ünï1 日本語 🚀 ünï2 日本語 🚀 ', 'non-ASCII intact');
  });

  await t.test('each token is flushed as it arrives', async () => {
    const r = await stream('[[tokens:6]] [[delay:200]]');
    const ts = r.events.filter(e => e.data !== '[DONE]').map(e => Math.round(e.t));
    t.is(ts.length, 6, 'six events');
    t.ok(ts[5] - ts[0] >= 800, `spread over the stub's 1 s, not in one burst (${ts.join(', ')} ms)`);
    const log = await stub.log();
    const last = log[log.length - 1];
    // The stub sent its last delta about 1 s after it began; we had the first long before.
    t.ok(ts[0] + 500 < r.ended, `first token (${ts[0]} ms) well before the end (${Math.round(r.ended)} ms)`);
    t.ok(last.completed, 'stub finished');
  });

  await t.test('20 concurrent streams run side by side, not one after another', async () => {
    const t0 = Date.now();
    const one = await stream('[[tokens:10]] [[delay:100]]');
    const single = Date.now() - t0;
    const t1 = Date.now();
    const all = await Promise.all(Array.from({length: 20}, () => stream('[[tokens:10]] [[delay:100]]')));
    const both = Date.now() - t1;
    t.ok(one.done, 'one stream completes');
    t.is(all.filter(r => r.done && r.events.length === 11).length, 20, 'all 20 complete with every event');
    // Serial would take 20 times one: the bound sits far from that and
    // from one, whatever the machine's load.
    t.ok(both < single * 20 / 4, `20 at once: ${both} ms; one alone: ${single} ms, 20 in a row about ${single * 20} ms`);
  });

  await t.test('an upstream error after the first token', async () => {
    const r = await stream('[[tokens:5]] [[error-event:2]]');
    t.is(r.status, 200, 'the stream had begun: 200');
    t.is(r.events.filter(e => e.event === '').map(e => e.data), ['tok0 ', 'tok1 '], 'the tokens before it');
    t.ok(r.error !== null, 'then an error event');
    const e = r.error ? JSON.parse(r.error) : {};
    t.is(e.type, 'overloaded_error', 'typed as the upstream said');
    t.is(typeof e.detail, 'string', 'with a detail');
    t.ok(!r.done, 'and no [DONE]');
    const u = await row(r.headers['x-request-id']);
    t.ok(u && u.partial === 1 && u.output_tokens === 2, 'usage: partial, 2 tokens');
    t.like(u && u.upstream_error, /overloaded/, 'the upstream error recorded');
  });

  await t.test('a stream cut after the first token', async () => {
    const r = await stream('[[tokens:5]] [[cut:3]]');
    t.is(r.events.filter(e => e.event === '').length, 3, 'three tokens');
    t.is(r.error && JSON.parse(r.error).type, 'upstream_cut', 'then an upstream_cut error event');
    const u = await row(r.headers['x-request-id']);
    t.ok(u && u.partial === 1 && u.output_tokens === 3, 'usage: partial, 3 tokens');
  });

  await t.test('a stalled stream hits idle_timeout', async () => {
    const r = await stream('[[tokens:5]] [[stall:2]]');
    t.is(r.events.filter(e => e.event === '').length, 2, 'two tokens');
    t.is(r.error && JSON.parse(r.error).type, 'upstream_timeout', 'then a timeout error event');
    // The stub stalls for good: without idle_timeout (1 s) it would be
    // the client's own timeout that ends the stream.
    t.ok(r.ended < 10000, `ended by idle_timeout (1 s), after ${Math.round(r.ended)} ms`);
    const u = await row(r.headers['x-request-id']);
    t.like(u && u.upstream_error, /idle_timeout/, 'recorded as idle_timeout');
  });

  await t.test('a client that hangs up stops the upstream transfer', async () => {
    await stub.reset();
    const r = await stream('[[tokens:200]] [[delay:100]]', {abortAfter: 3});
    t.ok(r.aborted, 'client hung up after 3 events');
    const gone = await waitFor(async () => {
      const log = await stub.log();
      return log.length && log[0].closed_at ? log[0] : null;
    }, 5000);
    t.ok(gone && gone.client_closed_early, 'the stub saw its connection closed early');
    // The whole stream would take 20 s; the hang-up comes after 0.3 s.
    t.ok(gone && gone.deltas < 100, `after ${gone && gone.deltas} of 200 deltas`);
    t.ok(gone && gone.closed_at - gone.t < 10000, `${gone && gone.closed_at - gone.t} ms after it began, not the 20 s of the whole stream`);
    const u = await row(r.headers['x-request-id']);
    t.ok(u, 'a usage row');
    if (u) {
      t.is(u.disconnected, 1, 'marked disconnected');
      t.is(u.partial, 1, 'and partial');
      t.ok(u.output_tokens >= 3 && u.output_tokens < 100, `with partial output tokens (${u.output_tokens})`);
      t.ok(u.input_tokens > 0, 'and the input tokens');
    }
  });

});
