// POST /v1/chat/completions with the official openai SDK from npm, its
// base URL the only change: create, stream with include_usage, a tool
// round trip (streamed and not), image parts, and errors surfacing as the
// SDK's own error classes.
'use strict';
const t = require('../lib/tap');
const {request} = require('../lib/http');
const {setup, usageRow, sql, TOKEN} = require('../lib/servers');

let OpenAI;
try { OpenAI = require('openai'); OpenAI = OpenAI.default || OpenAI.OpenAI || OpenAI; } catch (e) { OpenAI = null; }

const weather = {type: 'function', function: {name: 'get_weather', description: 'The weather in a city',
  parameters: {type: 'object', properties: {city: {type: 'string'}}, required: ['city']}}};

t.main(async () => {
  if (!OpenAI) t.skipAll('openai is not installed (npm install in tests/)');
  const {db, stub, srv} = await setup('openai', {conf: {allowed_models: 'claude-sonnet-4-6, claude-haiku-4-5',
    retries: 0}});
  const client = new OpenAI({apiKey: TOKEN, baseURL: srv.base + '/api/v1/v1', maxRetries: 0});
  const lastStub = async () => { const l = await stub.log(); return l[l.length - 1]; };

  await t.test('chat.completions.create', async () => {
    const {data: c, response} = await client.chat.completions.create({model: 'claude-sonnet-4-6',
      messages: [{role: 'system', content: 'Be brief.'}, {role: 'developer', content: 'Use English.'},
        {role: 'user', content: 'hello [[tokens:3]] [[usage:21,3,0,4]]'}],
      max_completion_tokens: 100, temperature: 1.5, top_p: 0.9, stop: ['END'], user: 'u-42'}).withResponse();
    t.is([c.object, c.model, c.choices.length, c.choices[0].message.role], ['chat.completion', 'claude-sonnet-4-6', 1,
      'assistant'], 'a chat.completion');
    t.like(c.id, /^chatcmpl-[0-9a-f]{32}$/, `its id: ${c.id}`);
    t.ok(Math.abs(c.created - Date.now() / 1000) < 60, 'created: now');
    t.is(c.choices[0].message.content, 'tok0 tok1 tok2 ', 'the text');
    t.is(c.choices[0].finish_reason, 'stop', 'finish_reason stop');
    t.is(c.usage, {prompt_tokens: 25, completion_tokens: 3, total_tokens: 28, prompt_tokens_details: {cached_tokens: 4}},
      'usage: prompt (cache included), completion, total, cached');
    const up = await lastStub();
    t.is(up.system, 'Be brief.\n\nUse English.', 'system and developer messages: the system prompt');
    t.is([up.max_tokens, up.temperature, up.stop_sequences], [100, 1, ['END']],
      'max_completion_tokens, temperature (at most 1), stop');
    const u = await usageRow(db, response.headers.get('x-request-id'));
    t.ok(u && u.route === '/v1/chat/completions' && u.output_tokens === 3, 'a usage row');
  });

  await t.test('stream, with include_usage', async () => {
    const stream = await client.chat.completions.create({model: 'claude-haiku-4-5', stream: true,
      stream_options: {include_usage: true}, messages: [{role: 'user', content: '[[multiline]] [[tokens:3]]'}]});
    let text = '', usage = null, finish = null, role = null, chunks = 0, ids = new Set();
    for await (const ch of stream) {
      chunks++;
      ids.add(ch.id);
      if (ch.object !== 'chat.completion.chunk') throw new Error('not a chunk');
      if (ch.usage) usage = ch.usage;
      const c = ch.choices[0];
      if (!c) continue;
      if (c.delta.role) role = c.delta.role;
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
    t.is(text, 'line0\n\nnext0\nline1\n\nnext1\nline2\n\nnext2\n', 'the text, exactly');
    t.is([role, finish], ['assistant', 'stop'], 'role first, finish_reason last');
    t.ok(usage && usage.completion_tokens === 3 && usage.total_tokens === usage.prompt_tokens + 3, 'the usage chunk');
    t.is(ids.size, 1, `one id for all ${chunks} chunks`);
  });

  await t.test('a tool round trip', async () => {
    const q = {role: 'user', content: 'Weather in Paris? [[tool-use:get_weather]]'};
    const first = await client.chat.completions.create({model: 'claude-sonnet-4-6', tools: [weather],
      tool_choice: 'auto', messages: [q]});
    const m = first.choices[0].message;
    t.is(first.choices[0].finish_reason, 'tool_calls', 'finish_reason tool_calls');
    t.is(m.content, 'Let me look. ', 'with what it said first');
    t.is(m.tool_calls.map(c => [c.type, c.function.name, JSON.parse(c.function.arguments)]),
      [['function', 'get_weather', {city: 'Paris'}]], 'a call of get_weather with its arguments');
    t.is((await lastStub()).tools, ['get_weather'], 'the tool went upstream');
    const second = await client.chat.completions.create({model: 'claude-sonnet-4-6', tools: [weather],
      messages: [q, m, {role: 'tool', tool_call_id: m.tool_calls[0].id, content: '18 C, sunny'}]});
    t.is(second.choices[0].message.content, 'The tool said: 18 C, sunny', 'the answer, from the tool\'s result');
    t.is((await lastStub()).tool_results, [m.tool_calls[0].id], 'the result went back under the call\'s id');

    const stream = await client.chat.completions.create({model: 'claude-sonnet-4-6', tools: [weather], stream: true,
      tool_choice: {type: 'function', function: {name: 'get_weather'}}, parallel_tool_calls: false, messages: [q]});
    const calls = [];
    let finish = null;
    for await (const ch of stream) {
      const c = ch.choices[0];
      if (!c) continue;
      for (const tc of c.delta.tool_calls || []) {
        calls[tc.index] = calls[tc.index] || {id: '', name: '', args: ''};
        if (tc.id) calls[tc.index].id = tc.id;
        if (tc.function && tc.function.name) calls[tc.index].name = tc.function.name;
        if (tc.function && tc.function.arguments) calls[tc.index].args += tc.function.arguments;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
    t.is(calls.map(c => [c.name, JSON.parse(c.args)]), [['get_weather', {city: 'Paris'}]],
      'streamed: the call, its arguments put together from their pieces');
    t.is(finish, 'tool_calls', 'streamed: finish_reason tool_calls');
    t.is((await lastStub()).tool_choice, {type: 'tool', name: 'get_weather', disable_parallel_tool_use: true},
      'tool_choice and parallel_tool_calls translated');
  });

  await t.test('image parts', async () => {
    const c = await client.chat.completions.create({model: 'claude-sonnet-4-6', messages: [{role: 'user', content: [
      {type: 'text', text: 'What is this?'},
      {type: 'image_url', image_url: {url: 'data:image/png;base64,iVBORw0KGgo='}},
      {type: 'image_url', image_url: {url: 'https://example.org/cat.png'}}]}]});
    t.ok(c.choices[0].message.content.length > 0, 'answered');
    t.is((await lastStub()).images, ['base64', 'url'], 'a data URL as a base64 image, an https URL as a URL image');
  });

  await t.test('errors as the SDK\'s own classes', async () => {
    const bad = new OpenAI({apiKey: 'nope', baseURL: srv.base + '/api/v1/v1', maxRetries: 0});
    const err = async (p) => { try { await p; return null; } catch (e) { return e; } };
    let e = await err(bad.chat.completions.create({model: 'claude-sonnet-4-6', messages: [{role: 'user', content: 'x'}]}));
    t.ok(e instanceof OpenAI.AuthenticationError && e.status === 401, `401: AuthenticationError (${e && e.message})`);
    e = await err(client.chat.completions.create({model: 'gpt-4o', messages: [{role: 'user', content: 'x'}]}));
    t.ok(e instanceof OpenAI.NotFoundError && e.code === 'model_not_found', `404 for a model not served: ${e && e.message}`);
    e = await err(client.chat.completions.create({model: 'claude-sonnet-4-6', n: 2, messages: [{role: 'user', content: 'x'}]}));
    t.ok(e instanceof OpenAI.BadRequestError && e.param === 'n', `400 naming n: ${e && e.message}`);
    e = await err(client.chat.completions.create({model: 'claude-sonnet-4-6', logprobs: true,
      messages: [{role: 'user', content: 'x'}]}));
    t.ok(e instanceof OpenAI.BadRequestError && e.param === 'logprobs', `400 naming logprobs`);
    e = await err(client.chat.completions.create({model: 'claude-sonnet-4-6',
      messages: [{role: 'user', content: [{type: 'input_audio', input_audio: {data: 'x', format: 'wav'}}]}]}));
    t.ok(e instanceof OpenAI.BadRequestError && e.param === 'messages[0].content[0]', `400 naming the part: ${e && e.message}`);
    e = await err(client.chat.completions.create({model: 'claude-sonnet-4-6',
      messages: [{role: 'user', content: '[[status:429]] [[retry-after:3]]'}]}));
    t.ok(e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '3', '429: RateLimitError, with retry-after');
    e = await err(client.chat.completions.create({model: 'claude-sonnet-4-6',
      messages: [{role: 'user', content: '[[status:529]]'}]}));
    t.ok(e instanceof OpenAI.InternalServerError && e.status === 503, `503: InternalServerError (${e && e.message})`);
    e = await err(client.chat.completions.create({model: 'claude-sonnet-4-6',
      messages: [{role: 'user', content: '[[status:400]] [[error-message:prompt is too long]]'}]}));
    t.ok(e instanceof OpenAI.BadRequestError && /prompt is too long/.test(e.message), 'the upstream\'s 400, its words');
    const raw = await request(srv.url('/v1/chat/completions'), {method: 'POST', headers: {authorization: `Bearer ${TOKEN}`},
      body: 'not json'});
    t.ok(raw.status === 400 && raw.json.error && raw.json.error.type === 'invalid_request_error',
      'a body that is not JSON: OpenAI\'s error shape');
    const s = await client.chat.completions.create({model: 'claude-sonnet-4-6', stream: true,
      messages: [{role: 'user', content: '[[tokens:5]] [[cut:2]]'}]});
    e = await err((async () => { for await (const ch of s) { void ch; } })());
    t.ok(e instanceof OpenAI.APIError, `a stream cut midway: the SDK throws (${e && e.message})`);
  });
});
