// deploy/nginx/llmgw.conf: nginx in front of llmgw on its own unix socket,
// with fastcgi_keep_conn (connections parked between requests).
'use strict';
const path = require('path');
const t = require('../lib/tap');
const {request} = require('../lib/http');
const {TOKEN, workdir, startStub, startLlmgw, llmgwEnv, writeConf} = require('../lib/servers');
const {startNginx} = require('../lib/webservers');
const {checkDeployment} = require('../lib/matrix');

t.main(async () => {
  const stub = await startStub();
  const dir = workdir('deploy-nginx');
  writeConf(dir, {retry_base: '50ms', listen_mode: '0666', threads: 2});
  const env = llmgwEnv(dir, stub);
  const sock = path.join(dir, 'llmgw.sock');
  const g = await startLlmgw({dir, env, listen: sock});
  const srv = await startNginx({dir, socket: sock});
  if (srv.why) t.skipAll(srv.why);
  await checkDeployment({name: 'nginx', url: srv.url, stub, db: env.LLMGW_DB, spool: env.LLMGW_SPOOL_DIR});
  await t.test('nginx: kept-alive FastCGI connections', async () => {
    const rs = [];
    for (let i = 0; i < 20; i++)
      rs.push((await request(srv.url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${TOKEN}`},
        body: {message: 'again'}})).status);
    t.is(rs.filter(s => s === 200).length, 20, 'twenty requests in a row over reused connections');
    const m = await request(srv.url('/metrics'));
    t.like(m.text, /llmgw_worker_threads\{state="idle"\} \d+/, 'workers are not pinned by idle connections');
  });
  await srv.stop();
  t.is(await g.stop(), 0, 'llmgw stops cleanly with connections parked');
});
