// deploy/lighttpd: lighttpd starting llmgw (llmgw-spawn.conf), and
// lighttpd connecting to llmgw's own socket (llmgw-socket.conf).
'use strict';
const path = require('path');
const t = require('../lib/tap');
const {workdir, startStub, startLighttpd, startLlmgw, llmgwEnv, writeConf} = require('../lib/servers');
const {checkDeployment} = require('../lib/matrix');

t.main(async () => {
  const stub = await startStub();
  const a = workdir('deploy-lighttpd-spawn');
  writeConf(a, {retry_base: '50ms'});
  const envA = llmgwEnv(a, stub);
  const spawned = await startLighttpd({dir: a, env: envA});
  if (!spawned) t.skipAll('lighttpd is not installed (Debian package lighttpd)');
  await checkDeployment({name: 'lighttpd bin-path', url: spawned.url, stub, db: envA.LLMGW_DB,
    spool: envA.LLMGW_SPOOL_DIR});

  const b = workdir('deploy-lighttpd-socket');
  writeConf(b, {retry_base: '50ms'});
  const envB = llmgwEnv(b, stub);
  const sock = path.join(b, 'llmgw.sock');
  await startLlmgw({dir: b, env: envB, listen: sock});
  const srv = await startLighttpd({dir: b, backend: {socket: sock}});
  await checkDeployment({name: 'lighttpd socket', url: srv.url, stub, db: envB.LLMGW_DB,
    spool: envB.LLMGW_SPOOL_DIR});
});
