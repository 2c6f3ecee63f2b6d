// llmgw-spoold's langfuse sink against a receiver that checks each export
// against what Langfuse publishes (tests/langfuse: its attribute list,
// copied from its source, and the facts of its attribute mapping) and the
// OTLP format (tests/otlp): the endpoint, Basic auth from the project's
// keys, x-langfuse-ingestion-version: 4, one generation per request with
// its model, usage, completion start time, key as user, input and output
// with log_content = full, level ERROR on a failure.
'use strict';
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {request, sse, waitFor} = require('../lib/http');
const {spawnSync} = require('child_process');
const {setup, sql, startSpoold, writeConf, TOKEN, SPOOLD, sanitizerEnv} = require('../lib/servers');
const {protobuf, check, attrs, exportType, startReceiver, spansOf} = require('../lib/otlp');

const PUBLIC = 'pk-lf-1234567890', SECRET = 'sk-lf-abcdef0123';
const published = path.join(__dirname, '..', 'langfuse');

t.main(async () => {
  if (!protobuf) t.skipAll('protobufjs is not installed (npm ci in tests/)');
  const Export = exportType();
  const mapping = JSON.parse(fs.readFileSync(path.join(published, 'mapping.json'), 'utf8'));
  const names = [...fs.readFileSync(path.join(published, 'attributes.ts'), 'utf8')
    .matchAll(/^\s+[A-Z_]+ = "([a-z_.]+)",$/gm)].map(m => m[1]);
  t.ok(names.length > 30 && names.includes('langfuse.observation.usage_details'), `Langfuse's list: ${names.length} attributes`);
  const known = key => names.includes(key) || mapping.metadata_prefixes.some(p => key.startsWith(p));

  const receiver = await startReceiver();
  t.onCleanup(() => receiver.close());
  const {url, dir, env, db} = await setup('langfuse', {conf: {log_content: 'full'}});
  const keyFile = path.join(dir, 'langfuse.key');
  fs.writeFileSync(keyFile, `  ${SECRET}  \n`, {mode: 0o600});
  const conf = {retry_base: '50ms', retry_max: '2s', log_content: 'full', sinks: 'database, langfuse',
    langfuse_host: `${receiver.url}/`, langfuse_public_key: PUBLIC, langfuse_secret_key_file: keyFile,
    langfuse_environment: 'production', model_prices: 'claude-sonnet-4-6:3:15 claude-opus-4-6:5:25:6.25:0.5',
    spool_retry_base: '100ms', spool_retry_max: '200ms', spool_rescan: '100ms'};
  writeConf(dir, conf);

  const auth = {authorization: `Bearer ${TOKEN}`};
  const s = await sse(url('/chat/stream'), {message: 'tell me [[tokens:4]]'}, {headers: {...auth, 'x-request-id': 'lf-stream-1'}});
  t.ok(s.done, 'a streamed request');
  const f = await request(url('/chat'), {method: 'POST', headers: {...auth, 'x-request-id': 'lf-529-1'},
    body: {message: '[[status:529]]'}});
  t.is(f.status, 503, 'an upstream 529: 503');
  const body = {model: 'claude-sonnet-4-6', max_tokens: 50, messages: [{role: 'user', content: 'through'}]};
  const m = await request(url('/v1/messages'), {method: 'POST', headers: {...auth, 'x-request-id': 'lf-messages-1'}, body});
  t.is(m.status, 200, 'a /v1/messages request');

  const spoold = startSpoold({dir, env: {...env, ...sanitizerEnv(dir)}});
  const spans = () => receiver.exports.filter(e => e.status === 200).flatMap(spansOf);
  const of = id => spans().filter(sp => attrs(sp.attributes)['llmgw.request_id'] === id);
  const ok = await waitFor(() => ['lf-stream-1', 'lf-529-1', 'lf-messages-1'].every(id => of(id).length === 1), 20000, 100);
  t.ok(ok, 'three spans, one per request');
  t.is(await spoold.stop(), 0, 'llmgw-spoold stops with 0');

  await t.test('the endpoint and headers Langfuse v4 reads', async () => {
    const e = receiver.exports[0];
    t.is(e.path, mapping.endpoint, `POST to {langfuse_host}${mapping.endpoint}`);
    t.is(e.headers.authorization, `Basic ${Buffer.from(`${PUBLIC}:${SECRET}`).toString('base64')}`,
      'Basic auth: the public key and the secret key from its file, blanks dropped');
    t.is(e.headers['x-langfuse-ingestion-version'], mapping.headers['x-langfuse-ingestion-version'],
      'x-langfuse-ingestion-version: 4');
    t.like(e.headers['x-langfuse-sdk-name'] || '', /^llmgw$/, 'and says who sends');
    for (const [i, x] of receiver.exports.entries()) {
      const problems = [];
      check(Export, JSON.parse(x.body), 'ExportTraceServiceRequest', problems);
      t.is(problems, [], `export ${i + 1}: in the OTLP format`);
    }
    t.ok(!spoold.log().includes(SECRET), 'the secret key is not logged');
  });

  await t.test('each attribute is one Langfuse publishes, in the form it reads', async () => {
    for (const sp of spans()) {
      const a = attrs(sp.attributes);
      const ours = Object.keys(a).filter(k => k.startsWith('langfuse.') || k === 'user.id');
      const unknown = ours.filter(k => !known(k));
      t.is(unknown, [], `${a['llmgw.request_id']}: ${ours.length} Langfuse attributes, each in its list`);
      const badJson = mapping.json_string_attributes.filter(k => k in a && (() => {
        try { JSON.parse(a[k]); return false; } catch (e) { return true; }
      })());
      t.is(badJson, [], `${a['llmgw.request_id']}: input, output, parameters and usage are JSON strings`);
      t.ok(mapping.observation_types.includes(a['langfuse.observation.type']) &&
        mapping.levels.includes(a['langfuse.observation.level']), 'a type and a level Langfuse accepts');
    }
  });

  await t.test('a generation with its model, usage, times, user and texts', async () => {
    const sp = of('lf-stream-1')[0], a = attrs(sp.attributes);
    t.is(a['langfuse.observation.type'], 'generation', 'type generation');
    t.is(a['langfuse.observation.model.name'], 'claude-sonnet-4-6', 'the model');
    const u = sql(db, `SELECT input_tokens, output_tokens, key_id FROM usage WHERE request_id = 'lf-stream-1'`)[0];
    const usage = JSON.parse(a['langfuse.observation.usage_details']);
    t.is([usage.input, usage.output], [u.input_tokens, u.output_tokens], 'usage_details: input and output as the usage row');
    t.ok(Object.values(usage).every(Number.isInteger), 'every usage detail a whole number');
    t.is(JSON.parse(a['langfuse.observation.model.parameters']), {max_tokens: 1024}, 'the model parameters');
    const cost = JSON.parse(a['langfuse.observation.cost_details']);
    const close = (x, y) => Math.abs(x - y) < 1e-12;
    t.ok(close(cost.input, u.input_tokens * 3 / 1e6) && close(cost.output, u.output_tokens * 15 / 1e6) &&
      close(cost.total, cost.input + cost.output + cost.cache_creation_input_tokens + cost.cache_read_input_tokens),
      `cost_details in USD by model_prices (${a['langfuse.observation.cost_details']})`);
    const first = Date.parse(a['langfuse.observation.completion_start_time']);
    const start = Number(BigInt(sp.startTimeUnixNano) / 1000000n), end = Number(BigInt(sp.endTimeUnixNano) / 1000000n);
    t.ok(/Z$/.test(a['langfuse.observation.completion_start_time']) && first >= start && first <= end,
      `completion_start_time: ISO 8601, within the span (${a['langfuse.observation.completion_start_time']})`);
    t.is(a['user.id'], 'static', 'the key as the user');
    t.is([a['langfuse.observation.metadata.route'], a['langfuse.observation.metadata.request_id']],
      ['/chat/stream', 'lf-stream-1'], 'route and request id as filterable metadata');
    t.is(a['langfuse.environment'], 'production', 'the environment configured');
    t.is(a['langfuse.observation.level'], 'DEFAULT', 'level DEFAULT');
    t.is(JSON.parse(a['langfuse.observation.input']), 'tell me [[tokens:4]]', 'the message as its input');
    t.is(JSON.parse(a['langfuse.observation.output']), s.text, 'the reply as its output');
    const mm = attrs(of('lf-messages-1')[0].attributes);
    t.is(JSON.parse(mm['langfuse.observation.input']).messages, body.messages, '/v1/messages: the request body as input');
    t.is(JSON.parse(mm['langfuse.observation.model.parameters']), {max_tokens: 50}, 'and its max_tokens');
  });

  await t.test('a failure: level ERROR with its message', async () => {
    const sp = of('lf-529-1')[0], a = attrs(sp.attributes);
    t.is([a['langfuse.observation.level'], sp.status.code], ['ERROR', 2], 'level ERROR, status ERROR');
    t.ok(a['langfuse.observation.status_message'], `with a status message (${a['langfuse.observation.status_message']})`);
  });

  await t.test('a secret key file that is not there: the file named, nothing delivered', async () => {
    writeConf(dir, {...conf, langfuse_secret_key_file: path.join(dir, 'nokey')});
    const r = spawnSync(SPOOLD, ['--once'], {env: {...process.env, ...env, ...sanitizerEnv(dir)}, encoding: 'utf8',
      timeout: 30000});
    t.ok(r.status !== 0, `llmgw-spoold --once exits ${r.status}`);
    t.like(r.stderr, /langfuse_secret_key_file .*nokey: No such file/, 'naming the setting and the file');
  });
});
