// Background logging: the responder's spool records and llmgw-spoold
// delivering them to SQLite, a webhook and JSON lines.
'use strict';
const {spawn, spawnSync, execFileSync} = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const t = require('../lib/tap');
const {SLOW, request, sse, waitFor, sleep} = require('../lib/http');
const {setup, sql, spoolRecords, startSpoold, startLighttpd, llmgwEnv, writeConf, SPOOLD, ADMIN, sanitizerEnv} = require('../lib/servers');

const files = (dir) => { try { return fs.readdirSync(dir).filter(f => !f.startsWith('.')); } catch (e) { return []; } };

// A webhook receiver that answers 500 to the first "failFirst" POSTs.
function receiver(failFirst) {
  return new Promise(resolve => {
    const got = [];
    let n = 0;
    const srv = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', c => chunks.push(c));
      req.on('end', () => {
        n++;
        const body = Buffer.concat(chunks).toString();
        if (n <= failFirst) { res.writeHead(500); return res.end('not yet'); }
        got.push({headers: req.headers, body: JSON.parse(body)});
        res.writeHead(207, {'content-type': 'application/json'});
        res.end('{"successes":[],"errors":[]}');
      });
    });
    srv.listen(0, '127.0.0.1', () => resolve({url: `http://127.0.0.1:${srv.address().port}/api/public/ingestion`,
      got, posts: () => n, close: () => srv.close()}));
    t.onCleanup(() => srv.close());
  });
}

t.main(async () => {
  const {url, auth, db, dir, env, stub} = await setup('spool', {conf: {spool_rescan: '200ms',
    spool_retry_base: '100ms', spool_retry_max: '400ms', spool_attempts: 3}});
  const spool = path.join(dir, 'spool');
  const chat = (message, headers = {}) => request(url('/chat'), {method: 'POST', headers: {...auth, ...headers}, body: {message}});
  const spooldEnv = {...env, ...sanitizerEnv(dir)};

  await t.test('every chat request leaves one record in new/', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await chat(`hello ${i}`)).headers['x-request-id']);
    const s = await sse(url('/chat/stream'), {message: '[[tokens:3]]'}, {headers: auth});
    ids.push(s.headers['x-request-id']);
    ids.push((await request(url('/chat'), {method: 'POST', body: {message: 'x'}})).headers['x-request-id']);
    ids.push((await chat('')).headers['x-request-id']);
    await request(url('/healthz'));
    // A client can have its answer a moment before the record is safe, and
    // records that wait on one write share the next file.
    await waitFor(() => spoolRecords(spool).length >= 6, 5000 * SLOW);
    await sleep(200);
    const recs = spoolRecords(spool);
    t.is(recs.length, 6, 'six records for six chat requests (none for /healthz)');
    t.is(files(path.join(spool, 'tmp')).length, 0, 'nothing half-written left in tmp/');
    t.is(recs.map(r => r.request_id).sort(), [...ids].sort(), 'one per request id');
    const stream = recs.find(r => r.request_id === ids[3]);
    t.is([stream.route, stream.status, stream.output_tokens, stream.key, stream.upstream],
      ['/chat/stream', 200, 3, 'static', true], 'a stream: route, status, tokens, key');
    t.ok(stream.ttft_ms >= 0 && stream.total_ms >= stream.ttft_ms && stream.end_ms >= stream.ts_ms, 'times');
    t.ok(!('prompt' in stream) && !('reply' in stream), 'no message text unless log_bodies = yes');
    const denied = recs.find(r => r.request_id === ids[4]);
    t.is([denied.status, denied.key, denied.upstream], [401, null, false], 'a refused request: 401, no key');
    const invalid = recs.find(r => r.request_id === ids[5]);
    t.is([invalid.status, invalid.upstream], [422, false], 'an invalid one: 422');
    t.ok(recs.every(r => /^[0-9a-f]{32}$/.test(r.id)) && new Set(recs.map(r => r.id)).size === 6, 'unique record ids');
  });

  await t.test('llmgw-spoold --once drains into SQLite', async () => {
    const r = spawnSync(SPOOLD, ['--once'], {env: spooldEnv, encoding: 'utf8'});
    t.is(r.status, 0, `exit status 0 ${r.stderr}`);
    t.is(files(path.join(spool, 'new')).length + files(path.join(spool, 'cur')).length, 0, 'new/ and cur/ empty');
    const rows = sql(db, 'SELECT request_id, status, record FROM request_log');
    t.is(rows.length, 6, 'six rows in request_log');
    t.ok(rows.every(x => JSON.parse(x.record).request_id === x.request_id), 'each with its whole record');
    const again = spawnSync(SPOOLD, ['--once'], {env: spooldEnv, encoding: 'utf8'});
    t.is(again.status, 0, 'a second run with nothing to do: exit 0');
  });

  await t.test('the daemon is woken by a record, not by its rescan', async () => {
    // Its own configuration, with a rescan a minute apart: a record
    // delivered in seconds was noticed when it arrived (inotify).
    const latDir = path.join(dir, 'latency');
    fs.mkdirSync(latDir, {recursive: true});
    const latConf = writeConf(latDir, {spool_rescan: '60s'});
    const d = startSpoold({dir, env: {...spooldEnv, LLMGW_CONFIG: latConf}});
    await sleep(300);
    const lat = [];
    for (let i = 0; i < 5; i++) {
      const id = `lat-${i}-${Date.now()}`;
      await chat('quick', {'x-request-id': id});
      const row = await waitFor(() => sql(db, `SELECT end_ts, delivered_ts FROM request_log WHERE request_id = '${id}'`)[0], 5000, 5);
      if (row) lat.push(row.delivered_ts - row.end_ts);
      await sleep(100);
    }
    t.is(lat.length, 5, 'all five delivered');
    const logged = spawnSync(ADMIN, ['usage', '--log', '--by', 'route', '--format', 'json'], {env: spooldEnv, encoding: 'utf8'});
    const fromLog = JSON.parse(logged.stdout || '[]');
    const inLog = sql(db, "SELECT count(*) AS n FROM request_log WHERE upstream = 1 AND route = '/chat'")[0].n;
    t.is(fromLog.filter(x => x.ROUTE === '/chat').map(x => x.REQUESTS), [inLog],
      `llmgw-admin usage --log reads the request log (${inLog} /chat requests there)`);
    t.ok(lat.every(ms => ms < 6000), `written to delivered: ${lat.join(', ')} ms, where the rescan comes every 60 s`);
    // Malformed records go to failed/ and the consumer carries on.
    fs.writeFileSync(path.join(spool, 'tmp', 'zzbad'), '{"id": "zzbad", "route": ');
    fs.renameSync(path.join(spool, 'tmp', 'zzbad'), path.join(spool, 'new', 'zzbad'));
    fs.writeFileSync(path.join(spool, 'tmp', 'zzbad2'), '{"id":"zzbad2","request_id":"x","route":"/chat","ts_ms":1,"status":"200"}');
    fs.renameSync(path.join(spool, 'tmp', 'zzbad2'), path.join(spool, 'new', 'zzbad2'));
    const moved = await waitFor(() => files(path.join(spool, 'failed')).length === 4, 5000);
    t.ok(moved, 'malformed records are moved to failed/');
    t.like(fs.readFileSync(path.join(spool, 'failed', 'zzbad.reason'), 'utf8'), /not valid JSON/, 'with the reason');
    t.like(fs.readFileSync(path.join(spool, 'failed', 'zzbad2.reason'), 'utf8'), /"status" is not a whole number/,
      'naming the bad field');
    const r = await chat('after the bad ones', {'x-request-id': 'after-bad'});
    t.ok(await waitFor(() => sql(db, "SELECT 1 FROM request_log WHERE request_id = 'after-bad'").length === 1, 5000),
      'and goes on delivering');
    t.is(r.status, 200, 'the responder never noticed');
    t.is(await d.stop('SIGTERM'), 0, 'SIGTERM: exit status 0');
  });

  await t.test('llmgw-admin spool status, retry and purge', async () => {
    let r = spawnSync(ADMIN, ['spool', 'status'], {env, encoding: 'utf8'});
    t.is(r.status, 0, 'status: exit 0');
    t.like(r.stdout, /failed\s+2\s+\d+[smhd]/, 'counts failed/ and its age');
    t.like(r.stdout, /consumer: pid \d+ \(not running\)/, 'what the consumer last said');
    r = spawnSync(ADMIN, ['spool', 'purge'], {env, encoding: 'utf8'});
    t.ok(r.status === 2 && /--older-than DURATION is needed/.test(r.stderr), 'purge without --older-than: usage error');
    r = spawnSync(ADMIN, ['spool', 'purge', '--older-than', 'soon'], {env, encoding: 'utf8'});
    t.ok(r.status === 2 && /not a duration/.test(r.stderr), 'a bad duration: usage error');
    r = spawnSync(ADMIN, ['spool', 'purge', '--older-than', '1h'], {env, encoding: 'utf8'});
    t.ok(r.status === 0 && /0 failed records deleted/.test(r.stdout), 'purge keeps recent failures');
    r = spawnSync(ADMIN, ['spool', 'retry'], {env, encoding: 'utf8'});
    t.ok(r.status === 0 && /2 records moved/.test(r.stdout), 'retry moves them back to new/');
    t.is(files(path.join(spool, 'new')).sort(), ['zzbad', 'zzbad2'], 'in new/, attempts reset');
    spawnSync(SPOOLD, ['--once'], {env: spooldEnv});
    r = spawnSync(ADMIN, ['spool', 'purge', '--older-than', '0s'], {env, encoding: 'utf8'});
    t.ok(r.status === 0 && /2 failed records deleted/.test(r.stdout), 'purge --older-than 0s deletes them');
    t.is(files(path.join(spool, 'failed')), [], 'failed/ is empty, reasons too');
    r = spawnSync(ADMIN, ['spool', 'status', 'extra'], {env, encoding: 'utf8'});
    t.ok(r.status === 2 && /usage: llmgw-admin spool status/.test(r.stderr), 'stray argument: usage error');
    r = spawnSync(ADMIN, ['spool', 'purge', '--help'], {env, encoding: 'utf8'});
    t.ok(r.status === 0 && /DURATION is like/.test(r.stdout), '--help on a subcommand');
  });

  await t.test('webhook: fails twice, then accepts', async () => {
    const rcv = await receiver(2);
    const conf = writeConf(dir, {sinks: 'webhook', webhook_url: rcv.url, webhook_header: '"Authorization: Bearer hook-secret-99"',
      spool_retry_base: '100ms', spool_retry_max: '200ms', spool_attempts: 5, spool_rescan: '200ms', retry_base: '50ms'});
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await chat(`hook ${i}`)).headers['x-request-id']);
    // A record lands just after its reply: all three, before the consumer looks.
    await waitFor(() => spoolRecords(spool).length >= 3, 5000 * SLOW);
    const d = startSpoold({dir, env: {...spooldEnv, LLMGW_CONFIG: conf}, log: 'spoold-hook.log'});
    const ok = await waitFor(() => rcv.got.length > 0 && files(path.join(spool, 'new')).length === 0 &&
      files(path.join(spool, 'cur')).length === 0, 10000);
    t.ok(ok, 'delivered after the receiver recovered');
    t.is(rcv.posts(), 3, 'two failed POSTs, then one that took the batch');
    const batch = rcv.got[0].body.batch;
    t.is(batch.map(b => b.body.request_id).sort(), [...ids].sort(), 'the batch holds every record');
    t.ok(batch.every(b => b.id === b.body.id && b.type === 'llmgw-request' && /Z$/.test(b.timestamp)),
      'Langfuse-style: id, type, timestamp, body');
    t.is(rcv.got[0].headers.authorization, 'Bearer hook-secret-99', 'the configured auth header');
    t.ok(!d.log().includes('hook-secret-99'), 'which is never logged');
    t.like(d.log(), /HTTP 500/, 'the failures are logged');
    await d.stop();
  });

  await t.test('a sink that never accepts: failed/ with the reason', async () => {
    const rcv = await receiver(1000);
    const conf = writeConf(dir, {sinks: 'sqlite, webhook', webhook_url: rcv.url, spool_retry_base: '50ms',
      spool_retry_max: '100ms', spool_attempts: 3, retry_base: '50ms'});
    const id = (await chat('never')).headers['x-request-id'];
    const d = startSpoold({dir, env: {...spooldEnv, LLMGW_CONFIG: conf}, log: 'spoold-never.log'});
    const failed = await waitFor(() => files(path.join(spool, 'failed')).length === 2, 10000);
    t.ok(failed, 'after spool_attempts the record is in failed/');
    const reason = fs.readFileSync(path.join(spool, 'failed', files(path.join(spool, 'failed')).find(f => f.endsWith('.reason'))), 'utf8');
    t.like(reason, /after 3 attempts: webhook sink: POST .*: HTTP 500/, `the reason: ${reason.trim()}`);
    t.is(rcv.posts(), 3, 'three attempts');
    t.is(sql(db, `SELECT count(*) AS n FROM request_log WHERE request_id = '${id}'`)[0].n, 1,
      'the SQLite sink got it once, and was not sent it again');
    await d.stop();
  });

  await t.test('jsonl, several consumers, no record twice', async () => {
    const out = path.join(dir, 'records.jsonl');
    const conf = writeConf(dir, {sinks: 'jsonl', jsonl_path: out, spool_rescan: '100ms', spool_batch: 5, retry_base: '50ms'});
    const ids = [];
    for (let i = 0; i < 60; i++) ids.push((await chat(`many ${i}`)).headers['x-request-id']);
    const ds = [0, 1, 2].map(i => startSpoold({dir, env: {...spooldEnv, LLMGW_CONFIG: conf}, log: `spoold-${i}.log`}));
    const all = await waitFor(() => fs.existsSync(out) && fs.readFileSync(out, 'utf8').trim().split('\n').length >= 60, 10000);
    t.ok(all, 'three consumers drained the spool');
    await sleep(300);
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n').map(l => JSON.parse(l));
    t.is(lines.length, 60, 'exactly 60 lines for 60 records');
    t.is(new Set(lines.map(l => l.request_id)).size, 60, 'each record once');
    // SIGHUP: reopen the file (log rotation).
    fs.renameSync(out, out + '.1');
    ds[0].proc.kill('SIGHUP');
    ds[1].proc.kill('SIGHUP');
    ds[2].proc.kill('SIGHUP');
    await sleep(300);
    await chat('after rotation');
    t.ok(await waitFor(() => fs.existsSync(out) && fs.readFileSync(out, 'utf8').includes('"route":"/chat"'), 5000),
      'after SIGHUP, records go to the new file');
    t.like(ds[0].log(), /configuration reloaded, files reopened/, 'and it says so');
    fs.writeFileSync(conf, 'sinks = nonsense\n');
    ds[0].proc.kill('SIGHUP');
    await sleep(300);
    t.like(ds[0].log(), /reload refused, keeping the old configuration: .*llmgw.conf:1: sinks: unknown sink/,
      'a bad configuration on SIGHUP is refused with file:line');
    t.ok(!ds[0].exited, 'and it keeps running');
    for (const d of ds) t.is(await d.stop(), 0, 'SIGTERM: exit 0');
  });

  await t.test('log_bodies = yes puts the texts in the record', async () => {
    const d2 = path.join(dir, 'bodies');
    fs.mkdirSync(d2);
    writeConf(d2, {log_bodies: 'yes'});
    const srv = await startLighttpd({dir: d2, env: llmgwEnv(d2, stub)});
    const s = await sse(srv.url('/chat/stream'), {message: 'say it [[multiline]] [[tokens:2]]'}, {headers: auth});
    const c = await request(srv.url('/chat'), {method: 'POST', headers: auth, body: {message: 'ünï [[tokens:2]]'}});
    // A /chat client can read its Content-Length a moment before the
    // record is safe; the request ends only after it.
    await waitFor(() => spoolRecords(path.join(d2, 'spool')).length === 2, 5000 * SLOW);
    const recs = spoolRecords(path.join(d2, 'spool'));
    const rs = recs.find(r => r.request_id === s.headers['x-request-id']);
    const rc = recs.find(r => r.request_id === c.headers['x-request-id']);
    t.is([rs && rs.prompt, rs && rs.reply], ['say it [[multiline]] [[tokens:2]]', s.text], 'a stream: prompt and reply');
    t.is([rc && rc.prompt, rc && rc.reply], ['ünï [[tokens:2]]', c.json.reply], '/chat: prompt and reply');
    await srv.stop();
  });

  await t.test('log_content = metadata: the texts\' sizes, not the texts', async () => {
    const d3 = path.join(dir, 'metadata');
    fs.mkdirSync(d3);
    writeConf(d3, {log_content: 'metadata'});
    const srv = await startLighttpd({dir: d3, env: llmgwEnv(d3, stub)});
    const s = await sse(srv.url('/chat/stream'), {message: 'size me [[tokens:3]]'}, {headers: auth});
    await waitFor(() => spoolRecords(path.join(d3, 'spool')).length === 1, 5000 * SLOW);
    const [r] = spoolRecords(path.join(d3, 'spool'));
    t.is([r && r.prompt_bytes, r && r.reply_bytes], [20, Buffer.byteLength(s.text)], 'prompt and reply sizes in bytes');
    t.ok(r && !('prompt' in r) && !('reply' in r), 'and no text');
    await srv.stop();
  });

  await t.test('spoold_log = syslog: its lines go to syslog, not stderr', async () => {
    if (fs.existsSync('/dev/log')) return t.skip('syslog test', 'a syslog daemon owns /dev/log here');
    // A stand-in syslog daemon: /dev/log, each datagram printed as a line.
    const py = spawn('python3', ['-c', `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('/dev/log')
try:
    print('ready', flush=True)
    s.settimeout(${10 * SLOW})
    while True:
        m = s.recv(65536).decode('utf-8', 'replace')
        print(m.replace('\\n', ' '), flush=True)
        if 'zzsyslog' in m:
            break
except socket.timeout:
    pass
finally:
    os.unlink('/dev/log')
`], {stdio: ['ignore', 'pipe', 'inherit']});
    let heard = '';
    py.stdout.on('data', d => { heard += d; });
    const done = new Promise(r => py.on('exit', r));
    if (!await waitFor(() => heard.startsWith('ready') || py.exitCode !== null, 5000))
      return t.skip('syslog test', 'python3 could not stand in for syslog');
    const d = path.join(dir, 'syslog');
    fs.mkdirSync(path.join(d, 'spool', 'new'), {recursive: true});
    writeConf(d, {spoold_log: 'syslog'});
    fs.writeFileSync(path.join(d, 'spool', 'new', 'zzsyslog'), 'not json');
    const r = spawnSync(SPOOLD, ['--once'], {env: llmgwEnv(d, stub), encoding: 'utf8'});
    await done;
    t.is(r.status, 0, '--once: exit status 0');
    t.like(heard, /llmgw-spoold\[\d+\]: .*record zzsyslog is malformed/, `syslog got the line: ${heard.trim().split('\n').pop()}`);
    t.ok(!r.stderr.includes('zzsyslog'), 'and stderr did not');
  });

  await t.test('records written together share a file; the consumer takes it apart only when it must', async () => {
    const d4 = path.join(dir, 'group');
    fs.mkdirSync(d4);
    const out = path.join(d4, 'records.jsonl');
    writeConf(d4, {sinks: 'jsonl', jsonl_path: out, spool_attempts: 2});
    const srv = await startLighttpd({dir: d4, env: llmgwEnv(d4, stub)});
    const rs = await Promise.all(Array.from({length: 40}, (_, i) =>
      request(srv.url('/chat'), {method: 'POST', headers: auth, body: {message: `together ${i}`}})));
    t.ok(rs.every(r => r.status === 200), '40 requests at once: all 200');
    const nd = path.join(d4, 'spool', 'new');
    // A /chat client may read its body a moment before the record is safe.
    await waitFor(() => spoolRecords(path.join(d4, 'spool')).length >= 40, 5000 * SLOW);
    const ids = spoolRecords(path.join(d4, 'spool')).map(r => r.request_id);
    t.is(ids.sort(), rs.map(r => r.headers['x-request-id']).sort(), 'each record once, a JSON object per line');
    t.diag(`40 records in ${files(nd).length} files`);
    const e4 = {...llmgwEnv(d4, stub), ...sanitizerEnv(d4)};
    let r = spawnSync(SPOOLD, ['--once'], {env: e4, encoding: 'utf8'});
    t.is(r.status, 0, '--once delivers them: exit 0');
    t.is(fs.readFileSync(out, 'utf8').trim().split('\n').map(l => JSON.parse(l).request_id).sort(), ids,
      'the sink got each record once');
    t.is(files(nd).length + files(path.join(d4, 'spool', 'cur')).length, 0, 'new/ and cur/ empty');

    // A file of three with a damaged line: the two good ones are
    // delivered, the bad one goes to failed/ alone, with the reason.
    const rec = (id) => JSON.stringify({id, request_id: id, route: '/chat', ts_ms: Date.now(), status: 200});
    fs.writeFileSync(path.join(d4, 'spool', 'tmp', 'g1'), `${rec('g1a')}\n{"id": "g1b", "rou\n${rec('g1c')}\n`);
    fs.renameSync(path.join(d4, 'spool', 'tmp', 'g1'), path.join(nd, 'g1'));
    r = spawnSync(SPOOLD, ['--once'], {env: e4, encoding: 'utf8'});
    t.is(r.status, 0, 'a file with a damaged line: exit 0');
    t.like(fs.readFileSync(out, 'utf8'), /"g1a".*\n.*"g1c"/, 'its good records delivered');
    t.is(files(path.join(d4, 'spool', 'failed')), ['g1.1', 'g1.1.reason'], 'the damaged one alone in failed/');
    t.like(fs.readFileSync(path.join(d4, 'spool', 'failed', 'g1.1.reason'), 'utf8'), /malformed: not valid JSON/,
      'with the reason');
    t.is(files(nd), [], 'and the file is gone');

    // A file of more records than one delivery takes (1,024): the rest
    // go in the next round, not counted as failed attempts.
    const big = Array.from({length: 1500}, (_, i) => rec(`big${i}`)).join('\n') + '\n';
    fs.writeFileSync(path.join(d4, 'spool', 'tmp', 'g3'), big);
    fs.renameSync(path.join(d4, 'spool', 'tmp', 'g3'), path.join(nd, 'g3'));
    r = spawnSync(SPOOLD, ['--once'], {env: e4, encoding: 'utf8'});
    t.is(r.status, 0, 'a file of 1,500 records: exit 0');
    t.is(fs.readFileSync(out, 'utf8').split('\n').filter(l => l.includes('"big')).length, 1500,
      'all delivered, in two rounds');
    t.is(files(nd), [], 'nothing left, nothing taken apart');

    // A sink that fails: under --once the file goes back whole, one
    // attempt counted; when attempts run out, each record is set aside.
    writeConf(d4, {sinks: 'webhook', webhook_url: 'http://127.0.0.1:9/down', spool_attempts: 2});
    fs.writeFileSync(path.join(d4, 'spool', 'tmp', 'g2'), `${rec('g2a')}\n${rec('g2b')}\n`);
    fs.renameSync(path.join(d4, 'spool', 'tmp', 'g2'), path.join(nd, 'g2'));
    r = spawnSync(SPOOLD, ['--once'], {env: e4, encoding: 'utf8'});
    t.is(r.status, 1, 'a failing sink: exit 1');
    t.is(files(nd), ['g2,a1'], 'the file back in new/ whole, one attempt counted');
    r = spawnSync(SPOOLD, ['--once'], {env: e4, encoding: 'utf8'});
    t.is(files(path.join(d4, 'spool', 'failed')).filter(f => f.startsWith('g2')).sort(),
      ['g2.0', 'g2.0.reason', 'g2.1', 'g2.1.reason'], 'out of attempts: each record in failed/ with its reason');
    r = spawnSync(ADMIN, ['spool', 'retry'], {env: e4, encoding: 'utf8'});
    t.ok(r.status === 0 && files(nd).includes('g2.0'), 'and retry brings them back one by one');
    await srv.stop();
  });

  await t.test('a full disk: records wait in memory, 503 only at the bound, none lost', async () => {
    const mnt = path.join(dir, 'tiny');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=128k', 'tmpfs', mnt]);
    if (m.status !== 0) return t.skip('full-disk test', `cannot mount a tmpfs here: ${String(m.stderr).trim()}`);
    t.onCleanup(() => spawnSync('umount', ['-l', mnt]));
    const d3 = path.join(dir, 'full');
    fs.mkdirSync(d3);
    writeConf(d3, {backlog_max: 3});
    const spool = path.join(mnt, 'spool');
    const srv = await startLighttpd({dir: d3, env: llmgwEnv(d3, stub, {LLMGW_SPOOL_DIR: spool})});
    const chat = (message) => request(srv.url('/chat'), {method: 'POST', headers: auth, body: {message}});
    const first = await chat('before');
    t.is(first.status, 200, 'a request while there is room');
    // Its segment moves into new/ first: the next record needs a new file.
    // (A client may have its body a moment before the record is written.)
    t.ok(await waitFor(() => spoolRecords(spool).length === 1, 5000 * SLOW), 'its record in new/');
    try { fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(512 * 1024)); } catch (e) { /* full, as meant */ }
    const ids = [first.headers['x-request-id']];
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const r = await chat(`disk full ${i}`);
      statuses.push(r.status);
      ids.push(r.headers['x-request-id']);
      // The client has its body a moment before the record is written.
      await waitFor(async () => (await request(srv.url('/healthz'))).json.spool_backlog === i + 1, 5000 * SLOW);
    }
    t.is(statuses, [200, 200, 200], 'requests on a full disk succeed while fewer than backlog_max records wait');
    const h = await request(srv.url('/healthz'));
    t.is([h.status, h.json.spool_backlog, h.json.refusing], [503, 3, true], '/healthz: 503, three waiting, refusing');
    t.like(h.json.spool_last_error, /No space left on device/, 'with the reason');
    const refused = await chat('past the bound');
    ids.push(refused.headers['x-request-id']);
    t.is(refused.status, 503, 'at the bound: 503');
    t.like(refused.json.detail, /cannot record requests now: 3 records wait for the spool/, `in the route's shape: ${refused.json.detail}`);
    t.ok(refused.headers['retry-after'], 'with Retry-After');
    t.ok(!/; record: \{/.test(srv.log()), 'no record went to the log instead');
    fs.unlinkSync(path.join(mnt, 'filler'));
    t.ok(await waitFor(async () => (await request(srv.url('/healthz'))).status === 200, 10000 * SLOW), 'room again: /healthz 200');
    t.is((await chat('after')).status, 200, 'and requests succeed');
    t.ok(await waitFor(() => spoolRecords(spool).length === 6, 5000 * SLOW), 'six records in new/');
    t.is(spoolRecords(spool).map(r => r.request_id).filter(id => ids.includes(id)).sort(), [...ids].sort(),
      'each request of the full disk once, the refused one too: none lost');
    await srv.stop();
  });
});
