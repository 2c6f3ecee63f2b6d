// GET /openapi.json, /docs and /healthz through lighttpd.
'use strict';
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {request} = require('../lib/http');
const {setup, workdir, startStub, startLighttpd, llmgwEnv, writeConf} = require('../lib/servers');

t.main(async () => {
  const {url, dir} = await setup('meta', {conf: {allowed_models: 'claude-sonnet-4-6, claude-haiku-4-5',
    model_max_tokens: 'claude-sonnet-4-6:4096 claude-haiku-4-5:2048', max_tokens_limit: 1024}});

  await t.test('openapi.json', async () => {
    const r = await request(url('/openapi.json'));
    t.is(r.status, 200, '200');
    t.like(r.headers['content-type'], /application\/json/, 'JSON');
    const doc = r.json;
    t.is(doc.openapi, '3.1.0', 'OpenAPI 3.1');
    t.is(Object.keys(doc.paths).sort(), ['/chat', '/chat/stream', '/chat/ui', '/docs', '/healthz', '/metrics', '/openapi.json', '/v1/chat/completions',
      '/v1/messages', '/v1/messages/count_tokens', '/v1/models', '/v1/models/{model_id}'], 'every route described');
    const req = doc.components.requestBodies.ChatRequest.content['application/json'].schema;
    t.is(req.properties.model.default, 'claude-sonnet-4-6', 'the configured default model');
    t.is(req.properties.model.enum, ['claude-sonnet-4-6', 'claude-haiku-4-5'], 'the allowed models');
    t.is(req.properties.max_tokens.maximum, 4096, 'the max_tokens ceiling: the highest of the models\'');
    t.is(req.required, ['message'], 'message required');
    t.is(req.additionalProperties, false, 'no unknown fields');
    const codes = Object.keys(doc.paths['/chat'].post.responses).sort();
    t.is(codes, ['200', '400', '401', '403', '405', '408', '413', '415', '422', '429', '431', '502', '503', '504'],
      'every /chat status, the web server\'s and the FastCGI reader\'s too');
    t.ok(doc.paths['/chat/stream'].post.responses['200'].content['text/event-stream'], 'the stream is SSE');
    t.is(doc.servers.map(s => s.url), ['/api/v1'], 'servers names the mount: generated clients resolve paths under it');
    t.is(['/healthz', '/openapi.json', '/docs'].map(p => doc.paths[p].get.security), [[], [], []],
      'public routes say security: []');
    t.is(Object.keys(doc.paths['/v1/messages'].post.responses).filter(c => ['404', '500', '529'].includes(c)),
      ['404', '500', '529'], "the upstream's statuses on /v1/messages");
    // Every $ref resolves.
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) || [];
    const bad = refs.map(x => x.slice(8, -1)).filter(ref => {
      let o = doc;
      for (const k of ref.slice(2).split('/')) o = o && o[k];
      return o === undefined;
    });
    t.is(bad, [], `all ${refs.length} $refs resolve`);
  });

  await t.test('docs', async () => {
    const r = await request(url('/docs'));
    t.is(r.status, 200, '200');
    t.like(r.headers['content-type'], /text\/html/, 'HTML');
    t.ok(!/https?:\/\//.test(r.text), 'loads nothing from the internet');
    for (const p of ['/chat', '/chat/stream', '/healthz', 'ChatRequest', 'max_tokens', 'claude-haiku-4-5', '422'])
      t.ok(r.text.includes(p), `mentions ${p}`);
  });

  await t.test('healthz', async () => {
    const r = await request(url('/healthz'));
    t.is([r.status, r.json], [200, {status: 'ok', database: 'ok', spool: 'ok', usage_backlog: 0, spool_backlog: 0,
      refusing: false, spool_write_failures: 0}], 'healthy: 200');
    t.ok(fs.existsSync(path.join(dir, 'spool', 'new')), 'the spool directory was made');
    const h = await request(url('/healthz'), {method: 'HEAD'});
    t.is([h.status, h.text], [200, ''], 'HEAD: status without a body');
  });

  await t.test('healthz when nothing is writable', async () => {
    const bad = workdir('meta-bad');
    fs.writeFileSync(path.join(bad, 'not-a-dir'), 'x');
    const stub = await startStub();
    writeConf(bad, {});
    const env = llmgwEnv(bad, stub, {LLMGW_SPOOL_DIR: path.join(bad, 'not-a-dir'),
      LLMGW_DB: path.join(bad, 'not-a-dir', 'x.db')});
    // LLMGW_DB is under the folder so that the harness finds the process.
    const srv = await startLighttpd({dir: bad, env});
    const r = await request(srv.url('/healthz'));
    t.is(r.status, 503, '503');
    t.is(r.json.status, 'unavailable', 'unavailable');
    t.like(r.json.database, /not-a-dir\/x\.db/, `database reason: ${r.json.database}`);
    t.like(r.json.spool, /not a directory/, `spool reason: ${r.json.spool}`);
    const c = await request(srv.url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${env.LLMGW_API_TOKEN}`},
      body: {message: 'still answers'}});
    t.is(c.status, 200, 'chat still works without a database');
    await srv.stop();
    t.like(srv.log(), /usage row for request [0-9a-f]{32} not stored/, 'the lost row is in the log, whole');
  });

});
