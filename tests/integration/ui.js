// POST /chat/ui with the Vercel AI SDK's own client code (the `ai`
// package from npm): DefaultChatTransport.sendMessages, the transport
// useChat uses, read with readUIMessageStream, against llmgw behind
// lighttpd.  A three-turn conversation, exact text, failures before and
// after the first token, Stop.  And /chat/stream's mend: a delta that is
// "[DONE]" is never a bare end marker, checked with eventsource-parser.
'use strict';
const t = require('../lib/tap');
const {request, sse, waitFor, sleep} = require('../lib/http');
const {setup, usageRow, TOKEN} = require('../lib/servers');

let ai, esp;
try { ai = require('ai'); esp = require('eventsource-parser'); } catch (e) { ai = null; }

// The UI messages useChat keeps: text parts.
const user = (id, text) => ({id, role: 'user', parts: [{type: 'text', text}]});
const assistant = (id, text) => ({id, role: 'assistant', parts: [{type: 'step-start'}, {type: 'text', text}]});

t.main(async () => {
  if (!ai) t.skipAll('ai and eventsource-parser are not installed (npm install in tests/)');
  const {url, db, stub} = await setup('ui');
  const transport = (headers = {authorization: `Bearer ${TOKEN}`}, body) => new ai.DefaultChatTransport({
    api: url('/chat/ui'), headers, body});
  // What useChat does with a reply: the final assistant UI message.
  const send = async (messages, {headers, body, abortSignal} = {}) => {
    const stream = await transport(headers, body).sendMessages({chatId: 'c1', messages, trigger: 'submit-message',
      messageId: undefined, abortSignal});
    let last, error = null, chunks = 0;
    try {
      // useChat's error state comes from onError.
      for await (const m of ai.readUIMessageStream({stream: stream.pipeThrough(new TransformStream({
        transform(c, ctl) { chunks++; ctl.enqueue(c); }})), onError: e => { error = error || e; }}))
        last = m;
    } catch (e) { error = e; }
    const text = last ? last.parts.filter(p => p.type === 'text').map(p => p.text).join('') : '';
    return {message: last, text, error, chunks};
  };

  await t.test('a three-turn conversation', async () => {
    const turns = [user('u1', 'My name is Ada. [[tokens:2]]')];
    const a1 = await send(turns);
    t.is(a1.error, null, 'no error');
    t.is(a1.text, 'tok0 tok1 ', 'the first reply');
    t.is(a1.message.role, 'assistant', 'an assistant message');
    t.ok(a1.message.metadata && a1.message.metadata.usage.outputTokens === 2,
      `the usage in its metadata: ${JSON.stringify(a1.message.metadata)}`);
    turns.push(assistant('a1', a1.text), user('u2', 'What is my name? [[tokens:3]]'));
    const a2 = await send(turns);
    turns.push(assistant('a2', a2.text), user('u3', 'Thanks. [[tokens:1]]'));
    turns.unshift({id: 's', role: 'system', parts: [{type: 'text', text: 'Be brief.'}]});
    const a3 = await send(turns);
    t.is(a3.text, 'tok0 ', 'the third reply');
    const log = await stub.log();
    const last = log[log.length - 1];
    t.is(last.turns, ['user:My name is Ada. [[tokens:2]]', 'assistant:tok0 tok1 ', 'user:What is my name? [[tokens:3]]',
      'assistant:tok0 tok1 tok2 ', 'user:Thanks. [[tokens:1]]'], 'the upstream got all five turns, in order');
    t.is(last.system, 'Be brief.', 'and the system message as its system prompt');
  });

  await t.test('exact text: multi-line and non-ASCII deltas', async () => {
    for (const d of ['[[multiline]]', '[[unicode]]']) {
      const r = await send([user('u', `${d} [[tokens:3]]`)]);
      const want = d === '[[multiline]]' ? 'line0\n\nnext0\nline1\n\nnext1\nline2\n\nnext2\n' : 'ünï0 日本語 🚀 ünï1 日本語 🚀 ünï2 日本語 🚀 ';
      t.is(r.text, want, `${d}: the text, byte for byte`);
    }
  });

  await t.test('the request as the transport sends it, and what it may carry', async () => {
    const r = await send([user('u', '[[tokens:2]]')], {body: {model: 'claude-haiku-4-5', max_tokens: 50}});
    t.is(r.error, null, 'model and max_tokens from the app\'s body');
    const log = await stub.log();
    t.is([log[log.length - 1].model, log[log.length - 1].max_tokens], ['claude-haiku-4-5', 50], 'passed upstream');
    const bad = await request(url('/chat/ui'), {method: 'POST', headers: {authorization: `Bearer ${TOKEN}`},
      body: {id: 'c', trigger: 'submit-message', temperature: 2,
        messages: [{id: 'u', role: 'user', parts: [{type: 'file', url: 'data:,x', mediaType: 'text/plain'}]}]}});
    t.is(bad.status, 422, 'an unknown field and an unsupported part: 422');
    t.is(bad.json.detail.map(p => p.loc.join('.')).sort(), ['body.messages.0', 'body.messages.0.parts.0', 'body.temperature'],
      `each located: ${bad.json.detail.map(p => p.msg).join('; ')}`);
    const big = await request(url('/chat/ui'), {method: 'POST', headers: {authorization: `Bearer ${TOKEN}`},
      body: {id: 'c', trigger: 'submit-message', messages: [user('u', 'x'.repeat(1100 * 1024))]}});
    t.is(big.status, 413, 'a conversation over body_limit: 413');
    const noAuth = await send([user('u', 'x')], {headers: {}}).catch(e => ({thrown: e}));
    t.ok(noAuth.thrown && /Not authenticated/.test(noAuth.thrown.message), `no token: the transport throws the 401's detail`);
  });

  await t.test('failures: before the first token, and midway', async () => {
    const before = await send([user('u', '[[status:529]]')]).catch(e => ({thrown: e}));
    t.ok(before.thrown && /temporarily unavailable/.test(before.thrown.message),
      `a 529 before the first token: the transport throws (${before.thrown && before.thrown.message})`);
    const cut = await send([user('u', '[[tokens:5]] [[cut:2]]')]);
    t.ok(cut.error && /ended the stream early/.test(cut.error.message), `cut midway: the SDK surfaces an error (${cut.error && cut.error.message})`);
    t.is(cut.text, 'tok0 tok1 ', 'after the text that came');
    t.ok(!cut.message.metadata, 'and no finish');
  });

  await t.test('Stop: the upstream transfer ends, the usage is billed', async () => {
    const ctl = new AbortController();
    const p = send([user('u', '[[tokens:100]] [[delay:50]] stop me')], {abortSignal: ctl.signal});
    await waitFor(async () => (await stub.log()).some(e => e.message && e.message.includes('stop me') && e.deltas >= 3), 10000);
    ctl.abort();
    await p.catch(() => {});
    const entry = await waitFor(async () => (await stub.log()).find(e => e.message && e.message.includes('stop me') &&
      e.client_closed_early), 10000);
    t.ok(entry && entry.deltas < 100, `the upstream was hung up on after ${entry && entry.deltas} of 100 deltas`);
    const rows = await waitFor(() => {
      const { sql } = require('../lib/servers');
      const r = sql(db, "SELECT partial, disconnected, output_tokens FROM usage WHERE route = '/chat/ui' AND disconnected = 1");
      return r.length ? r : null;
    }, 10000);
    t.ok(rows && rows[0].partial === 1 && rows[0].output_tokens >= 3, `a partial usage row: ${JSON.stringify(rows && rows[0])}`);
  });

  await t.test('/chat/stream: a delta that is "[DONE]" is text, not the end', async () => {
    // The stub's words are tok<i>: a multiline reply puts "[DONE]" on a
    // line of its own through the unicode-free path below.
    const r = await request(url('/chat/stream'), {method: 'POST', headers: {authorization: `Bearer ${TOKEN}`},
      body: {message: '[[done-text]] [[tokens:3]]'}});
    const texts = [];
    let ended = false, early = false;
    const parser = esp.createParser({onEvent: ev => {
      if (ev.event) return;
      if (ev.data === '[DONE]') { ended = true; return; }
      if (ended) early = true;
      texts.push(ev.data);
    }});
    parser.feed(r.text);
    t.ok(ended && !early, 'one end marker, at the end');
    t.is(texts.join(''), 'tok0 [DONE]\n[DONE]tok2 ', 'eventsource-parser gets the exact text, "[DONE]" and all');
    t.ok(!/^data: \[DONE\]$/m.test(r.text.slice(0, r.text.lastIndexOf('data: [DONE]'))),
      'no line of the stream but the last is a bare data: [DONE]');
  });
});
