// What bad requests get: 401, 404, 405, 413, 415, 422 with FastAPI's shapes.
'use strict';
const t = require('../lib/tap');
const {request, waitFor} = require('../lib/http');
const {setup, sql} = require('../lib/servers');

t.main(async () => {
  const {stub, url, auth, db} = await setup('validation', {conf: {body_limit: '4k'}});
  const post = (route, body, headers = auth) => request(url(route), {method: 'POST', headers, body});

  await t.test('authentication', async () => {
    for (const route of ['/chat', '/chat/stream']) {
      let r = await post(route, {message: 'x'}, {});
      t.is([r.status, r.json && r.json.detail], [401, 'Not authenticated'], `${route}: no token, 401`);
      t.is(r.headers['www-authenticate'], 'Bearer', `${route}: WWW-Authenticate: Bearer`);
      r = await post(route, {message: 'x'}, {authorization: 'Bearer wrong'});
      t.is([r.status, r.json && r.json.detail], [401, 'Invalid token'], `${route}: wrong token, 401`);
      r = await post(route, {message: 'x'}, {authorization: 'Basic dXNlcjpwYXNz'});
      t.is(r.status, 401, `${route}: other schemes, 401`);
    }
  });

  await t.test('routes and methods', async () => {
    let r = await request(url('/nope'));
    t.is([r.status, r.json], [404, {detail: 'Not Found'}], 'unknown path: 404 Not Found');
    r = await request(url('/chat'));
    t.is(r.status, 405, 'GET /chat: 405');
    t.is(r.headers.allow, 'POST', 'with Allow: POST');
    t.is(r.json, {detail: 'Method Not Allowed'}, 'and a detail');
    r = await request(url('/healthz'), {method: 'POST', body: {}});
    t.is([r.status, r.headers.allow], [405, 'GET'], 'POST /healthz: 405, Allow: GET');
    r = await request(url('/../../etc/passwd'));
    t.ok(r.status === 404 || r.status === 400, 'path traversal goes nowhere');
  });

  await t.test('content type and size', async () => {
    let r = await request(url('/chat'), {method: 'POST', headers: {...auth, 'content-type': 'text/plain'},
      body: '{"message":"x"}'});
    t.is(r.status, 415, 'text/plain: 415');
    t.is(typeof (r.json && r.json.detail), 'string', 'with a detail');
    r = await request(url('/chat'), {method: 'POST', headers: {...auth, 'content-type': 'application/json; charset=utf-8'},
      body: '{"message":"x"}'});
    t.is(r.status, 200, 'application/json with charset: fine');
    // FastAPI reads these as JSON too: no Content-Type (Python's
    // requests.post(data=json.dumps(...))), and application/<x>+json.
    const bare = await new Promise((resolve, reject) => {
      const u = new URL(url('/chat'));
      const data = Buffer.from('{"message":"x"}');
      const q = require('http').request({host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
        headers: {...auth, 'content-length': data.length}}, res => { res.resume(); resolve(res.statusCode); });
      q.on('error', reject);
      q.end(data);
    });
    t.is(bare, 200, 'no Content-Type: read as JSON, as FastAPI does');
    r = await request(url('/chat/stream'), {method: 'POST', headers: {...auth, 'content-type': 'application/vnd.api+json'},
      body: '{"message":"x"}'});
    t.is(r.status, 200, 'application/vnd.api+json: read as JSON');
    r = await post('/chat', {message: 'x'.repeat(5000)});
    t.is(r.status, 413, 'over body_limit: 413');
    t.like(r.json && r.json.detail, /4096 bytes/, 'saying the limit');
  });

  await t.test('422 details', async () => {
    let r = await post('/chat', '{"message": ');
    t.is(r.status, 422, 'malformed JSON: 422');
    t.is(r.json.detail[0].type, 'json_invalid', 'json_invalid');
    r = await post('/chat', Buffer.from('{"message":"\xff\xfe"}', 'latin1'));
    t.is([r.status, r.json.detail[0].type], [422, 'json_invalid'], 'invalid UTF-8: 422');
    r = await post('/chat', {});
    t.is(r.json.detail, [{type: 'missing', loc: ['body', 'message'], msg: 'Field required', input: {}}],
      'missing message, exactly as FastAPI says it');
    r = await post('/chat', {message: '', max_tokens: 'ten', extra: 1});
    t.is(r.json.detail.map(d => d.type), ['string_too_short', 'int_type', 'extra_forbidden'],
      'one entry per problem');
    t.is(r.json.detail.map(d => d.loc[1]), ['message', 'max_tokens', 'extra'], 'each located');
    r = await post('/chat', {message: 'x', max_tokens: 200000});
    t.is([r.status, r.json.detail[0].type], [422, 'less_than_equal'], 'over the max_tokens ceiling');
    r = await post('/chat', {message: 'x', model: 42});
    t.is(r.json.detail[0].type, 'string_type', 'a number for a model');
    r = await post('/chat', '[]');
    t.is(r.json.detail[0].type, 'model_attributes_type', 'an array body');
    r = await post('/chat', '{"message":"a\\u0000b"}');
    t.is(r.status, 422, 'a NUL in the message: 422');
    r = await post('/chat', '['.repeat(1000) + ']'.repeat(1000));
    t.is(r.status, 422, 'deep nesting: 422');
  });

  await t.test('rejected requests never reach the upstream', async () => {
    const log = await stub.log();
    t.is(log.length, 3, 'only the three valid requests went upstream');
    const rows = await waitFor(() => {
      try { return sql(db, 'SELECT count(*) AS n FROM usage')[0].n === 3 || null; } catch (e) { return null; }
    });
    t.ok(rows, 'and left the only usage rows');
  });

});
