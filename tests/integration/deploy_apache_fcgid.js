// deploy/apache/llmgw-fcgid.conf: Apache 2.4 with mod_fcgid starting llmgw.
'use strict';
const t = require('../lib/tap');
const {request, waitFor} = require('../lib/http');
const {TOKEN, workdir, startStub, llmgwEnv, writeConf, llmgwCopy, llmgwPids, spoolRecords, sql} = require('../lib/servers');
const {startApache, fcgidSnippet: snippet} = require('../lib/webservers');
const {checkDeployment} = require('../lib/matrix');

t.main(async () => {
  const stub = await startStub();
  const dir = workdir('deploy-apache-fcgid');
  writeConf(dir, {retry_base: '50ms'});
  const env = llmgwEnv(dir, stub);
  const bin = llmgwCopy(dir);
  const srv = await startApache({dir, snippet: snippet(bin, env), modules: ['alias', 'fcgid'], spawnsLlmgw: true});
  if (srv.why) t.skipAll(srv.why);
  // mod_fcgid starts processes on demand, about one wave a second: the
  // first burst warms them up.
  await checkDeployment({name: 'apache mod_fcgid', url: srv.url, stub, db: env.LLMGW_DB,
    spool: env.LLMGW_SPOOL_DIR, warmup: 52, backends: () => llmgwPids(dir).length});
  await t.test('apache mod_fcgid: one worker thread per process', async () => {
    t.like(srv.log(), /serving FastCGI with 1 to 1 threads \(mod_fcgid/, 'llmgw saw mod_fcgid and runs one worker');
  });
  await srv.stop();

  await t.test('apache mod_fcgid: recycling processes loses nothing', async () => {
    const d2 = workdir('deploy-apache-recycle');
    writeConf(d2, {retry_base: '50ms'});
    const env2 = llmgwEnv(d2, stub);
    const s2 = await startApache({dir: d2, snippet: snippet(llmgwCopy(d2), env2)
      .replace('FcgidMaxRequestsPerProcess 10000', 'FcgidMaxRequestsPerProcess 3'),
    modules: ['alias', 'fcgid'], spawnsLlmgw: true});
    const ids = [];
    for (let i = 0; i < 12; i++) {
      const r = await request(s2.url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${TOKEN}`},
        body: {message: `recycle ${i}`}});
      if (r.status === 200) ids.push(r.headers['x-request-id']);
    }
    t.is(ids.length, 12, 'twelve requests, three per process');
    await s2.stop();
    const rows = await waitFor(() => {
      try { return sql(env2.LLMGW_DB, 'SELECT request_id FROM usage').length === 12; } catch (e) { return false; }
    }, 10000);
    t.ok(rows, 'twelve usage rows');
    t.is(spoolRecords(env2.LLMGW_SPOOL_DIR).length, 12, 'twelve spool records');
    t.ok((s2.log().match(/llmgw\[\d+\]: info: stopped/g) || []).length >= 3,
      'processes were recycled (SIGTERM) and stopped cleanly');
  });
});
