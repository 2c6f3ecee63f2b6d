// Budgets that hold when a request costs more than its bytes: an upstream
// that bills far more input than the request carries (as server tools
// do), 300 requests at once over three llmgw processes, server tools
// through /v1/messages with and without a reserve, and what a client
// sees when its stream is ended for the budget.  The bound: the settled
// total never passes the budget by more than the largest overshoot of a
// single request (llmgw-admin key show prints it).  budgets_pg.js runs the
// same with the database on a real PostgreSQL (tests/lib/pg.js).
'use strict';
const {spawnSync} = require('child_process');
const t = require('../lib/tap');
const {request, sse, waitFor} = require('../lib/http');
const {ADMIN, sanitizerEnv, heavy} = require('../lib/servers');
const {startStore, setup, sql} = require('../lib/store');

// What a key settled and what its rows say, once nothing is held.
async function settle(db, id) {
  await waitFor(() => sql(db, `SELECT count(*) AS n FROM reservations WHERE key_id = '${id}'`)[0].n === 0, 15000);
  const settled = () => sql(db, `SELECT coalesce(sum(tokens), 0) AS n FROM budget_use WHERE key_id = '${id}'`)[0].n;
  const rows = () => sql(db, `SELECT coalesce(sum(input_tokens + output_tokens + cache_creation_input_tokens +
    cache_read_input_tokens), 0) AS n FROM usage WHERE key_id = '${id}'`)[0].n;
  await waitFor(() => settled() === rows(), 10000);
  const [k] = sql(db, `SELECT max_overshoot FROM keys WHERE id = '${id}'`);
  return {settled: settled(), rows: rows(), overshoot: k.max_overshoot};
}

t.main(async () => {
  heavy('300 requests at once over three processes');
  await startStore('budgets-pg');
  const {url, db, dir, env, stub, srv} = await setup('budgets', {procs: 3,
    conf: {threads: 4, server_tool_reserve: 3000, server_tool_uses: 2, database_wait: '60s'}});
  const admin = (...args) => spawnSync(ADMIN, args, {env: {...env, ...sanitizerEnv(dir)}, encoding: 'utf8'});
  const create = (name, budget) => {
    const r = admin('key', 'create', '--name', name, '--budget-tokens', String(budget), '--period', 'day');
    return {secret: r.stdout.trim(), id: sql(db, `SELECT id FROM keys WHERE name = '${name}'`)[0].id};
  };
  const chat = (secret, body) => request(url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${secret}`}, body});

  await t.test('an upstream that bills 5,016 input tokens for a 40-byte message: 300 at once', async () => {
    const budget = 20000;
    const k = create('many', budget);
    // Each costs 5,016 in and 5 out; the message is 40-odd bytes.
    const msg = '[[usage:5016,5]] [[headers-delay:100]]';
    const rs = await Promise.all(Array.from({length: 300}, () => chat(k.secret, {message: msg, max_tokens: 50})));
    const ok = rs.filter(r => r.status === 200).length, refused = rs.filter(r => r.status === 429).length;
    const s = await settle(db, k.id);
    t.diag(`budget ${budget}: ${ok} served, ${refused} refused, settled ${s.settled}, largest overshoot ${s.overshoot}`);
    t.is(ok + refused, 300, 'each served or refused with 429');
    t.ok(ok >= 3, `as many served as fit: ${ok} (20,000 / 5,066 = 3)`);
    t.ok(s.settled <= budget + s.overshoot, `settled ${s.settled} <= budget ${budget} + largest overshoot ${s.overshoot}`);
    t.is(s.settled, s.rows, 'settled = the usage rows');
    const counted = (await (await fetch(`${stub.url}/log`)).json()).filter(e => e.count_tokens).length;
    t.ok(counted >= ok, `the input of each was counted by the API first (${counted} counts)`);
  });

  await t.test('the same, one request at a time', async () => {
    const budget = 20000;
    const k = create('serial', budget);
    let ok = 0;
    for (let i = 0; i < 10; i++) if ((await chat(k.secret, {message: '[[usage:5016,5]]', max_tokens: 50})).status === 200) ok++;
    const s = await settle(db, k.id);
    t.is(ok, 3, `three served (${s.settled} tokens settled), the rest refused`);
    t.ok(s.settled <= budget + s.overshoot, `settled ${s.settled} <= budget ${budget} + largest overshoot ${s.overshoot}`);
  });

  await t.test('every process killed with keyed streams open: their holds are charged', async () => {
    const k = create('killed', 1000000);
    const streams = Array.from({length: 6}, () => sse(url('/chat/stream'),
      {message: '[[tokens:100]] [[delay:100]]', max_tokens: 200}, {headers: {authorization: `Bearer ${k.secret}`}}));
    const held = await waitFor(() => {
      const rows = sql(db, `SELECT id, tokens FROM reservations WHERE key_id = '${k.id}'`);
      return rows.length === 6 ? rows : null;
    }, 10000);
    t.ok(held, 'six streams hold their tokens');
    const pids = srv.pids();
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await Promise.all(streams);
    t.ok(pids.length === 3, `all ${pids.length} llmgw processes killed`);
    // lighttpd starts llmgw again; its first keyed request settles the dead holds.
    const r = await chat(k.secret, {message: 'after', max_tokens: 10});
    t.is(r.status, 200, 'served again');
    const rows = await waitFor(() => {
      const x = sql(db, `SELECT id, input_tokens FROM usage WHERE key_id = '${k.id}' AND CAST(hold_charged AS integer) = 1`);
      return x.length === 6 ? x : null;
    }, 10000);
    t.ok(rows, 'each dead stream has a usage row marked hold_charged');
    const want = Object.fromEntries(held.map(h => [h.id, h.tokens]));
    t.ok(rows && rows.every(x => want[x.id] === x.input_tokens), 'charged what it held');
    const s = await settle(db, k.id);
    t.ok(s.settled >= held.reduce((a, h) => a + h.tokens, 0), `the budget counts them: ${s.settled} tokens settled`);
  });

  const messages = (secret, body, headers = {}) => request(url('/v1/messages'), {method: 'POST',
    headers: {'x-api-key': secret, 'anthropic-version': '2023-06-01', ...headers}, body});
  const searchBody = (text, extra = {}) => ({model: 'claude-sonnet-4-6', max_tokens: 100,
    messages: [{role: 'user', content: text}], tools: [{type: 'web_search_20250305', name: 'web_search', max_uses: 2}], ...extra});

  await t.test('web search through /v1/messages: held for with a reserve', async () => {
    const budget = 30000;
    const k = create('search', budget);
    // Two searches of 2,500 tokens each: within the reserve of 3,000 a use.
    const rs = await Promise.all(Array.from({length: 20}, () => messages(k.secret, searchBody('[[server-tools:2,2500]]'))));
    const ok = rs.filter(r => r.status === 200).length;
    const s = await settle(db, k.id);
    t.diag(`budget ${budget}: ${ok} served; settled ${s.settled}, largest overshoot ${s.overshoot}`);
    t.ok(ok >= 4 && ok + rs.filter(r => r.status === 429).length === 20, `${ok} served, the rest refused with 429`);
    t.is(rs.find(r => r.status === 429).json.error.type, 'rate_limit_error', "a refusal in the Messages API's shape");
    t.ok(s.settled <= budget, `settled ${s.settled} <= budget ${budget}: the reserve covered the searches`);
    t.is(s.overshoot, 0, 'no request cost more than it held');
  });

  await t.test('web search with a key that has a budget, and no reserve set', async () => {
    const {url: url2, db: db2, env: env2, dir: dir2} = await setup('budgets-noreserve', {conf: {threads: 2}});
    const r = spawnSync(ADMIN, ['key', 'create', '--name', 'x', '--budget-tokens', '1000', '--period', 'day'],
      {env: {...env2, ...sanitizerEnv(dir2)}, encoding: 'utf8'});
    const res = await request(url2('/v1/messages'), {method: 'POST', headers: {'x-api-key': r.stdout.trim(),
      'anthropic-version': '2023-06-01'}, body: searchBody('[[server-tools:1,500]]')});
    t.is(res.status, 400, 'refused: 400');
    t.is(res.json.error.type, 'invalid_request_error', "in the Messages API's shape");
    t.like(res.json.error.message, /server_tool_reserve/, `saying what to set: ${res.json.error.message}`);
    t.is(sql(db2, "SELECT count(*) AS n FROM usage WHERE key_id = (SELECT id FROM keys WHERE name = 'x')")[0].n, 0,
      'nothing reached the upstream');
  });

  await t.test('a stream ended for its budget', async () => {
    // Each search brings 6,000 tokens against a reserve of 3,000: the
    // hold grows as the uses begin, and the budget runs out mid-stream.
    const budget = 9000;
    const k = create('cut', budget);
    const r = await sse(url('/v1/messages'), {...searchBody('[[server-tools:2,6000]] [[tokens:20]] [[delay:10]]'), stream: true},
      {headers: {'x-api-key': k.secret, 'anthropic-version': '2023-06-01'}});
    const err = r.events.find(e => e.event === 'error');
    t.is(r.status, 200, 'the stream began');
    t.ok(err && JSON.parse(err.data).error.type === 'rate_limit_error', `then the Messages API's error event: ${err && err.data}`);
    t.ok(!r.events.some(e => e.event === 'message_stop'), 'and no message_stop');
    const s = await settle(db, k.id);
    const [row] = sql(db, `SELECT CAST(budget_exhausted AS integer) AS budget_exhausted, CAST(partial AS integer)
      AS partial FROM usage WHERE key_id = '${k.id}'`);
    t.is(row, {budget_exhausted: 1, partial: 1}, 'the usage row says the budget ended it');
    t.ok(s.settled <= budget + s.overshoot, `settled ${s.settled} <= budget ${budget} + largest overshoot ${s.overshoot}`);
    const show = admin('key', 'show', 'cut');
    t.like(show.stdout, /overshoot: \d+ tokens/, `llmgw-admin key show prints the overshoot: ${(/overshoot: .*/.exec(show.stdout) || [''])[0]}`);
    t.like(show.stdout, /used: +\d+ settled, 0 held/, 'and what is settled and held');

    // /chat/stream: an upstream that reports more output than max_tokens.
    const k2 = create('cut-chat', 300);
    const c = await sse(url('/chat/stream'), {message: '[[usage:10,5000]] [[tokens:5]]', max_tokens: 100},
      {headers: {authorization: `Bearer ${k2.secret}`}});
    const ce = c.events.find(e => e.event === 'error');
    t.ok(ce && JSON.parse(ce.data).type === 'budget_exhausted', `/chat/stream: event: error, budget_exhausted: ${ce && ce.data}`);
    t.ok(!c.events.some(e => e.data === '[DONE]'), 'and no [DONE]');
  });

  await t.test("an SDK's default max_tokens on a small budget", async () => {
    // @ai-sdk/anthropic asks for 128,000 on claude-sonnet-4-6; the key
    // has 3,000.  A stream holds what is left and is ended there; a whole
    // reply, which cannot be ended, must fit.
    const budget = 3000;
    const k = create('small', budget);
    const hdrs = {'x-api-key': k.secret, 'anthropic-version': '2023-06-01'};
    const body = text => ({model: 'claude-sonnet-4-6', max_tokens: 128000, messages: [{role: 'user', content: text}]});
    const short = await sse(url('/v1/messages'), {...body('[[tokens:5]]'), stream: true}, {headers: hdrs});
    t.ok(short.status === 200 && short.events.some(e => e.event === 'message_stop'), `a short stream is served whole (${short.status})`);
    const long = sse(url('/v1/messages'), {...body('[[tokens:40]] [[delay:50]] [[usage:10,100]]'), stream: true}, {headers: hdrs});
    await waitFor(() => sql(db, `SELECT count(*) AS n FROM reservations WHERE key_id = '${k.id}'`)[0].n === 1, 10000);
    const [held] = sql(db, `SELECT tokens FROM reservations WHERE key_id = '${k.id}'`);
    t.ok(held.tokens < budget && held.tokens > 2900, `it holds what is left of the budget, not 128,000: ${held.tokens}`);
    const beside = await messages(k.secret, {...body('x'), max_tokens: 10});
    t.is(beside.status, 429, 'nothing else runs beside it');
    t.ok((await long).events.some(e => e.event === 'message_stop'), 'the long stream ends well within its hold');
    const whole = await messages(k.secret, body('[[tokens:5]]'));
    t.is(whole.status, 429, 'a whole reply that may need 128,000 is refused');
    t.like(whole.json.error.message, /may need 12\d{4}/, `saying what it may need: ${whole.json.error.message}`);
    const cut = await sse(url('/v1/messages'), {...body('[[usage:10,5000]] [[tokens:5]]'), stream: true}, {headers: hdrs});
    t.ok(cut.events.some(e => e.event === 'error' && /rate_limit_error/.test(e.data)), 'a stream that would pass the budget is ended');
    const s = await settle(db, k.id);
    t.ok(s.settled <= budget + s.overshoot, `settled ${s.settled} <= budget ${budget} + largest overshoot ${s.overshoot}`);
  });

  await t.test('refused before the first byte: 429 with Retry-After', async () => {
    const {url: url3, db: db3, env: env3, dir: dir3} = await setup('budgets-bytes',
      {conf: {threads: 2, budget_count_tokens: 'no'}});
    const r = spawnSync(ADMIN, ['key', 'create', '--name', 'y', '--budget-tokens', '2000', '--period', 'day'],
      {env: {...env3, ...sanitizerEnv(dir3)}, encoding: 'utf8'});
    // Held: a token per byte and max_tokens; billed 5,016 at message_start.
    const res = await sse(url3('/chat/stream'), {message: '[[usage:5016,5]]', max_tokens: 50},
      {headers: {authorization: `Bearer ${r.stdout.trim()}`}});
    t.is(res.status, 429, 'the stream had not begun: 429');
    t.ok(+res.headers['retry-after'] > 0, `with Retry-After: ${res.headers['retry-after']}`);
    t.like(res.raw, /budget/, `saying why: ${res.raw}`);
    const id = sql(db3, "SELECT id FROM keys WHERE name = 'y'")[0].id;
    const s = await settle(db3, id);
    t.ok(s.overshoot > 4800, `its overshoot is recorded: ${s.overshoot} tokens past its hold`);
    t.ok(s.settled <= 2000 + s.overshoot, `settled ${s.settled} <= budget 2000 + largest overshoot ${s.overshoot}`);
  });
});
