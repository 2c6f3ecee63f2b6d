// Upstream failures: mapped statuses, retries, timeouts, malformed streams.
'use strict';
const t = require('../lib/tap');
const {request, sse} = require('../lib/http');
const {setup, usageRow} = require('../lib/servers');

t.main(async () => {
  const {stub, url, auth, db} = await setup('faults', {conf: {retries: 2, first_byte_timeout: '1s',
    idle_timeout: '1s'}});
  const chat = (message) => request(url('/chat'), {method: 'POST', headers: auth, body: {message}});
  const stream = (message) => sse(url('/chat/stream'), {message}, {headers: auth});
  const attempts = async (text) => (await stub.log()).filter(e => e.message === text).length;
  const row = (id) => usageRow(db, id);

  await t.test('529 becomes 503', async () => {
    for (const [route, call] of [['/chat', chat], ['/chat/stream', stream]]) {
      const msg = `[[status:529]] ${route}`;
      const r = await call(msg);
      t.is(r.status, 503, `${route}: 503`);
      t.is(JSON.parse(r.raw || r.text), {detail: 'AI service temporarily unavailable'}, `${route}: the reference's detail`);
      t.is(await attempts(msg), 3, `${route}: tried 1 + 2 retries`);
      const u = await row(r.headers['x-request-id']);
      t.ok(u && u.retries === 2 && u.status === 503 && u.upstream_status === 529, `${route}: usage row says so`);
    }
  });

  await t.test('retries that succeed', async () => {
    const msg = '[[status:529]] [[fail:1]] once';
    const r = await chat(msg);
    t.is(r.status, 200, 'one 529, then 200');
    t.is(await attempts(msg), 2, 'two attempts');
    const u = await row(r.headers['x-request-id']);
    t.is(u && u.retries, 1, 'usage row counts one retry');
    const s = await stream('[[status:500]] [[fail:2]] twice');
    t.ok(s.status === 200 && s.done, 'stream: two 500s, then a full stream');
  });

  await t.test('429', async () => {
    let r = await chat('[[status:429]] [[retry-after:7]]');
    t.is(r.status, 429, '429 passed on');
    t.is(r.headers['retry-after'], '7', 'with the upstream Retry-After');
    t.is(await attempts('[[status:429]] [[retry-after:7]]'), 1, 'a Retry-After beyond retry_max: no retry');
    r = await chat('[[status:429]] [[retry-after:1]] [[fail:1]]');
    t.is(r.status, 200, 'a short Retry-After is waited out and retried');
    r = await chat('[[status:429]] [[error-message:You have reached your spend limit]]');
    t.is(r.status, 429, 'a spend limit: 429');
    t.is(await attempts('[[status:429]] [[error-message:You have reached your spend limit]]'), 1, 'never retried');
  });

  await t.test('4xx and 5xx', async () => {
    let r = await chat('[[status:400]] [[error-message:messages: bad thing]]');
    t.is([r.status, r.json.detail], [400, 'messages: bad thing'], '400 with the upstream message');
    t.is(await attempts('[[status:400]] [[error-message:messages: bad thing]]'), 1, '400 not retried');
    r = await chat('[[status:404]] [[error-message:model: nope]]');
    t.is([r.status, r.json.detail], [400, 'model: nope'], 'unknown model: 400 with the message');
    r = await chat('[[status:401]]');
    t.is(r.status, 502, 'upstream 401 (our key): 502');
    t.like(r.json.detail, /credentials/, 'saying the gateway credentials were refused');
    r = await chat('[[status:500]]');
    t.is([r.status, r.json.detail], [502, 'AI service error'], '500: 502 after retries');
    t.is(await attempts('[[status:500]]'), 3, 'retried twice');
  });

  await t.test('timeouts', async () => {
    let r = await chat('[[headers-delay:3000]] slow');
    t.is(r.status, 504, 'no answer within first_byte_timeout: 504');
    t.is(r.json.detail, 'AI service timed out', 'detail');
    t.is(await attempts('[[headers-delay:3000]] slow'), 1, 'timeouts are not retried');
    r = await stream('[[tokens:3]] [[stall:0]]');
    t.is(r.status, 504, 'stream stalled before the first token: 504');
  });

  await t.test('broken streams before the first token', async () => {
    let r = await stream('[[tokens:3]] [[error-event:0]]');
    t.is(r.status, 503, 'an overloaded error event first: 503 (after retries)');
    t.is(await attempts('[[tokens:3]] [[error-event:0]]'), 3, 'retried');
    r = await stream('[[tokens:3]] [[malformed:0]]');
    t.is(r.status, 502, 'a malformed event: 502');
    t.like(JSON.parse(r.raw).detail, /malformed/, 'saying so');
    r = await stream('[[tokens:3]] [[cut:0]]');
    t.is(r.status, 502, 'a cut before any token: 502');
    r = await stream('[[tokens:3]] [[no-stop]]');
    t.ok(r.status === 200 && r.error !== null && !r.done, 'a stream without message_stop ends with an error event');
    r = await stream('[[big-event]]');
    t.is(r.status, 502, 'an oversized event: 502');
    t.like(JSON.parse(r.raw).detail, /more than llmgw accepts/, 'saying so');
    r = await stream('[[tokens:3]] [[malformed:1]]');
    t.is(r.error && JSON.parse(r.error).type, 'upstream_malformed', 'malformed after a token: error event');
  });

  await t.test('many broken streams at once', async () => {
    // The upstream finishing while llmgw stops the transfer: both at once.
    const kinds = ['[[error-event:0]] [[status:200]]', '[[malformed:0]]', '[[malformed:1]]', '[[cut:1]]',
                   '[[big-event]]', '[[error-event:1]]'];
    const rs = await Promise.all(Array.from({length: 60}, (_, i) => stream(`${kinds[i % kinds.length]} #${i}`)));
    // 504 too: on a loaded machine some wait past first_byte_timeout (1 s).
    const clean = r => [502, 503, 504].includes(r.status) && /^\{"detail":/.test(r.raw) ||
      (r.status === 200 && r.error !== null);
    const bad = rs.filter(r => !clean(r));
    t.is(bad.map(r => [r.status, r.raw.slice(0, 80)]), [], 'every one ends in a clean error');
  });

  await t.test('still serving', async () => {
    const r = await chat('fine');
    t.is(r.status, 200, 'after all that, a normal request works');
  });

});
