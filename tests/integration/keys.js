// API keys, budgets and rates across several llmgw processes, and the
// llmgw-admin commands that manage and report them.  keys_pg.js runs the
// same with the database on a real PostgreSQL (tests/lib/store.js).
'use strict';
const {spawnSync} = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const t = require('../lib/tap');
const {request, sse, waitFor, sleep} = require('../lib/http');
const {spoolRecords, ADMIN, VALGRIND, sanitizerEnv} = require('../lib/servers');
const {PG, startStore, setup, sql, usageRow} = require('../lib/store');

t.main(async () => {
  const pg = await startStore('keys-pg');
  // Hundreds of requests at once queue for the database (under valgrind,
  // slowly): the wait a keyed request may take is not what is tested here.
  const {url, db, dir, env, srv, stub} = await setup('keys', {procs: 3, conf: {threads: 2, database_wait: '60s'}});
  const admin = (...args) => spawnSync(ADMIN, args, {env: {...env, ...sanitizerEnv(dir)}, encoding: 'utf8'});
  const create = (...args) => {
    const r = admin('key', 'create', ...args);
    return {...r, secret: r.stdout.trim()};
  };
  const chat = (secret, body, headers = {}) => request(url('/chat'), {method: 'POST',
    headers: {authorization: `Bearer ${secret}`, ...headers}, body});

  let alice;
  await t.test('key create, list, show', async () => {
    const r = create('--name', 'alice');
    t.is(r.status, 0, 'key create: exit 0');
    t.like(r.secret, /^llmgw_[A-Za-z0-9_-]{43}$/, 'the secret alone on stdout: a prefix and 32 random bytes');
    t.like(r.stderr, /key k[0-9a-f]{12} \(alice\) created; its secret, below, is shown only this once/, 'said once');
    alice = r.secret;
    const rows = sql(db, "SELECT * FROM keys WHERE name = 'alice'");
    t.is(rows[0].hash, crypto.createHash('sha256').update(alice).digest('hex'), 'only its SHA-256 is stored');
    t.ok(!(PG ? pg.sql('SELECT * FROM keys').map(x => JSON.stringify(x)).join('\n') : fs.readFileSync(db))
      .includes(alice.slice(6)), 'the secret is nowhere in the database');
    const l = admin('key', 'list');
    t.ok(l.status === 0 && /alice/.test(l.stdout) && !l.stdout.includes(alice.slice(12)), 'key list: never the secret');
    const s = admin('key', 'show', 'alice');
    t.like(s.stdout, /status:\s+active/, 'key show');
    t.is(create('--name', 'alice').status, 1, 'a name in use: exit 1');
    t.is(create('--name', 'x y').status, 2, 'a bad name: exit 2');
    t.is(create('--name', 'b', '--budget-tokens', '10').status, 2, '--budget-tokens without --period: exit 2');
    t.is(create('--name', 'b', '--expires', '2001-01-01').status, 2, 'an expiry in the past: exit 2');
    t.is(admin('key', 'show', 'nobody').status, 1, 'an unknown key: exit 1');
  });

  await t.test('requests with a key', async () => {
    const r = await chat(alice, {message: 'hello'});
    t.is(r.status, 200, 'accepted');
    const id = sql(db, "SELECT id FROM keys WHERE name = 'alice'")[0].id;
    const u = await usageRow(db, r.headers['x-request-id']);
    t.is(u && u.key_id, id, 'the usage row carries the key id');
    const rec = await waitFor(() => spoolRecords(`${dir}/spool`).find(x => x.request_id === r.headers['x-request-id']),
      5000);
    t.is(rec && rec.key, id, 'and so does the spool record');
    t.is((await chat(alice.slice(0, -1) + 'x', {message: 'x'})).status, 401, 'a wrong secret: 401');
    t.is((await request(url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${env.LLMGW_API_TOKEN}`},
      body: {message: 'x'}})).status, 200, 'the static token keeps working');
  });

  await t.test('revoke: refused within a second in every process', async () => {
    const before = await Promise.all(Array.from({length: 12}, () => chat(alice, {message: 'x'})));
    t.is(before.filter(r => r.status === 200).length, 12, 'accepted everywhere before');
    t.ok(srv.pids().length === 3, `three llmgw processes serve (${srv.pids().length})`);
    const r = admin('key', 'revoke', 'alice');
    t.ok(r.status === 0 && /revoked/.test(r.stdout), 'key revoke');
    await sleep(1000);
    const after = await Promise.all(Array.from({length: 12}, () => chat(alice, {message: 'x'})));
    t.is(after.map(x => [x.status, x.json && x.json.detail]).filter(([s, d]) => s !== 401 || d !== 'Key revoked'),
      [], '401 Key revoked in every process');
    t.like(admin('key', 'list').stdout, /alice\s+\S+\s+revoked/, 'key list says revoked');
  });

  await t.test('expiry, models, rate', async () => {
    // An expiry in whole seconds, far enough for the key to be made and
    // used before it (under valgrind, slowly); then waited out.
    const expires = Math.ceil((Date.now() + (VALGRIND ? 30000 : 5000)) / 1000) * 1000;
    const e = create('--name', 'brief', '--expires', new Date(expires).toISOString().slice(0, 19) + 'Z');
    t.is((await chat(e.secret, {message: 'x'})).status, 200, 'a key before it expires');
    await sleep(Math.max(0, expires - Date.now()) + 200);
    const r = await chat(e.secret, {message: 'x'});
    t.is([r.status, r.json && r.json.detail], [401, 'Key expired'], 'after: 401 Key expired');
    const m = create('--name', 'haiku-only', '--models', 'claude-haiku-4-5');
    t.is((await chat(m.secret, {message: 'x', model: 'claude-haiku-4-5'})).status, 200, 'an allowed model');
    const no = await chat(m.secret, {message: 'x'});
    t.is([no.status, no.json && no.json.detail], [403, 'this key may not use model claude-sonnet-4-6'],
      'another model: 403');
    const q = create('--name', 'slow', '--rpm', '3');
    const rs = [];
    for (let i = 0; i < 5; i++) rs.push(await chat(q.secret, {message: 'x'}));
    t.is(rs.map(x => x.status), [200, 200, 200, 429, 429], 'rpm 3: the fourth request in a minute gets 429');
    t.ok(+rs[3].headers['retry-after'] >= 1 && +rs[3].headers['retry-after'] <= 60,
      `with Retry-After: ${rs[3].headers['retry-after']}`);
    t.like(rs[3].json.detail, /rate limit of 3 requests per minute/, 'and says why');
  });

  await t.test('200 concurrent requests never overspend the budget', async () => {
    const budget = 6000;
    const k = create('--name', 'team', '--budget-tokens', String(budget), '--period', 'day');
    const id = sql(db, "SELECT id FROM keys WHERE name = 'team'")[0].id;
    // Each holds 100 + message + 64 while it runs, and uses 100 (20 in, 80 out).
    const msg = '[[usage:20,80]] [[headers-delay:150]]';
    const rs = await Promise.all(Array.from({length: 200}, () =>
      chat(k.secret, {message: msg, max_tokens: 100})));
    const ok = rs.filter(r => r.status === 200).length;
    const refused = rs.filter(r => r.status === 429).length;
    await waitFor(() => sql(db, `SELECT count(*) AS n FROM reservations WHERE key_id = '${id}'`)[0].n === 0, 10000);
    const settled = sql(db, `SELECT coalesce(sum(tokens), 0) AS n FROM budget_use WHERE key_id = '${id}'`)[0].n;
    // Usage rows are written a moment after their requests, many at once.
    const usedNow = () => sql(db, `SELECT coalesce(sum(input_tokens + output_tokens), 0) AS n FROM usage WHERE key_id = '${id}'`)[0].n;
    await waitFor(() => usedNow() === settled, 5000);
    const used = usedNow();
    t.diag(`budget ${budget}: ${ok} requests served, ${refused} refused (429), settled ${settled} tokens, ` +
      `usage rows ${used} tokens, over ${srv.pids().length} processes`);
    t.is(ok + refused, 200, 'every request was served or refused with 429');
    t.ok(ok > 0 && refused > 0, 'some fit, some did not');
    t.ok(settled <= budget, `the settled total (${settled}) never exceeds the budget (${budget})`);
    t.is(settled, used, 'settled = the usage rows of the key');
    const fit = Math.floor(budget / (100 + Buffer.byteLength(msg) + 64));
    t.ok(ok >= fit, `at least as many served as fit at once (${fit})`);
    const spent = rs.find(r => r.status === 429);
    t.like(spent.json.detail, /token budget of 6000 per day is spent/, 'the 429 says the budget is spent');
    t.ok(+spent.headers['retry-after'] > 0 && +spent.headers['retry-after'] <= 86400,
      'with Retry-After until the end of the day');
  });

  await t.test('a process that dies: its hold is charged, not forgiven', async () => {
    // The stream holds 1 counted input token + max_tokens 100.
    const k = create('--name', 'single', '--budget-tokens', '250', '--period', 'month');
    const id = sql(db, "SELECT id FROM keys WHERE name = 'single'")[0].id;
    const long = sse(url('/chat/stream'), {message: '[[tokens:50]] [[delay:200]] [[usage:1,1]]', max_tokens: 100},
      {headers: {authorization: `Bearer ${k.secret}`}, abortAt: 5000});
    const held = await waitFor(() => sql(db, `SELECT id, pid, tokens FROM reservations WHERE key_id = '${id}'`)[0], 5000);
    t.ok(held && held.tokens === 101, `a stream holds its counted input and max_tokens: ${held && held.tokens}`);
    const busy = await chat(k.secret, {message: 'x', max_tokens: 200});
    t.is(busy.status, 429, 'a second request that does not fit beside it: 429');
    process.kill(held.pid, 'SIGKILL');
    await long;
    await sleep(300);
    const r = await chat(k.secret, {message: 'x', max_tokens: 100});
    t.is(r.status, 200, 'after its process was killed, a request that fits beside its charge is served');
    const row = await waitFor(() => sql(db, `SELECT input_tokens, CAST(hold_charged AS integer)
      AS hold_charged, CAST(partial AS integer) AS partial FROM usage WHERE id = '${held.id}'`)[0], 5000);
    t.is(row, {input_tokens: 101, hold_charged: 1, partial: 1}, 'the dead request has a usage row: its hold, marked as charged');
    t.ok(await waitFor(() => sql(db, `SELECT count(*) AS n FROM reservations WHERE key_id = '${id}'`)[0].n === 0, 5000),
      'nothing left held once it settled');
    const spent = () => sql(db, `SELECT coalesce(sum(tokens), 0) AS n FROM budget_use WHERE key_id = '${id}'`)[0].n;
    const rows = () => sql(db, `SELECT coalesce(sum(input_tokens + output_tokens), 0) AS n FROM usage WHERE key_id = '${id}'`)[0].n;
    t.ok(await waitFor(() => spent() === rows(), 5000) && spent() >= 101, `the budget counts the charge: ${spent()} tokens`);
  });

  await t.test('llmgw-admin usage', async () => {
    let r = admin('usage');
    t.is(r.status, 0, 'exit 0');
    const lines = r.stdout.trim().split('\n');
    t.like(lines[0], /^KEY\s+REQUESTS\s+ERRORS\s+INPUT_TOKENS\s+OUTPUT_TOKENS\s+P50_MS\s+P95_MS\s+P50_TTFT_MS\s+P95_TTFT_MS$/,
      'a table with requests, errors, tokens, p50/p95 latency and TTFT');
    t.like(r.stdout, /^team\s+\d+\s+0\s+\d+\s+\d+/m, 'a row per key, by name');
    t.like(lines[lines.length - 1], /^total\s+\d+/, 'and a total');
    r = admin('usage', '--by', 'model', '--format', 'json');
    const j = JSON.parse(r.stdout);
    t.ok(j.some(x => x.MODEL === 'claude-sonnet-4-6' && x.REQUESTS > 0 && typeof x.P95_MS === 'number'), 'json, by model');
    r = admin('usage', '--by', 'route', '--format', 'csv', '--key', 'team');
    t.like(r.stdout, /^ROUTE,REQUESTS,ERRORS,INPUT_TOKENS,OUTPUT_TOKENS,P50_MS,P95_MS,P50_TTFT_MS,P95_TTFT_MS\n\/chat,\d+,0,\d+,\d+,/,
      'csv, by route, for one key');
    const today = new Date().toISOString().slice(0, 10);
    r = admin('usage', '--by', 'day', '--since', '1d');
    t.like(r.stdout, new RegExp(`^${today}\\s+\\d+`, 'm'), 'by day, since a day ago');
    r = admin('usage', '--since', '2001-01-01', '--until', '2001-01-02');
    t.is(r.stdout.trim().split('\n').length, 1, 'a window with nothing: the header only');
    r = admin('usage', '--since', 'yesterday');
    t.ok(r.status === 2 && /--since: "yesterday" is not a time/.test(r.stderr) && /usage: llmgw-admin usage/.test(r.stderr),
      'a bad time: exit 2 with a usage line');
    t.ok(admin('usage', '--help').status === 0, '--help');
  });

  await t.test('llmgw-admin db', async () => {
    let r = admin('db', 'check');
    t.ok(r.status === 0 && (PG ? /database: PostgreSQL database llmgw on/ : /integrity: ok/).test(r.stdout) &&
      /schema: version \d+ \(current\)/.test(r.stdout), `db check ${r.stdout}`);
    r = admin('db', 'migrate');
    t.ok(r.status === 0 && /already current/.test(r.stdout), 'db migrate');
    r = admin('db', 'vacuum');
    t.ok(r.status === 0 && (PG ? /autovacuum/ : /bytes -> \d+ bytes/).test(r.stdout), 'db vacuum');
    r = spawnSync(ADMIN, ['db', 'check'], {env: {...env, LLMGW_DB: `${dir}/nope.db`}, encoding: 'utf8'});
    t.ok(r.status === 1 && /nope\.db: No such file/.test(r.stderr), 'a missing database: exit 1, saying so');
    for (const c of [['key', 'create'], ['key', 'list'], ['key', 'show'], ['key', 'revoke'], ['db', 'check'],
      ['db', 'migrate'], ['db', 'vacuum'], ['spool', 'status'], ['spool', 'retry'], ['spool', 'purge'], ['usage']]) {
      r = admin(...c, '--help');
      t.ok(r.status === 0 && r.stdout.startsWith(`usage: llmgw-admin ${c.join(' ')}`), `${c.join(' ')} --help`);
    }
    r = admin('key');
    t.ok(r.status === 2 && /"key" needs a command/.test(r.stderr), 'a group without a command: exit 2');
    r = admin('frob');
    t.ok(r.status === 2 && /unknown command "frob"/.test(r.stderr), 'an unknown command: exit 2');
  });
});
