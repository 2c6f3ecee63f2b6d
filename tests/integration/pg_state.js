// Several hosts, one state: two web servers, each with its own llmgw
// (database = postgresql://...), sharing keys, budgets, request rates and
// usage rows in one real PostgreSQL (tests/lib/pg.js).  A token budget
// and a request rate hold for both hosts together under 300 and 60
// requests at once; a key made on one host works on the other, and one
// revoked on one is refused by the other at its next request; a dead
// host's hold is released when its lease ends; the usage
// report counts both; PostgreSQL stopped for 5 s in the middle of a load
// (no crash, 503 "key store unavailable" while keyed requests cannot be
// checked, the static token served, /healthz 503 saying why, every usage
// row there afterwards, none twice); llmgw-spoold delivering usage rows
// and the request log into PostgreSQL, kill -9 included.
'use strict';
const path = require('path');
const {spawnSync} = require('child_process');
const t = require('../lib/tap');
const {request, waitFor} = require('../lib/http');
const {setup, startSpoold, SRC, ADMIN, TOKEN, sanitizerEnv, heavy} = require('../lib/servers');
const {startPostgres} = require('../lib/pg');

t.main(async () => {
  heavy('two hosts, 300 requests at once, PostgreSQL stopped and started');
  // The role and database as deploy/postgresql/llmgw.sql makes them: llmgw
  // makes its tables with no more than that role may do.
  const pg = await startPostgres('pgstate', {setupSql: path.join(SRC, 'deploy/postgresql/llmgw.sql')});
  const conf = {database: pg.uri, threads: 4, database_wait: '30s', spool_retry_base: '100ms',
    spool_retry_max: '300ms', spool_rescan: '100ms'};
  // LLMGW_DB would win over the file's database: the file's is the URI.
  const hosts = [await setup('pgstate-a', {conf, env: {LLMGW_DB: pg.uri}}),
    await setup('pgstate-b', {conf, env: {LLMGW_DB: pg.uri}})];
  const admin = (h, ...args) => spawnSync(ADMIN, args, {env: {...process.env, ...h.env, ...sanitizerEnv(h.dir)},
    encoding: 'utf8', timeout: 60000});
  const create = (h, name, ...opts) => {
    const r = admin(h, 'key', 'create', '--name', name, ...opts);
    if (r.status !== 0) throw new Error(`key create ${name}: ${r.stderr}`);
    return {secret: r.stdout.trim(), id: pg.sql(`SELECT id FROM keys WHERE name = '${name}'`)[0].id};
  };
  const chat = (h, secret, body, headers = {}) => request(h.url('/chat'), {method: 'POST',
    headers: {authorization: `Bearer ${secret}`, ...headers}, body});
  // What a key settled and what its usage rows say, once nothing is held.
  const settle = async (id) => {
    await waitFor(() => pg.sql(`SELECT count(*) AS n FROM reservations WHERE key_id = '${id}'`)[0].n === 0, 20000);
    const settled = () => +pg.sql(`SELECT coalesce(sum(tokens), 0) AS n FROM budget_use WHERE key_id = '${id}'`)[0].n;
    const rows = () => +pg.sql(`SELECT coalesce(sum(input_tokens + output_tokens + cache_creation_input_tokens +
      cache_read_input_tokens), 0) AS n FROM usage WHERE key_id = '${id}'`)[0].n;
    await waitFor(() => settled() === rows(), 20000);
    return {settled: settled(), rows: rows(),
      overshoot: +pg.sql(`SELECT max_overshoot FROM keys WHERE id = '${id}'`)[0].max_overshoot};
  };

  await t.test('a key made on host A works on host B', async () => {
    const k = create(hosts[0], 'shared');
    t.like(k.secret, /^llmgw_/, 'llmgw-admin key create on A prints the secret');
    const r = await chat(hosts[1], k.secret, {message: 'hi'});
    t.is(r.status, 200, `host B serves it (${r.status} ${r.text.slice(0, 200)})`);
    const list = admin(hosts[1], 'key', 'list');
    t.like(list.stdout, /shared/, 'llmgw-admin key list on B lists it');
    t.is(pg.sql('SELECT version FROM llmgw_schema'), [{version: 2}], 'the schema is at version 2');
    t.is(pg.sql(`SELECT DISTINCT schemaname, tableowner FROM pg_tables WHERE tablename IN ('keys', 'usage')`),
      [{schemaname: 'llmgw', tableowner: 'llmgw'}], 'made by the role deploy/postgresql/llmgw.sql makes, in its schema');
    t.is(pg.sql(`SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'llmgw'`),
      [{rolsuper: false, rolcreatedb: false, rolcreaterole: false}], 'a role with no more privileges than that');
  });

  await t.test('a token budget holds for both hosts together: 300 requests at once', async () => {
    const budget = 20000;
    const k = create(hosts[0], 'budget', '--budget-tokens', String(budget), '--period', 'day');
    // Each costs 5,016 in and 5 out, and holds 5,016 + 50 before it runs.
    const msg = '[[usage:5016,5]] [[headers-delay:100]]';
    const rs = await Promise.all(Array.from({length: 300}, (_, i) => chat(hosts[i % 2], k.secret,
      {message: msg, max_tokens: 50})));
    const ok = rs.filter(r => r.status === 200), refused = rs.filter(r => r.status === 429);
    const s = await settle(k.id);
    t.diag(`budget ${budget}: ${ok.length} served (A ${rs.filter((r, i) => r.status === 200 && i % 2 === 0).length}, ` +
      `B ${rs.filter((r, i) => r.status === 200 && i % 2 === 1).length}), ${refused.length} refused, settled ${s.settled}`);
    t.is(ok.length + refused.length, 300, `each served or refused with 429 (${[...new Set(rs.map(r => r.status))]})`);
    t.ok(s.settled <= budget + s.overshoot, `settled ${s.settled} <= budget ${budget} + largest overshoot ${s.overshoot}`);
    t.is(s.settled, s.rows, 'settled = the usage rows');
    t.ok(budget - s.settled < 5066, `refused only once spent: ${budget - s.settled} left, less than one request's hold`);
    t.ok(refused.every(r => r.json && /budget/i.test(JSON.stringify(r.json))), 'each refusal says it is the budget');
  });

  await t.test('requests per minute hold for both hosts together: 60 at once, rpm 20', async () => {
    const k = create(hosts[1], 'rpm', '--rpm', '20');
    const rs = await Promise.all(Array.from({length: 60}, (_, i) => chat(hosts[i % 2], k.secret, {message: 'r'})));
    const ok = rs.filter(r => r.status === 200).length, refused = rs.filter(r => r.status === 429).length;
    t.is([ok, refused], [20, 40], `20 served and 40 refused with 429 over both hosts (${ok}, ${refused})`);
    t.ok(rs.filter(r => r.status === 429).every(r => +r.headers['retry-after'] >= 1), 'with retry-after');
  });

  await t.test('revoked on host A: refused by host B at its next request', async () => {
    const k = create(hosts[1], 'revokee');
    t.is((await chat(hosts[1], k.secret, {message: 'before'})).status, 200, 'B serves it');
    const r = admin(hosts[0], 'key', 'revoke', 'revokee');
    t.is(r.status, 0, `llmgw-admin key revoke on A exits 0 ${r.stderr}`);
    const after = await chat(hosts[1], k.secret, {message: 'after'});
    t.is(after.status, 401, 'B refuses it with 401 at once');
    t.like(after.text, /revoked/i, 'saying it is revoked');
  });

  await t.test('a hold of a host that died is released when its lease ends', async () => {
    // 1,000 tokens, all held by a request of a host that is gone, its
    // lease over: the next request finds the budget short, releases it,
    // and is served.
    const k = create(hosts[0], 'lease', '--budget-tokens', '1000', '--period', 'day');
    const period = new Date().toISOString().slice(0, 10);
    pg.exec(`INSERT INTO reservations (id, key_id, period, tokens, host, pid, start, expires, ts, route)
      VALUES ('gone-1', '${k.id}', '${period}', 1000, 'a-host-that-died', 1, 1, ${Date.now() - 1000}, ${Date.now() - 60000},
      '/chat')`);
    const r = await chat(hosts[1], k.secret, {message: 'after', max_tokens: 20});
    t.is(r.status, 200, `served once the dead host's lapsed hold is released (${r.status} ${r.text.slice(0, 120)})`);
    t.is(pg.sql(`SELECT id FROM reservations WHERE id = 'gone-1'`), [], 'the lapsed hold is gone');
    t.is(pg.sql(`SELECT count(*) AS n FROM usage WHERE id = 'gone-1'`)[0].n, 0,
      'released, not charged: its host\'s own usage row will settle what it used');
  });

  await t.test('llmgw-admin usage counts both hosts\' requests', async () => {
    const rows = await waitFor(() => {
      const n = +pg.sql('SELECT count(*) AS n FROM usage')[0].n;
      return n >= 20 + 2 + 1 ? n : null;
    }, 20000);
    const r = admin(hosts[1], 'usage', '--format', 'json');
    t.is(r.status, 0, `exits 0 ${r.stderr}`);
    const report = JSON.parse(r.stdout);
    const total = report.reduce((n, x) => n + +x.REQUESTS, 0);
    t.is(total, +pg.sql('SELECT count(*) AS n FROM usage')[0].n, `all ${rows}+ usage rows of both hosts`);
    const hostsSeen = new Set(pg.sql('SELECT DISTINCT request_id FROM usage').map(x => x.request_id)).size;
    t.ok(hostsSeen === total, 'one row per request');
  });

  await t.test('PostgreSQL stopped for 5 s in the middle of a load, then started', async () => {
    const k = create(hosts[0], 'outage', '--budget-tokens', '100000000', '--period', 'day');
    const pidsBefore = hosts.map(h => h.srv.pids().sort().join(','));
    const results = [];
    let running = true, n = 0;
    const worker = async (w) => {
      while (running) {
        const id = `outage-${w}-${n++}`;
        const r = await chat(hosts[w % 2], k.secret, {message: 'o', max_tokens: 20}, {'x-request-id': id});
        results.push({id, status: r.status, text: r.text});
        await new Promise(res => setTimeout(res, 20));
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));
    await new Promise(res => setTimeout(res, 1500));
    pg.stop();
    const down = Date.now();
    await new Promise(res => setTimeout(res, 1000));
    const health = await request(hosts[0].url('/healthz'));
    const staticOk = await request(hosts[1].url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${TOKEN}`},
      body: {message: 'static'}});
    await new Promise(res => setTimeout(res, Math.max(0, 5000 - (Date.now() - down))));
    pg.start();
    await new Promise(res => setTimeout(res, 3000));
    running = false;
    await load;
    const by = {};
    for (const r of results) by[r.status] = (by[r.status] || 0) + 1;
    t.diag(`statuses: ${JSON.stringify(by)}`);
    t.ok(Object.keys(by).every(s => s === '200' || s === '503'), 'every answer 200 or 503');
    t.ok(results.filter(r => r.status === 503).every(r => /key store is unavailable|cannot record/.test(r.text)),
      'each 503 says the key store is unavailable');
    t.ok(by[503] > 0 && by[200] > 0, 'some refused while it was down, the rest served');
    t.ok(results.slice(-4).every(r => r.status === 200), 'served again once it is back');
    t.is(health.status, 503, '/healthz says 503 while it is down');
    t.like(health.text, /PostgreSQL|database/, 'with the reason');
    t.is(staticOk.status, 200, 'the static api_token is served while it is down');
    t.is(hosts.map(h => h.srv.pids().sort().join(',')), pidsBefore, 'no llmgw process died');
    const served = results.filter(r => r.status === 200).map(r => r.id).sort();
    const got = await waitFor(() => {
      const rows = pg.sql(`SELECT request_id FROM usage WHERE key_id = '${k.id}' ORDER BY request_id`)
        .map(x => x.request_id);
      return rows.length >= served.length ? rows : null;
    }, 30000, 200);
    t.is(got, served, `a usage row for each of the ${served.length} served, none twice`);
    const s = await settle(k.id);
    t.is(s.settled, s.rows, 'the budget settled = its usage rows');
  });

  await t.test('llmgw-spoold delivers usage rows and the request log into PostgreSQL, kill -9 included', async () => {
    const k = create(hosts[0], 'spooled', '--budget-tokens', '1000000', '--period', 'day');
    const ids = [];
    for (let i = 0; i < 20; i++) {
      const id = `spool-${i}`;
      ids.push(id);
      t.is((await chat(hosts[i % 2], k.secret, {message: 's'}, {'x-request-id': id})).status, 200, `${id} served`);
    }
    // Its sinks: the database one (request_log, in the database named
    // by database, here PostgreSQL) and, always, the usage rows.
    const env = (h) => ({...h.env, ...sanitizerEnv(h.dir)});
    let d = startSpoold({dir: hosts[0].dir, env: env(hosts[0])});
    await waitFor(() => +pg.sql('SELECT count(*) AS n FROM request_log')[0].n > 0, 20000, 20);
    await d.stop('SIGKILL');
    d = startSpoold({dir: hosts[0].dir, env: env(hosts[0])});
    const e = startSpoold({dir: hosts[1].dir, env: env(hosts[1])});
    const all = await waitFor(() => {
      const rows = pg.sql(`SELECT request_id FROM request_log WHERE request_id LIKE 'spool-%'`);
      return rows.length >= ids.length ? rows : null;
    }, 30000, 100);
    t.ok(all, 'every record in request_log');
    t.is(pg.sql(`SELECT request_id, count(*) AS n FROM request_log WHERE request_id LIKE 'spool-%'
      GROUP BY request_id HAVING count(*) > 1`), [], 'each once');
    t.is(+pg.sql(`SELECT count(*) AS n FROM usage WHERE request_id LIKE 'spool-%'`)[0].n, ids.length,
      'one usage row each: the rows llmgw wrote are not written again');
    const s = await settle(k.id);
    t.is(s.settled, s.rows, 'the budget settled once');
    t.is(await d.stop(), 0, 'llmgw-spoold stops with 0');
    t.is(await e.stop(), 0, 'the other too');
  });
});
