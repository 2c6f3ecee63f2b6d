// The OpenAPI document served at /openapi.json, with the tools people
// point at one: Redocly's recommended ruleset finds no error,
// openapi-typescript's types (its defaults) compile a body of {message}
// alone, and Stoplight Prism, proxying to llmgw, finds no answer that
// breaks the document (and no violation at all in a well-formed request).
'use strict';
const {spawn, spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {request, sse, freePort, waitPort} = require('../lib/http');
const {setup, TOKEN, ADMIN, sanitizerEnv} = require('../lib/servers');

const BIN = path.join(__dirname, '..', 'node_modules', '.bin');
const tool = name => path.join(BIN, name);
// The tools print notices about updates and telemetry: none of that here.
const quiet = {...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_UPDATE_NOTIFIER: '1'};

t.main(async () => {
  for (const name of ['redocly', 'openapi-typescript', 'tsc', 'prism'])
    if (!fs.existsSync(tool(name))) t.skipAll(`${name} is not installed (npm ci in tests/)`);
  const {url, dir, env, srv} = await setup('openapi-tools');
  const doc = await request(url('/openapi.json'));
  t.is(doc.status, 200, 'the served document');
  const file = path.join(dir, 'openapi.json');
  fs.writeFileSync(file, JSON.stringify(doc.json, null, 2));

  await t.test('@redocly/cli lint, the recommended ruleset', async () => {
    const r = spawnSync(tool('redocly'), ['lint', '--extends', 'recommended', '--format', 'json', file],
      {env: quiet, encoding: 'utf8', timeout: 120000});
    t.is(r.status, 0, 'redocly lint exits 0');
    let out = null;
    try { out = JSON.parse(r.stdout); } catch (e) { t.diag(r.stdout + r.stderr); }
    t.is(out && out.totals.errors, 0, 'no errors');
    const warnings = out ? out.problems.filter(p => p.severity === 'warn').map(p => p.ruleId) : [];
    // info-license: llmgw has no license granted yet (deploy/debian/copyright).
    t.is(warnings.filter(w => w !== 'info-license'), [], `no warnings but the missing license (${warnings.join(', ')})`);
  });

  await t.test('openapi-typescript: fields with defaults are optional', async () => {
    const types = path.join(dir, 'schema.d.ts');
    const g = spawnSync(tool('openapi-typescript'), [file, '-o', types], {env: quiet, encoding: 'utf8', timeout: 120000});
    t.is(g.status, 0, `openapi-typescript generates the types${g.status ? ': ' + g.stderr : ''}`);
    fs.writeFileSync(path.join(dir, 'use.ts'), `
import type { components, paths } from './schema';
type Body<P extends keyof paths> = paths[P]['post'] extends { requestBody?: { content: { 'application/json': infer J } } } ? J : never;
export const chat: Body<'/chat'> = { message: 'hello' };
export const stream: Body<'/chat/stream'> = { message: 'hello', include_usage: true };
export const messages: Body<'/v1/messages'> = { model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
export const completions: Body<'/v1/chat/completions'> = { model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'hi' }] };
export const reply: components['schemas']['ChatResponse'] = { reply: 'x', input_tokens: 1, output_tokens: 2 };
`);
    const c = spawnSync(tool('tsc'), ['--noEmit', '--strict', path.join(dir, 'use.ts')], {env: quiet, encoding: 'utf8',
      timeout: 120000});
    t.is(c.status, 0, `tsc --strict compiles {message} alone as a /chat body${c.status ? ': ' + c.stdout : ''}`);
    const bad = path.join(dir, 'bad.ts');
    fs.writeFileSync(bad, "import type { paths } from './schema';\n" +
      "export const x: paths['/chat']['post']['requestBody'] = { content: { 'application/json': { max_tokens: 5 } } };\n");
    const b = spawnSync(tool('tsc'), ['--noEmit', '--strict', bad], {env: quiet, encoding: 'utf8', timeout: 120000});
    t.ok(b.status !== 0 && /message/.test(b.stdout), 'and still refuses a body without message');
  });

  await t.test('Stoplight Prism in proxy mode in front of llmgw', async () => {
    const port = await freePort();
    const p = spawn(tool('prism'), ['proxy', file, srv.base + '/api/v1', '-h', '127.0.0.1', '-p', String(port)],
      {env: quiet, stdio: ['ignore', 'pipe', 'pipe']});
    let log = '';
    p.stdout.on('data', d => { log += d; });
    p.stderr.on('data', d => { log += d; });
    t.onCleanup(() => p.kill());
    t.ok(await waitPort(port, 60000).then(() => true, () => false), 'prism listens');
    const key = spawnSync(ADMIN, ['key', 'create', '--name', 'prism', '--rpm', '100'],
      {env: {...env, ...sanitizerEnv(dir)}, encoding: 'utf8'}).stdout.trim();
    const via = p2 => `http://127.0.0.1:${port}${p2}`;
    const bearer = {authorization: `Bearer ${TOKEN}`};
    const keyed = {authorization: `Bearer ${key}`};
    const anthropic = {'x-api-key': key, 'anthropic-version': '2023-06-01'};
    const violations = r => {
      const v = r.headers['sl-violations'];
      try { return v ? JSON.parse(v) : []; } catch (e) { return [{location: ['?'], message: v}]; }
    };
    const post = (p2, headers, body) => request(via(p2), {method: 'POST', headers, body});
    const get = (p2, headers = {}) => request(via(p2), {headers});
    // [what, a call, the status llmgw answers, whether the request itself is well-formed]
    const cases = [
      ['/chat', () => post('/chat', bearer, {message: 'hello'}), 200, true],
      ['/chat with a key', () => post('/chat', keyed, {message: 'hello', max_tokens: 20}), 200, true],
      ['/chat/stream', () => sse(via('/chat/stream'), {message: 'hi [[tokens:3]]'}, {headers: bearer}), 200, true],
      ['/chat/ui', () => sse(via('/chat/ui'), {id: 'c1', trigger: 'submit-message', messages: [{id: 'm1', role: 'user',
        parts: [{type: 'text', text: 'hi'}]}]}, {headers: bearer}), 200, true],
      ['/v1/messages', () => post('/v1/messages', anthropic, {model: 'claude-sonnet-4-6', max_tokens: 20,
        messages: [{role: 'user', content: 'hi'}]}), 200, true],
      ['/v1/messages, streamed', () => sse(via('/v1/messages'), {model: 'claude-sonnet-4-6', max_tokens: 20, stream: true,
        messages: [{role: 'user', content: 'hi'}]}, {headers: anthropic}), 200, true],
      ['/v1/messages, an upstream 529', () => post('/v1/messages', anthropic, {model: 'claude-sonnet-4-6', max_tokens: 20,
        messages: [{role: 'user', content: '[[status:529]]'}]}), 529, true],
      ['/v1/chat/completions', () => post('/v1/chat/completions', keyed, {model: 'claude-sonnet-4-6',
        messages: [{role: 'user', content: 'hi'}]}), 200, true],
      ['/v1/chat/completions, streamed', () => sse(via('/v1/chat/completions'), {model: 'claude-sonnet-4-6', stream: true,
        stream_options: {include_usage: true}, messages: [{role: 'user', content: 'hi'}]}, {headers: keyed}), 200, true],
      ['/v1/models', () => get('/v1/models', anthropic), 200, true],
      ['/v1/models, OpenAI', () => get('/v1/models', keyed), 200, true],
      ['/v1/models/{model_id}', () => get('/v1/models/claude-haiku-4-5', anthropic), 200, true],
      ['/v1/models/{model_id}, unknown', () => get('/v1/models/claude-nothing', anthropic), 404, true],
      ['/v1/messages/count_tokens', () => post('/v1/messages/count_tokens', anthropic, {model: 'claude-sonnet-4-6',
        messages: [{role: 'user', content: 'hi'}]}), 200, true],
      ['/healthz', () => get('/healthz'), 200, true],
      ['/openapi.json', () => get('/openapi.json'), 200, true],
      ['/docs', () => get('/docs'), 200, true],
      ['/metrics', () => get('/metrics', bearer), 200, true],
      ['/chat, no message', () => post('/chat', bearer, {max_tokens: 5}), 422, false],
      ['/chat, no token', () => post('/chat', {}, {message: 'hi'}), 401, false],
      ['/chat, a wrong token', () => post('/chat', {authorization: 'Bearer nope'}, {message: 'hi'}), 401, true],
      ['/v1/messages, no max_tokens', () => post('/v1/messages', anthropic, {model: 'claude-sonnet-4-6',
        messages: [{role: 'user', content: 'hi'}]}), 400, false],
      ['/v1/chat/completions, n = 2', () => post('/v1/chat/completions', keyed, {model: 'claude-sonnet-4-6', n: 2,
        messages: [{role: 'user', content: 'hi'}]}), 400, true],
    ];
    for (const [what, call, status, wellFormed] of cases) {
      const r = await call();
      const v = violations(r);
      const inAnswer = v.filter(x => x.location && x.location[0] !== 'request');
      t.is(r.status, status, `${what}: ${status} through prism`);
      t.is(inAnswer.map(x => `${x.location.join('.')}: ${x.message}`), [], `${what}: the answer is as documented`);
      if (wellFormed)
        t.is(v.map(x => `${x.location.join('.')}: ${x.message}`), [], `${what}: no violation at all`);
      else	// prism does look: it names what is wrong with the request
        t.ok(v.some(x => x.location && x.location[0] === 'request'), `${what}: prism names the request's flaw`);
    }
  });
});
