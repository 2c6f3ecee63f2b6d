// The frameworks teams already call an LLM through, each pointed at llmgw
// with only its base URL and key changed, and with its own defaults:
// @ai-sdk/anthropic (generateText, streamText; max_tokens 64000 or more),
// LangChain's ChatAnthropic (invoke, stream) and ChatOpenAI (over
// /v1/chat/completions).  Every call leaves its usage row.
'use strict';
const {spawnSync} = require('child_process');
const t = require('../lib/tap');
const {waitFor} = require('../lib/http');
const {setup, sql, ADMIN, sanitizerEnv} = require('../lib/servers');

let ai, aiAnthropic, lcAnthropic, lcOpenAI;
try {
  ai = require('ai');
  aiAnthropic = require('@ai-sdk/anthropic');
  lcAnthropic = require('@langchain/anthropic');
  lcOpenAI = require('@langchain/openai');
} catch (e) {
  ai = null;
}

t.main(async () => {
  if (!ai) t.skipAll('the client packages are not installed (npm ci in tests/)');
  const {db, dir, env, stub, srv} = await setup('clients');
  const admin = (...a) => spawnSync(ADMIN, a, {env: {...env, ...sanitizerEnv(dir)}, encoding: 'utf8'});
  const create = (...a) => admin('key', 'create', ...a).stdout.trim();
  const secret = create('--name', 'clients-app');
  const base = srv.base + '/api/v1';
  const rows = name => sql(db, 'SELECT u.route, u.input_tokens, u.output_tokens FROM usage u ' +
    `JOIN keys k ON k.id = u.key_id WHERE k.name = '${name}' ORDER BY u.rowid`);
  // Usage rows are written by a batched writer once the answer has left:
  // wait for the count expected.
  const rowsOnce = async (name, n) => { await waitFor(() => rows(name).length >= n, 10000); return rows(name); };
  const lastSent = async () => { const log = await stub.log(); return log[log.length - 1]; };

  await t.test('@ai-sdk/anthropic: generateText and streamText with their defaults', async () => {
    const anthropic = aiAnthropic.createAnthropic({apiKey: secret, baseURL: base + '/v1'});
    const model = anthropic('claude-sonnet-4-6');
    const out = await ai.generateText({model, prompt: 'hello [[tokens:3]]', maxRetries: 0});
    t.is(out.text, 'tok0 tok1 tok2 ', 'generateText: the reply');
    t.ok(out.usage.inputTokens > 0 && out.usage.outputTokens === 3,
      `and its usage (${out.usage.inputTokens} in, ${out.usage.outputTokens} out)`);
    const sent = await lastSent();
    t.ok(sent.max_tokens > 8192, `the SDK's own default max_tokens (${sent.max_tokens}) was taken`);
    const stream = ai.streamText({model, prompt: 'hi [[tokens:4]]', maxRetries: 0});
    let text = '', parts = 0;
    for await (const d of stream.textStream) { text += d; parts++; }
    t.is(text, 'tok0 tok1 tok2 tok3 ', 'streamText: the text');
    t.ok(parts >= 4, `delta by delta (${parts} parts)`);
    t.is((await stream.usage).outputTokens, 4, 'usage at the end of the stream');
    t.is((await rowsOnce('clients-app', 2)).map(r => [r.route, r.output_tokens]),
      [['/v1/messages', 3], ['/v1/messages', 4]], 'a usage row for each');
  });

  await t.test('@ai-sdk/anthropic on a small budget: a stream takes what is left', async () => {
    const small = create('--name', 'clients-small', '--budget-tokens', '500', '--period', 'day');
    const model = aiAnthropic.createAnthropic({apiKey: small, baseURL: base + '/v1'})('claude-sonnet-4-6');
    const stream = ai.streamText({model, prompt: 'hi [[tokens:2]]', maxRetries: 0});
    let text = '';
    for await (const d of stream.textStream) text += d;
    t.is(text, 'tok0 tok1 ', 'the default max_tokens does not exhaust a budget of 500');
    t.is((await rowsOnce('clients-small', 1)).length, 1, 'and its usage row');
  });

  await t.test("LangChain's ChatAnthropic: invoke and stream with its defaults", async () => {
    const chat = new lcAnthropic.ChatAnthropic({model: 'claude-sonnet-4-6', apiKey: secret,
      anthropicApiUrl: base, maxRetries: 0});
    const msg = await chat.invoke('hello [[tokens:3]]');
    t.is(msg.text, 'tok0 tok1 tok2 ', 'invoke: the reply (the stub answers in two text blocks)');
    t.is(msg.usage_metadata && msg.usage_metadata.output_tokens, 3, 'usage_metadata');
    const sent = await lastSent();
    t.ok(sent.max_tokens > 8192, `its default max_tokens (${sent.max_tokens}) was taken`);
    let text = '';
    for await (const chunk of await chat.stream('hi [[tokens:5]]')) text += chunk.content;
    t.is(text, 'tok0 tok1 tok2 tok3 tok4 ', 'stream: the text');
    const err = await new lcAnthropic.ChatAnthropic({model: 'claude-sonnet-4-6', apiKey: 'sk-wrong',
      anthropicApiUrl: base, maxRetries: 0}).invoke('hi').catch(e => e);
    t.is(err.status, 401, 'a wrong key: an error with status 401');
  });

  await t.test("LangChain's ChatOpenAI over /v1/chat/completions: invoke and stream", async () => {
    const key = create('--name', 'clients-openai');
    const chat = new lcOpenAI.ChatOpenAI({model: 'claude-sonnet-4-6', apiKey: key,
      configuration: {baseURL: base + '/v1'}, maxRetries: 0});
    const msg = await chat.invoke([['system', 'be brief'], ['human', 'hello [[tokens:3]]']]);
    t.is(msg.content, 'tok0 tok1 tok2 ', 'invoke: the reply');
    t.is(msg.usage_metadata && msg.usage_metadata.output_tokens, 3, 'usage_metadata from usage');
    const sent = await lastSent();
    t.is(sent.system, 'be brief', 'the system message became system');
    let text = '', chunks = 0, usage = null;
    for await (const chunk of await chat.stream('hi [[tokens:4]]')) {
      text += chunk.content; chunks++;
      if (chunk.usage_metadata) usage = chunk.usage_metadata;
    }
    t.is(text, 'tok0 tok1 tok2 tok3 ', 'stream: the text');
    t.ok(chunks >= 4, `in chunks (${chunks})`);
    t.is(usage && usage.output_tokens, 4, 'with the usage (stream_options.include_usage)');
    t.is((await rowsOnce('clients-openai', 2)).map(r => r.route), ['/v1/chat/completions', '/v1/chat/completions'],
      'usage rows on the route');
  });
});
