// Nothing answered goes unrecorded: llmgw killed with SIGKILL under load,
// its database locked past the busy timeout, made immutable, remounted
// read-only or full.  Every request a client had its whole answer to has
// its usage row and its delivered record, once; the budget counts each
// row once; while rows and records cannot be written they wait in memory,
// /healthz says so at once, and keyed requests fail closed within
// database_wait.
'use strict';
const {spawn, spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {SLOW, request, sse, waitFor, sleep} = require('../lib/http');
const {heavy, setup, sql, startSpoold, startStub, startLighttpd, llmgwEnv, writeConf, workdir, ADMIN, TOKEN,
  sanitizerEnv} = require('../lib/servers');

const files = (dir) => { try { return fs.readdirSync(dir).filter(f => !f.startsWith('.')); } catch (e) { return []; } };

// One request, /chat or /chat/stream: the request id if the client had
// its whole answer with 200, else null.
async function ask(url, secret, id, stream, text = '[[tokens:3]] [[delay:10]]') {
  const headers = {authorization: `Bearer ${secret}`, 'x-request-id': id};
  try {
    if (stream) {
      const r = await sse(url('/chat/stream'), {message: `${text} ${id}`}, {headers, timeout: 20000});
      return r.status === 200 && r.done && r.complete && !r.error ? id : null;
    }
    const r = await request(url('/chat'), {method: 'POST', headers, body: {message: `${text} ${id}`}, timeout: 20000});
    return r.status === 200 && r.json && typeof r.json.reply === 'string' ? id : null;
  } catch (e) {
    return null;
  }
}

// The spool is empty: every record delivered (killed writers' segments
// too, once spool_reclaim_after has passed).
function drained(spool) {
  return files(path.join(spool, 'new')).length === 0 && files(path.join(spool, 'cur')).length === 0 &&
    !files(path.join(spool, 'tmp')).some(f => f.endsWith('.seg'));
}

// Another process holding the database locked (BEGIN EXCLUSIVE: no one
// else reads or writes) until release() is called.
async function holdLock(db) {
  const p = spawn('sqlite3', ['-bail', db], {stdio: ['pipe', 'pipe', 'inherit']});
  let out = '';
  t.onCleanup(() => { if (p.exitCode === null) p.kill(); });
  p.stdout.on('data', d => { out += d; });
  p.stdin.write(".timeout 20000\nBEGIN EXCLUSIVE;\nSELECT 'held';\n");
  const held = await waitFor(() => out.includes('held') || p.exitCode !== null, 25000);
  t.ok(held && out.includes('held'), 'another process holds the database locked');
  return {release: async () => { p.stdin.end('COMMIT;\n'); await new Promise(r => p.exitCode !== null ? r() : p.on('exit', r)); }};
}

// Answered requests against usage rows and delivered records.
function reconcile(db, prefix, answered, label) {
  const usage = sql(db, `SELECT request_id, count(*) AS n FROM usage WHERE request_id LIKE '${prefix}%' GROUP BY request_id`);
  const log = sql(db, `SELECT request_id, count(*) AS n, max(upstream) AS up FROM request_log WHERE request_id LIKE '${prefix}%' GROUP BY request_id`);
  const inUsage = new Set(usage.map(r => r.request_id)), inLog = new Set(log.map(r => r.request_id));
  t.diag(`${label}: ${answered.length} answered, ${usage.length} usage rows, ${log.length} records delivered`);
  t.is(answered.filter(id => !inUsage.has(id)), [], `${label}: every answered request has its usage row`);
  t.is(answered.filter(id => !inLog.has(id)), [], `${label}: and its record, delivered`);
  t.is(usage.filter(r => r.n > 1).concat(log.filter(r => r.n > 1)), [], `${label}: none twice`);
  t.is(log.filter(r => r.up && !inUsage.has(r.request_id)).map(r => r.request_id), [],
    `${label}: every delivered record that reached the upstream has its row`);
}

t.main(async () => {
  heavy('load while llmgw is killed and its database locked');
  const {url, dir, env, srv, db} = await setup('durable', {conf: {spool_rescan: '100ms',
    spool_reclaim_after: '300ms', threads: 8, database_wait: '1s'}});
  const spool = path.join(dir, 'spool');
  const spooldEnv = {...env, ...sanitizerEnv(dir)};
  const admin = (...args) => spawnSync(ADMIN, args, {env: spooldEnv, encoding: 'utf8'});
  const key = admin('key', 'create', '--name', 'durable', '--budget-tokens', '100000000', '--period', 'day');
  t.is(key.status, 0, 'a key with a budget');
  const secret = key.stdout.trim();
  const keyId = sql(db, "SELECT id FROM keys WHERE name = 'durable'")[0].id;

  await t.test('SIGKILL under load', async () => {
    const spoold = startSpoold({dir, env: spooldEnv, log: 'spoold-kill.log'});
    const answered = [];
    let next = 0, stop = false, kills = 0;
    const client = async (n) => {
      while (!stop) {
        const id = `k-${next++}`;
        const got = await ask(url, secret, id, n % 2 === 1);
        if (got) answered.push(got);
        else await sleep(100);		// lighttpd refuses while it respawns
      }
    };
    const clients = Array.from({length: 16}, (_, n) => client(n));
    for (let i = 0; i < 6; i++) {
      await sleep(700 + Math.floor(Math.random() * 900));
      // lighttpd starts llmgw again for the next request: wait for it.
      await waitFor(() => srv.pids().length > 0, 10000 * SLOW);
      for (const pid of srv.pids()) { process.kill(pid, 'SIGKILL'); kills++; }
    }
    await sleep(1000);
    stop = true;
    await Promise.all(clients);
    t.ok(kills >= 6, `llmgw was killed ${kills} times`);
    t.ok(answered.length > 100, `requests answered in between: ${answered.length} of ${next}`);
    t.ok(await waitFor(() => drained(spool), 30000 * SLOW, 100), 'the spool drains');
    reconcile(db, 'k-', answered, 'killed');
    const recovered = [...spoold.log().matchAll(/usage: (\d+) rows written from the spool/g)].reduce((a, m) => a + +m[1], 0);
    t.diag(`rows llmgw had not written, written by llmgw-spoold from the spool: ${recovered}`);
    const [use] = sql(db, `SELECT (SELECT coalesce(sum(tokens), 0) FROM budget_use WHERE key_id = '${keyId}') AS budget,
      (SELECT coalesce(sum(input_tokens + output_tokens + cache_creation_input_tokens + cache_read_input_tokens), 0)
       FROM usage WHERE key_id = '${keyId}') AS rows`);
    t.ok(use.rows > 0 && use.budget === use.rows, `the budget counts every row once: ${use.budget} tokens, rows ${use.rows}`);
    t.is(await spoold.stop(), 0, 'llmgw-spoold stops with 0');
  });

  // Rows that wait in memory when llmgw is killed: the spool records have
  // them, and llmgw-spoold writes them.
  await t.test('killed while rows wait for a locked database', async () => {
    // lighttpd takes a backend killed under load out for a while: a live
    // llmgw first, so that what follows is about the lock.
    t.ok(await waitFor(async () => await ask(url, TOKEN, `warm-w-${Date.now()}`, false) !== null, 30000 * SLOW, 200),
      'llmgw answers again after the kills');
    const lock = await holdLock(db);
    const answered = [];
    for (let i = 0; i < 5; i++) {
      const id = await ask(url, TOKEN, `w-${i}`, i % 2 === 1, '[[tokens:2]]');
      if (id) answered.push(id);
    }
    t.is(answered.length, 5, 'the static token is answered while the database is locked');
    const h = await request(url('/healthz'));
    t.ok(h.status === 503 && h.json.usage_backlog >= 1, `/healthz: 503, ${h.json.usage_backlog} rows waiting`);
    for (const pid of srv.pids()) process.kill(pid, 'SIGKILL');
    await lock.release();
    t.is(sql(db, "SELECT count(*) AS n FROM usage WHERE request_id LIKE 'w-%'")[0].n, 0,
      'llmgw died with the rows in memory');
    const spoold = startSpoold({dir, env: spooldEnv, log: 'spoold-wait.log'});
    t.ok(await waitFor(() => drained(spool), 30000 * SLOW, 100), 'the spool drains');
    reconcile(db, 'w-', answered, 'killed while waiting');
    t.like(spoold.log(), /usage: \d+ rows written from the spool, which llmgw had not written/, 'llmgw-spoold wrote them');
    await spoold.stop();
  });

  await t.test('the database locked past the busy timeout', async () => {
    const spoold = startSpoold({dir, env: spooldEnv, log: 'spoold-lock.log'});
    await ask(url, TOKEN, 'warm-up', false);	// a live llmgw again
    const lock = await holdLock(db);
    const lockedAt = Date.now();
    const answered = [];
    let stop = false;
    const client = async (n) => {
      for (let i = 0; !stop; i++) {
        const id = await ask(url, TOKEN, `l-${n}-${i}`, n % 2 === 1, '[[tokens:2]]');
        if (id) answered.push(id);
      }
    };
    const clients = Array.from({length: 4}, (_, n) => client(n));
    await sleep(500);
    let t0 = Date.now();
    const h = await request(url('/healthz'));
    const healthMs = Date.now() - t0;
    t.is(h.status, 503, '/healthz while it is locked: 503');
    t.like(h.json.database, /locked/, `with the reason: ${h.json.database}`);
    t.ok(healthMs < 2000, `at once, not after the 8 s lock or a queue of 5 s busy waits (${healthMs} ms)`);
    t0 = Date.now();
    const keyed = await request(url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${secret}`},
      body: {message: 'keyed while locked'}});
    const keyedMs = Date.now() - t0;
    t.is(keyed.status, 503, 'a keyed request fails closed: 503');
    t.ok(keyedMs < 1000 + 1500, `within database_wait (1 s), not the lock's 8 s (${keyedMs} ms)`);
    await sleep(Math.max(0, 8000 - (Date.now() - lockedAt)));
    const waiting = (await request(url('/healthz'))).json.usage_backlog;
    t.ok(waiting > 0, `rows wait in memory after 8 s: ${waiting}`);
    await lock.release();
    await sleep(300);
    stop = true;
    await Promise.all(clients);
    t.ok(answered.length > 20, `the static token was answered all along: ${answered.length}`);
    t.ok(await waitFor(async () => (await request(url('/healthz'))).status === 200, 10000 * SLOW), 'the lock gone: /healthz 200');
    t.ok(await waitFor(() => drained(spool), 30000 * SLOW, 100), 'the spool drains');
    reconcile(db, 'l-', answered, 'locked');
    t.like(srv.log(), /usage rows written again, after \d+ ms/, 'the log says when rows went in again');
    await spoold.stop();
  });

  // The database on a small file system of its own: made immutable, then
  // filled.  Static-token requests go on, their rows waiting in memory;
  // keyed ones fail closed; when the files are writable again llmgw
  // writes the rows itself, and never dies meanwhile.
  await t.test('the database immutable, then full', async () => {
    const d = workdir('durable-fs');
    const mnt = path.join(d, 'dbfs');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    if (m.status !== 0) return t.skip('a file system of its own', `cannot mount a tmpfs here: ${String(m.stderr).trim()}`);
    t.onCleanup(() => { spawnSync('chattr', ['-R', '-i', mnt]); spawnSync('umount', ['-l', mnt]); });
    const stub = await startStub();
    writeConf(d, {database_wait: '1s'});
    const fsEnv = llmgwEnv(d, stub, {LLMGW_DB: path.join(mnt, 'llmgw.db')});
    const s2 = await startLighttpd({dir: d, env: fsEnv});
    const dbFile = fsEnv.LLMGW_DB;
    const k2 = spawnSync(ADMIN, ['key', 'create', '--name', 'fs', '--budget-tokens', '1000000', '--period', 'day'],
      {env: fsEnv, encoding: 'utf8'}).stdout.trim();
    t.ok(await ask(s2.url, k2, 'f-keyed-before', false), 'a keyed request while all is well');
    const pids = s2.pids();
    const answered = [];

    // Phases: break the files, send traffic, check, mend, check.
    const phase = async (name, breakIt, mendIt) => {
      breakIt();
      for (let i = 0; i < 20; i++) {
        const id = await ask(s2.url, TOKEN, `f-${name}-${i}`, i % 2 === 1, '[[tokens:2]]');
        if (id) answered.push(id);
      }
      t.is(answered.filter(id => id.startsWith(`f-${name}-`)).length, 20, `${name}: the static token is answered`);
      const t0 = Date.now();
      const keyed = await request(s2.url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${k2}`},
        body: {message: 'keyed'}});
      const keyedMs = Date.now() - t0;
      t.is(keyed.status, 503, `${name}: a keyed request, whose budget cannot be held, fails closed`);
      t.ok(keyedMs < 1000 + 1500, `${name}: within database_wait (1 s): ${keyedMs} ms`);
      const h = await request(s2.url('/healthz'));
      t.ok(h.status === 503 && h.json.usage_backlog > 0, `${name}: /healthz 503, ${h.json.usage_backlog} rows waiting: ${h.json.database}`);
      mendIt();
      t.ok(await waitFor(async () => (await request(s2.url('/healthz'))).json.usage_backlog === 0, 10000 * SLOW),
        `${name}: mended, llmgw writes the rows itself`);
      t.is((await request(s2.url('/healthz'))).status, 200, `${name}: /healthz 200`);
    };
    const journal = `${dbFile}-journal`;
    await phase('immutable', () => {
      const r = spawnSync('chattr', ['+i', dbFile, ...(fs.existsSync(journal) ? [journal] : [])]);
      t.is(r.status, 0, `chattr +i on the database and its journal ${String(r.stderr).trim()}`);
    }, () => spawnSync('chattr', ['-i', dbFile, ...(fs.existsSync(journal) ? [journal] : [])]));
    const filler = path.join(mnt, 'filler');
    await phase('full', () => {
      try { fs.writeFileSync(filler, Buffer.alloc(4 * 1024 * 1024)); } catch (e) { /* full, as meant */ }
    }, () => fs.unlinkSync(filler));
    t.is(s2.pids(), pids, 'the same llmgw process throughout: no crash');
    const rows = new Set(sql(dbFile, "SELECT request_id FROM usage WHERE request_id LIKE 'f-%'").map(r => r.request_id));
    t.is(answered.filter(id => !rows.has(id)), [], `every answered request has its row (${answered.length})`);
    t.is((await request(s2.url('/healthz'))).status, 200, 'and all is well again');
    await s2.stop();
  });
});
