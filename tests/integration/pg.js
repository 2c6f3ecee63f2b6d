// The request logs of two hosts in one real PostgreSQL (tests/lib/pg.js:
// Debian's, started for the test as an unprivileged user): llmgw-admin
// db migrate and check on its URI, two llmgw-spoold delivering at once
// with sink_database = postgresql://..., rows that match each host's
// usage rows, a record delivered twice written once, PostgreSQL stopped
// and started again (records kept, then written), a password in the URI
// never in a log.  Keys, budgets and usage rows on PostgreSQL:
// pg_state.js.
'use strict';
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {request, sse, waitFor} = require('../lib/http');
const {spawnSync} = require('child_process');
const {setup, sql, startSpoold, writeConf, TOKEN, ADMIN, sanitizerEnv} = require('../lib/servers');
const {startPostgres} = require('../lib/pg');

const PASSWORD = 'pw-s3cret-77';

t.main(async () => {
  const pg = await startPostgres();
  const uri = `postgresql://llmgw:${PASSWORD}@/llmgw?host=${pg.sock}`;	// trust: the password is not checked
  const conf = {sinks: 'database', sink_database: uri, spool_retry_base: '100ms', spool_retry_max: '300ms',
    spool_rescan: '100ms'};
  const hosts = [await setup('pg-a', {conf}), await setup('pg-b', {conf})];
  const admin = (h, ...args) => spawnSync(ADMIN, args, {env: {...process.env, ...h.env, ...sanitizerEnv(h.dir)},
    encoding: 'utf8', timeout: 60000});

  const auth = {authorization: `Bearer ${TOKEN}`};
  const ids = [];
  for (const [i, h] of hosts.entries()) {
    for (let k = 0; k < 3; k++) {
      const id = `pg-${i}-${k}`;
      ids.push(id);
      if (k === 0) await sse(h.url('/chat/stream'), {message: '[[tokens:3]]'}, {headers: {...auth, 'x-request-id': id}});
      else await request(h.url('/chat'), {method: 'POST', headers: {...auth, 'x-request-id': id}, body: {message: `m${k}`}});
    }
  }
  // Each host's SQLite database exists once its usage writer wrote.
  for (const h of hosts) await waitFor(() => fs.existsSync(h.db), 20000, 50);
  await t.test('llmgw-admin db migrate and check, on the URI', async () => {
    let r = admin(hosts[0], 'db', 'migrate');
    t.is(r.status, 0, `db migrate exits 0 ${r.stderr}`);
    t.like(r.stdout, /request log: PostgreSQL database llmgw on .*sock\nschema: version 0 -> 2/,
      'the request log\'s schema made');
    r = admin(hosts[1], 'db', 'migrate');
    t.like(r.stdout, /request log: .*\nschema: version 2, already current/, 'the second host finds it made');
    r = admin(hosts[0], 'db', 'check');
    t.is(r.status, 0, 'db check exits 0');
    t.like(r.stdout, /request log: PostgreSQL database llmgw on .*\nschema: version 2 \(current\)/, 'and reports it');
    t.is(pg.sql('SELECT version FROM llmgw_schema'), [{version: 2}], 'llmgw_schema says version 2');
    t.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD), 'no password in what it prints');
  });

  const spoolds = hosts.map(h => startSpoold({dir: h.dir, env: {...h.env, ...sanitizerEnv(h.dir)}}));
  const rows = () => pg.sql('SELECT request_id, input_tokens, output_tokens, status, record FROM request_log ORDER BY request_id');

  await t.test('two hosts, one request log', async () => {
    const all = await waitFor(() => rows().length === ids.length, 20000, 100);
    t.ok(all, `all ${ids.length} rows, from both hosts (${rows().length})`);
    const got = rows();
    t.is(got.map(r => r.request_id), [...ids].sort(), 'one row per request');
    for (const h of hosts) {
      const local = sql(h.db, 'SELECT request_id, input_tokens, output_tokens, status FROM usage ORDER BY request_id');
      const there = got.filter(r => local.some(l => l.request_id === r.request_id))
        .map(({request_id, input_tokens, output_tokens, status}) => ({request_id, input_tokens, output_tokens, status}));
      t.is(there, local, `${path.basename(h.dir)}: the rows match its usage rows`);
    }
    t.ok(got.every(r => JSON.parse(r.record).request_id === r.request_id), 'each with its record');
  });

  await t.test('llmgw-admin usage --log: every host\'s requests in one report', async () => {
    const r = admin(hosts[0], 'usage', '--log', '--format', 'json');
    t.is(r.status, 0, `exits 0 ${r.stderr}`);
    const rows = JSON.parse(r.stdout);
    const local = admin(hosts[0], 'usage', '--format', 'json');
    t.is([rows.length, rows[0] && rows[0].KEY, rows[0] && +rows[0].REQUESTS], [1, 'static', ids.length],
      `one key, all ${ids.length} requests of both hosts (this host's own usage table has ` +
      `${JSON.parse(local.stdout).map(x => x.REQUESTS).join('')})`);
    const tokens = pg.sql('SELECT sum(input_tokens) AS i, sum(output_tokens) AS o FROM request_log')[0];
    t.is([+rows[0].INPUT_TOKENS, +rows[0].OUTPUT_TOKENS], [+tokens.i, +tokens.o], 'the tokens of the request log');
    const byDay = JSON.parse(admin(hosts[1], 'usage', '--log', '--by', 'day', '--format', 'json').stdout);
    t.is(byDay.map(x => x.DAY), [new Date().toISOString().slice(0, 10)], '--by day: today, in UTC');
    const none = JSON.parse(admin(hosts[1], 'usage', '--log', '--key', 'k-none', '--format', 'json').stdout);
    t.is(none, [], '--key: a key id with no requests, none');
  });

  await t.test('a record delivered twice is written once', async () => {
    const spool = hosts[0].env.LLMGW_SPOOL_DIR;
    const line = rows()[0].record;
    fs.writeFileSync(path.join(spool, 'tmp', 'again1'), line + '\n');
    fs.renameSync(path.join(spool, 'tmp', 'again1'), path.join(spool, 'new', 'again1'));
    const gone = await waitFor(() => !fs.existsSync(path.join(spool, 'new', 'again1')) &&
      fs.readdirSync(path.join(spool, 'cur')).length === 0, 10000, 50);
    t.ok(gone, 'delivered');
    t.is(rows().length, ids.length, `still ${ids.length} rows`);
  });

  await t.test('PostgreSQL stopped: records kept; started: written', async () => {
    pg.stop();
    const r = await request(hosts[1].url('/chat'), {method: 'POST', headers: {...auth, 'x-request-id': 'pg-down-1'},
      body: {message: 'while it is down'}});
    t.is(r.status, 200, 'llmgw answers all the same (its usage is on SQLite)');
    const failing = await waitFor(() => /database sink.*PostgreSQL database llmgw on .*connect/.test(spoolds[1].log()), 10000, 100);
    t.ok(failing, 'llmgw-spoold logs that it cannot connect, naming the database and host');
    const spool = hosts[1].env.LLMGW_SPOOL_DIR;
    t.ok(fs.readdirSync(path.join(spool, 'new')).length + fs.readdirSync(path.join(spool, 'cur')).length > 0,
      'the record waits in the spool');
    pg.start();
    const back = await waitFor(() => rows().some(x => x.request_id === 'pg-down-1'), 20000, 100);
    t.ok(back, 'written once PostgreSQL is back, by the same llmgw-spoold');
    t.ok(!spoolds[1].exited, 'which never stopped');
  });

  for (const d of spoolds) t.is(await d.stop(), 0, 'llmgw-spoold stops with 0');
  t.ok(spoolds.every(d => !d.log().includes(PASSWORD)), 'no password in llmgw-spoold\'s log');
});
