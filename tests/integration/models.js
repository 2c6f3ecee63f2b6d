// The rest of the API's surface the SDKs call: GET /v1/models and
// /v1/models/{id} in Anthropic's shape and OpenAI's, POST
// /v1/messages/count_tokens passed through, the key's own x-ratelimit-*
// headers (and the organisation's anthropic-ratelimit-* only when asked),
// and errors on /v1/ paths in the API's shape.  With the official SDKs.
'use strict';
const {spawnSync} = require('child_process');
const t = require('../lib/tap');
const {request} = require('../lib/http');
const {setup, sql, ADMIN, sanitizerEnv} = require('../lib/servers');

let Anthropic, OpenAI;
try {
  Anthropic = require('@anthropic-ai/sdk'); Anthropic = Anthropic.default || Anthropic;
  OpenAI = require('openai'); OpenAI = OpenAI.default || OpenAI;
} catch (e) {
  Anthropic = null;
}

t.main(async () => {
  if (!Anthropic) t.skipAll('the SDKs are not installed (npm ci in tests/)');
  const {url, db, dir, env, stub, srv} = await setup('models');
  const admin = (...a) => spawnSync(ADMIN, a, {env: {...env, ...sanitizerEnv(dir)}, encoding: 'utf8'});
  const create = (...a) => admin('key', 'create', ...a).stdout.trim();
  const secret = create('--name', 'models-app');
  const base = srv.base + '/api/v1';
  const anthropic = s => new Anthropic({apiKey: s, baseURL: base, maxRetries: 0});
  const openai = s => new OpenAI({apiKey: s, baseURL: base + '/v1', maxRetries: 0});
  const all = async pages => { const out = []; for await (const m of pages) out.push(m); return out; };

  await t.test('@anthropic-ai/sdk: models.list and models.retrieve', async () => {
    const client = anthropic(secret);
    const models = await all(client.models.list());
    t.is(models.map(m => m.id), ['claude-opus-4-6', 'claude-sonnet-4-6', 'claude-haiku-4-5',
      'claude-sonnet-4-5', 'claude-opus-4-1'], "a key with no list: the upstream's models");
    t.is(models[1], {type: 'model', id: 'claude-sonnet-4-6', display_name: 'Claude Sonnet 4.6',
      created_at: '2026-02-17T00:00:00Z'}, 'as the upstream describes them');
    const page = await client.models.list({limit: 2});
    t.is([page.data.map(m => m.id), page.has_more, page.first_id, page.last_id],
      [['claude-opus-4-6', 'claude-sonnet-4-6'], true, 'claude-opus-4-6', 'claude-sonnet-4-6'], 'limit 2: a page');
    t.is((await all(client.models.list({limit: 2}))).length, 5, 'and the SDK pages through them all (after_id)');
    const before = await request(url('/v1/models?before_id=claude-sonnet-4-5&limit=1'),
      {headers: {'x-api-key': secret, 'anthropic-version': '2023-06-01'}});
    t.is([before.json.data.map(m => m.id), before.json.has_more], [['claude-haiku-4-5'], true], 'before_id pages back');
    const m = await client.models.retrieve('claude-haiku-4-5');
    t.is([m.id, m.display_name], ['claude-haiku-4-5', 'Claude Haiku 4.5'], 'retrieve: one model');
    const err = await client.models.retrieve('claude-nothing').catch(e => e);
    t.ok(err instanceof Anthropic.NotFoundError, `an unknown model: the SDK's NotFoundError (${err.status})`);
    t.is(err.error && err.error.error.type, 'not_found_error', "in the Messages API's error shape");
    const log = await stub.log();
    t.ok(log.some(e => e.models === '/v1/models' && e.query === '?limit=1000' && e.api_key === env.ANTHROPIC_API_KEY),
      "llmgw asked the upstream for its list with the gateway's own key");
    const bad = await request(url('/v1/models?limit=0'), {headers: {'x-api-key': secret}});
    t.is([bad.status, bad.json.error.type], [400, 'invalid_request_error'], 'limit 0: 400');
  });

  await t.test("a key's own list, within allowed_models", async () => {
    const s = create('--name', 'haiku', '--models', 'claude-haiku-4-5,claude-house-alias');
    const client = anthropic(s);
    const models = await all(client.models.list());
    t.is(models.map(m => m.id), ['claude-haiku-4-5', 'claude-house-alias'], 'its list');
    t.is(models[0].display_name, 'Claude Haiku 4.5', 'described by the upstream where it knows them');
    t.is(models[1], {type: 'model', id: 'claude-house-alias', display_name: 'claude-house-alias',
      created_at: '1970-01-01T00:00:00Z'}, 'else by name alone');
    const err = await client.models.retrieve('claude-sonnet-4-6').catch(e => e);
    t.is(err.status, 404, 'a model the key may not use is not there for it');
    t.is((await client.models.retrieve('claude-house-alias')).id, 'claude-house-alias',
      'one the upstream does not list, but the key may use: retrieved by name');
  });

  await t.test('the openai SDK: models.list and models.retrieve in its shape', async () => {
    const client = openai(secret);
    const list = await client.models.list();
    t.is(list.data.length, 5, 'five models');
    t.is(list.data[1], {id: 'claude-sonnet-4-6', object: 'model', created: Date.parse('2026-02-17T00:00:00Z') / 1000,
      owned_by: 'anthropic'}, "OpenAI's model object");
    const raw = await request(url('/v1/models'), {headers: {authorization: `Bearer ${secret}`}});
    t.is(raw.json.object, 'list', '{"object": "list"} for a client with neither x-api-key nor anthropic-version');
    t.is((await client.models.retrieve('claude-opus-4-6')).object, 'model', 'retrieve');
    const err = await openai('sk-wrong').models.list().catch(e => e);
    t.ok(err instanceof OpenAI.AuthenticationError, `a wrong key: the SDK's AuthenticationError (${err.status})`);
    t.ok(err.error && typeof err.error.message === 'string' && 'param' in err.error, "in OpenAI's error shape");
    const nf = await client.models.retrieve('gpt-4o').catch(e => e);
    t.ok(nf instanceof OpenAI.NotFoundError, 'an unknown model: NotFoundError');
  });

  await t.test('messages.countTokens: passed through, nothing held or billed', async () => {
    const before = sql(db, 'SELECT count(*) AS n FROM usage')[0].n;
    const client = anthropic(secret);
    const {data: r, response} = await client.messages.countTokens({model: 'claude-sonnet-4-6',
      messages: [{role: 'user', content: 'count me [[usage:321,1]]'}]}).withResponse();
    t.is(r, {input_tokens: 321}, "the upstream's count");
    t.like(response.headers.get('request-id'), /^req_stub_\d+$/, 'with its request-id');
    const log = await stub.log();
    const sent = log[log.length - 1];
    t.ok(sent.count_tokens && sent.api_key === env.ANTHROPIC_API_KEY, "upstream count_tokens, with the gateway's key");
    await new Promise(r => setTimeout(r, 300));
    t.is(sql(db, 'SELECT count(*) AS n FROM usage')[0].n, before, 'no usage row');
    const err = await client.messages.countTokens({model: 'claude-sonnet-4-6', max_tokens: 5,
      messages: [{role: 'user', content: 'x'}]}).catch(e => e);
    t.ok(err instanceof Anthropic.BadRequestError && /max_tokens/.test(err.message),
      `the upstream's 400 comes back: ${err.message}`);
    const limited = anthropic(create('--name', 'count-haiku', '--models', 'claude-haiku-4-5'));
    const denied = await limited.messages.countTokens({model: 'claude-sonnet-4-6',
      messages: [{role: 'user', content: 'x'}]}).catch(e => e);
    t.ok(denied instanceof Anthropic.PermissionDeniedError, `a model the key may not use: 403 (${denied.status})`);
    const bare = await request(url('/v1/messages/count_tokens'), {method: 'POST',
      headers: {'x-api-key': secret}, body: {messages: []}});
    t.is([bare.status, bare.json.type, bare.json.error.type], [400, 'error', 'invalid_request_error'], 'no model: 400');
    const m = await request(url('/metrics'), {headers: {authorization: `Bearer ${secret}`}});
    t.like(m.raw, /llmgw_requests_total\{route="\/v1\/messages\/count_tokens",status="200"\} [1-9]/, 'counted in the metrics');
  });

  await t.test("x-ratelimit-* headers: the key's own limits", async () => {
    const s = create('--name', 'limited', '--rpm', '5', '--budget-tokens', '100000', '--period', 'day');
    const client = anthropic(s);
    const {response} = await client.messages.create({model: 'claude-sonnet-4-6', max_tokens: 100,
      messages: [{role: 'user', content: 'hi'}]}).withResponse();
    const h = k => response.headers.get(k);
    t.is([h('x-ratelimit-limit-requests'), h('x-ratelimit-remaining-requests'), h('x-ratelimit-reset-requests')],
      ['5', '4', '1m0s'], 'requests: limit, what is left, when the oldest leaves the minute');
    t.is(h('x-ratelimit-limit-tokens'), '100000', 'tokens: the budget');
    t.ok(+h('x-ratelimit-remaining-tokens') < 100000 && +h('x-ratelimit-remaining-tokens') > 99000,
      `what is left of it beside this request's hold: ${h('x-ratelimit-remaining-tokens')}`);
    t.like(h('x-ratelimit-reset-tokens'), /^(\d+h)?(\d+m)?\d+s$/, `the period's end: ${h('x-ratelimit-reset-tokens')}`);
    t.is(h('anthropic-ratelimit-requests-remaining'), null, "the organisation's own limits are not passed on");
    const oa = await openai(s).chat.completions.create({model: 'claude-sonnet-4-6',
      messages: [{role: 'user', content: 'hi'}]}).withResponse();
    t.is(oa.response.headers.get('x-ratelimit-remaining-requests'), '3', 'on /v1/chat/completions too');
    const chat = await request(url('/chat/stream'), {method: 'POST', headers: {authorization: `Bearer ${s}`},
      body: {message: 'hi'}});
    t.is(chat.headers['x-ratelimit-remaining-requests'], '2', 'and on a stream');
    for (let i = 0; i < 2; i++)
      await request(url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${s}`}, body: {message: 'hi'}});
    const refused = await request(url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${s}`}, body: {message: 'hi'}});
    t.is([refused.status, refused.headers['x-ratelimit-remaining-requests']], [429, '0'], 'a refusal says none are left');
    const free = await request(url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${secret}`}, body: {message: 'hi'}});
    t.is(free.headers['x-ratelimit-limit-requests'], undefined, 'a key with no limits: no such headers');
  });

  await t.test('errors on /v1/ paths in the API shape', async () => {
    const nf = await request(url('/v1/nothing'), {headers: {'x-api-key': secret}});
    t.is([nf.status, nf.json.type, nf.json.error && nf.json.error.type], [404, 'error', 'not_found_error'],
      "404 in the Messages API's shape");
    const m405 = await request(url('/v1/messages'), {headers: {'x-api-key': secret}});
    t.is([m405.status, m405.json.error && m405.json.error.type], [405, 'api_error'], '405 too');
    const oa405 = await request(url('/v1/chat/completions'), {headers: {authorization: `Bearer ${secret}`}});
    t.ok(oa405.status === 405 && oa405.json.error && 'param' in oa405.json.error,
      "/v1/chat/completions: OpenAI's shape");
    const plain = await request(url('/nothing'));
    t.is([plain.status, plain.json.detail], [404, 'Not Found'], 'elsewhere FastAPI\'s {"detail"}');
  });

  await t.test('an upstream with no list, and forward_upstream_ratelimit', async () => {
    const two = await setup('models-conf', {conf: {forward_upstream_ratelimit: 'yes',
      allowed_models: 'claude-sonnet-4-6 claude-haiku-4-5'}, stubEnv: {STUB_MODELS_STATUS: '500'}});
    const client = new Anthropic({apiKey: two.env.LLMGW_API_TOKEN, baseURL: two.srv.base + '/api/v1', maxRetries: 0});
    const models = await all(client.models.list());
    t.is(models.map(m => [m.id, m.display_name]), [['claude-sonnet-4-6', 'claude-sonnet-4-6'],
      ['claude-haiku-4-5', 'claude-haiku-4-5']], 'allowed_models, by name, when the upstream fails');
    const {response} = await client.messages.create({model: 'claude-sonnet-4-6', max_tokens: 10,
      messages: [{role: 'user', content: 'hi'}]}).withResponse();
    t.is(response.headers.get('anthropic-ratelimit-requests-remaining'), '999',
      "forward_upstream_ratelimit = yes: the organisation's headers are passed on");
    const three = await setup('models-none', {stubEnv: {STUB_MODELS_STATUS: '500'}});
    const r = await request(three.url('/v1/models'), {headers: {'x-api-key': three.env.LLMGW_API_TOKEN}});
    t.is([r.status, r.json.type], [502, 'error'], `no list of its own, and none upstream: ${r.status}`);
    const log = await three.stub.log();
    t.is(log.filter(e => e.models).length, 1 + 2, "tried as a message is, with llmgw's retries");
  });
});
