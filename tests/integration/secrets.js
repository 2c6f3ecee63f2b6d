// Secrets are never written anywhere: run traffic that touches every one
// (the bearer token, the upstream API key, a key made with llmgw-admin,
// the webhook's auth header, the metrics token), at log_level debug, with
// failures that get logged, then search everything llmgw, llmgw-spoold
// and llmgw-admin wrote (logs, spool, database, JSON lines, answers).
'use strict';
const {spawnSync} = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const t = require('../lib/tap');
const {request, sse, waitFor} = require('../lib/http');
const {setup, startSpoold, ADMIN, TOKEN, API_KEY, sanitizerEnv} = require('../lib/servers');

const HOOK_SECRET = 'hook-secret-4e1f9a77';
const METRICS_SECRET = 'metrics-secret-0b9d52c3';

// Every file under "dir", read as bytes.
function allFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, {withFileTypes: true})) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...allFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

t.main(async () => {
  // A webhook that refuses at first, so that llmgw-spoold logs failures.
  let posts = 0;
  const hook = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { posts++; res.writeHead(posts <= 2 ? 401 : 200); res.end(posts <= 2 ? 'no' : '{}'); });
  });
  await new Promise(r => hook.listen(0, '127.0.0.1', r));
  t.onCleanup(() => hook.close());

  const {dir, url, auth, env, db} = await setup('secrets', {conf: {
    log_level: 'debug', log_bodies: 'yes', metrics_token: METRICS_SECRET,
    sinks: 'sqlite jsonl webhook', jsonl_path: '-', spool_retry_base: '100ms', spool_retry_max: '200ms',
    webhook_url: `http://127.0.0.1:${hook.address().port}/hook`,
    webhook_header: `"Authorization: Bearer ${HOOK_SECRET}"`}});
  const said = [];		// every answer and every command's output
  const keep = (r) => { said.push(JSON.stringify(r.headers || {}) + (r.raw || r.text || '')); return r; };
  const admin = (...args) => {
    const r = spawnSync(ADMIN, args, {env: {...env, ...sanitizerEnv(dir)}, encoding: 'utf8'});
    return r;
  };

  const made = admin('key', 'create', '--name', 'secretive');
  const KEY = made.stdout.trim();
  t.like(KEY, /^llmgw_/, 'a key made (its one showing, on stdout, is the only place it may be)');
  said.push(made.stderr);

  await t.test('traffic that touches every secret', async () => {
    const chat = (h, message) => request(url('/chat'), {method: 'POST', headers: h, body: {message}}).then(keep);
    await chat(auth, 'hello [[tokens:2]]');
    await chat({authorization: `Bearer ${TOKEN}x`}, 'near miss');
    await chat({authorization: `Bearer ${KEY.slice(0, -1)}`}, 'near miss key');
    await chat({authorization: `Bearer ${KEY}`}, 'with a key [[tokens:2]]');
    await chat(auth, '[[status:401]] the upstream refuses our key');
    await chat(auth, '[[status:500]] [[error-message:boom]]');
    keep(await sse(url('/chat/stream'), {message: '[[tokens:3]] [[cut:2]]'}, {headers: auth}));
    keep(await request(url('/v1/messages'), {method: 'POST', headers: {'x-api-key': KEY, 'anthropic-version': '2023-06-01'},
      body: {model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{role: 'user', content: 'hi'}]}}));
    keep(await request(url('/v1/messages'), {method: 'POST', headers: {'x-api-key': `${KEY}zz`},
      body: {model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{role: 'user', content: 'hi'}]}}));
    keep(await request(url('/metrics'), {headers: {authorization: `Bearer ${METRICS_SECRET}`}}));
    keep(await request(url('/metrics'), {headers: {authorization: 'Bearer wrong'}}));
    keep(await request(url('/healthz')));
    keep(await request(url('/openapi.json')));
    for (const cmd of [['key', 'list'], ['key', 'show', 'secretive'], ['usage', 'report'], ['spool', 'status'],
                       ['key', 'list', '--format', 'json'], ['db', 'check']]) {
      const r = admin(...cmd);
      said.push(r.stdout + r.stderr);
    }
    const d = startSpoold({dir, env: {...env, ...sanitizerEnv(dir)}, log: 'spoold.log'});
    const delivered = await waitFor(() => posts >= 3, 15000);
    t.ok(delivered, `the webhook refused twice, then took the records (${posts} POSTs)`);
    await d.stop();
  });

  await t.test('no secret anywhere', async () => {
    const secrets = {'the bearer token': TOKEN, 'the upstream API key': API_KEY, 'an llmgw key': KEY,
      'the key without its prefix': KEY.slice(6), 'the webhook header': HOOK_SECRET, 'the metrics token': METRICS_SECRET};
    const files = allFiles(dir).filter(f => !/\.conf$/.test(f));	// the configs hold them, as they must
    t.ok(files.some(f => f.endsWith('llmgw.db')) && files.some(f => /spoold\.log$/.test(f)) &&
      files.some(f => /stderr\.log$/.test(f)), `searched ${files.length} files: logs, spool, database`);
    const dump = spawnSync('sqlite3', [db, '.dump'], {encoding: 'utf8'}).stdout;
    const haystacks = [...files.map(f => [path.relative(dir, f), fs.readFileSync(f).toString('latin1')]),
      ['the database dump', dump], ['answers and command output', said.join('\n')]];
    for (const [what, secret] of Object.entries(secrets)) {
      const where = haystacks.filter(([, text]) => text.includes(secret)).map(([name]) => name);
      t.is(where, [], `${what} is nowhere`);
    }
    t.like(dump, /INSERT INTO keys VALUES\('k[0-9a-f]{12}','secretive','[0-9a-f]{64}'/, 'the key table holds a hash');
    const log = fs.readFileSync(path.join(dir, 'lighttpd', 'stderr.log'), 'utf8');
    t.like(log, /HTTP 401 authentication_error.*answered 502/, 'llmgw logged the upstream refusing our key');
    t.like(fs.readFileSync(path.join(dir, 'spoold.log'), 'utf8'), /401/, 'llmgw-spoold logged the refusals');
  });
});
