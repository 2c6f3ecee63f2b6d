// Crash safety of the spool: during a burst of 1,000 requests the
// consumer is killed with SIGKILL several times and the responder once, at
// random moments; both come back.  At the end every record of every
// completed request is in the SQLite sink exactly once.
'use strict';
const {spawn} = require('child_process');
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {sse, waitFor, sleep} = require('../lib/http');
const {heavy, setup, sql, startSpoold, sanitizerEnv} = require('../lib/servers');

const files = (dir) => { try { return fs.readdirSync(dir).filter(f => !f.startsWith('.')); } catch (e) { return []; } };

t.main(async () => {
  heavy('1000 requests while consumers are killed at set moments');
  const {url, auth, db, dir, env, srv} = await setup('crash', {conf: {spool_rescan: '100ms',
    spool_reclaim_after: '300ms', spool_batch: 20, threads: 8}});
  const spool = path.join(dir, 'spool');
  const spooldEnv = {...env, ...sanitizerEnv(dir)};
  let spoold = startSpoold({dir, env: spooldEnv, log: 'spoold-0.log'});
  let generation = 0, heldAtKill = 0, segsAtKill = 0;

  const total = 1000, concurrency = 16;
  const completed = [], broken = [];
  let next = 0, done = false;
  const client = async () => {
    while (next < total) {
      const id = `crash-${next++}`;
      const r = await sse(url('/chat/stream'), {message: `[[tokens:3]] [[delay:30]] ${id}`},
        {headers: {...auth, 'x-request-id': id}, timeout: 20000});
      if (r.status === 200 && r.done && r.complete && !r.error) completed.push(id);
      else {
        // Back off as a client would: while the responder is down,
        // lighttpd refuses at once, for a second, and a tight loop would
        // spend the whole burst on refusals.
        broken.push(id);
        await sleep(200);
      }
    }
  };
  const killer = async () => {
    let responderKilled = false;
    for (let round = 0; !done; round++) {
      await sleep(150 + Math.floor(Math.random() * 400));
      if (done) break;
      if (!responderKilled && round === 2) {
        const pids = srv.pids();
        if (pids.length) {
          process.kill(pids[0], 'SIGKILL');
          responderKilled = true;
          await sleep(20);	// the kernel closes its files, and so its locks
          segsAtKill = files(path.join(spool, 'tmp')).filter(f => f.endsWith('.seg')).length;
          t.diag(`killed llmgw ${pids[0]}, which left ${segsAtKill} open spool segments`);
        }
        continue;
      }
      if (round < 8) {
        // Lock the database so the consumer is caught holding records in
        // cur/ (waiting on its busy timeout), then kill it there.
        const lock = spawn('sqlite3', [db], {stdio: ['pipe', 'ignore', 'ignore']});
        lock.stdin.write('BEGIN IMMEDIATE;\n');
        await sleep(250);
        const held = files(path.join(spool, 'cur')).length;
        spoold.proc.kill('SIGKILL');
        lock.stdin.end('COMMIT;\n');
        if (held > 0) heldAtKill += held;
        await waitFor(() => spoold.exited, 5000);
        generation++;
        spoold = startSpoold({dir, env: spooldEnv, log: `spoold-${generation}.log`});
      }
    }
    return responderKilled;
  };
  const t0 = Date.now();
  const k = killer();
  await Promise.all(Array.from({length: concurrency}, client));
  done = true;
  const responderKilled = await k;
  t.diag(`burst: ${completed.length} completed, ${broken.length} broken, ${Date.now() - t0} ms`);
  t.ok(responderKilled, 'the responder was killed once during the burst');
  t.ok(generation >= 4, `the consumer was killed ${generation} times`);
  t.ok(heldAtKill > 0, `it was killed holding records in cur/ (${heldAtKill} in all)`);
  t.ok(completed.length >= total * 0.8, `most requests completed (${completed.length} of ${total})`);

  const drained = await waitFor(() => files(path.join(spool, 'new')).length === 0 &&
    files(path.join(spool, 'cur')).length === 0 &&
    !files(path.join(spool, 'tmp')).some(f => f.endsWith('.seg')), 30000, 100);
  t.ok(drained, 'the spool drains: new/ and cur/ empty, no segment in tmp/');
  const rows = sql(db, "SELECT request_id, count(*) AS n FROM request_log WHERE request_id LIKE 'crash-%' GROUP BY request_id");
  const count = new Map(rows.map(r => [r.request_id, r.n]));
  const lost = completed.filter(id => !count.has(id));
  const dup = rows.filter(r => r.n > 1);
  t.diag(`completed ${completed.length}, delivered ${completed.length - lost.length}, lost ${lost.length}, ` +
    `duplicated ${dup.length}, rows ${rows.length}`);
  t.is(lost, [], 'zero completed requests lost');
  t.is(dup, [], 'zero records duplicated');
  t.is(files(path.join(spool, 'failed')), [], 'nothing in failed/');
  // cur/ being empty proves that what killed consumers held was reclaimed.
  const logs = fs.readdirSync(dir).filter(f => /^spoold-\d+\.log$/.test(f))
    .map(f => fs.readFileSync(path.join(dir, f), 'utf8')).join('');
  const reclaimed = [...logs.matchAll(/reclaimed (\d+) records/g)].reduce((a, m) => a + +m[1], 0);
  t.ok(reclaimed > 0, `records reclaimed from killed consumers: ${reclaimed}`);
  // What the killed responder had written into its open segment was
  // acknowledged; the consumer moved it into new/, or "lost" above would
  // say so.  (A count, not a test: a respawned responder's segment may be
  // among those seen.)
  const recovered = [...logs.matchAll(/recovered (\d+) spool segments/g)].reduce((a, m) => a + +m[1], 0);
  t.diag(`segments seen after the responder was killed: ${segsAtKill}, recovered by the consumer: ${recovered}`);
  t.is(files(path.join(spool, 'tmp')).filter(f => f.endsWith('.seg')), [], 'no segment left in tmp/');
  t.is(await spoold.stop(), 0, 'the last consumer stops with 0');
});
