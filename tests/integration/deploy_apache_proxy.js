// deploy/apache/llmgw-proxy-fcgi.conf: Apache 2.4 with mod_proxy_fcgi in
// front of llmgw on its own unix socket.
'use strict';
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {SRC, TOKEN, workdir, startStub, startLlmgw, llmgwEnv, writeConf} = require('../lib/servers');
const {request} = require('../lib/http');
const {startApache} = require('../lib/webservers');
const {checkDeployment} = require('../lib/matrix');

t.main(async () => {
  const stub = await startStub();
  const dir = workdir('deploy-apache-proxy');
  writeConf(dir, {retry_base: '50ms', listen_mode: '0666'});
  const env = llmgwEnv(dir, stub);
  const sock = path.join(dir, 'llmgw.sock');
  const snippet = fs.readFileSync(path.join(SRC, 'deploy/apache/llmgw-proxy-fcgi.conf'), 'utf8')
    .split('/run/llmgw/llmgw.sock').join(sock);
  await startLlmgw({dir, env, listen: sock});
  const srv = await startApache({dir, snippet, modules: ['proxy', 'proxy_fcgi', 'env']});
  if (srv.why) t.skipAll(srv.why);
  await checkDeployment({name: 'apache mod_proxy_fcgi', url: srv.url, stub, db: env.LLMGW_DB,
    spool: env.LLMGW_SPOOL_DIR});
  await t.test('apache mod_proxy_fcgi: reused connections, GET and POST in turn', async () => {
    // A GET's empty body comes after its parameters; answering and closing
    // before taking it made Apache fail its next write (503).
    const got = [];
    for (let i = 0; i < 30; i++) {
      got.push((await request(srv.url('/docs'))).status);
      got.push((await request(srv.url('/chat'), {method: 'POST', headers: {authorization: `Bearer ${TOKEN}`},
        body: {message: 'x'}})).status);
      got.push((await request(srv.url('/nowhere'), {method: 'POST', body: {message: 'unread body'}})).status);
    }
    t.is(got.filter(s => s !== 200 && s !== 404), [], '90 requests over reused connections, no 502 or 503');
  });
});
