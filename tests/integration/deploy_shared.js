// deploy/shared-hosting: a user without root, with Apache's .htaccess, the
// CGI wrapper and llmgw's files under their home; llmgw-spoold --once as
// cron would run it.
'use strict';
const {spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {SRC, SPOOLD, TOKEN, API_KEY, workdir, startStub, sanitizerEnv, sql} = require('../lib/servers');
const {startApache} = require('../lib/webservers');
const {checkDeployment} = require('../lib/matrix');

t.main(async () => {
  const stub = await startStub();
  const dir = workdir('deploy-shared');
  const home = path.join(dir, 'home', 'alice');
  const llhome = path.join(home, 'llmgw');
  const api = path.join(home, 'public_html', 'api');
  fs.mkdirSync(path.join(llhome, 'sbin'), {recursive: true});
  fs.mkdirSync(api, {recursive: true});
  for (const d of [path.join(dir, 'home'), home, path.join(home, 'public_html'), api])
    fs.chmodSync(d, 0o755);
  fs.chmodSync(llhome, 0o777);		// llmgw runs as the web server's user
  fs.copyFileSync(path.join(process.env.LLMGW_BUILDDIR || SRC, 'src', 'llmgw', 'llmgw'), path.join(llhome, 'sbin', 'llmgw'));
  fs.chmodSync(path.join(llhome, 'sbin'), 0o755);
  fs.chmodSync(path.join(llhome, 'sbin', 'llmgw'), 0o755);
  fs.writeFileSync(path.join(llhome, 'anthropic-key'), API_KEY + '\n');
  // The user's files, from deploy/shared-hosting, with their paths.
  const conf = fs.readFileSync(path.join(SRC, 'deploy/shared-hosting/llmgw.conf'), 'utf8')
    .split('/home/USER').join(home)
    .replace(/^api_token = .*$/m, `api_token = ${TOKEN}`) +
    `upstream_url = ${stub.url}\nretry_base = 50ms\n`;
  fs.writeFileSync(path.join(llhome, 'llmgw.conf'), conf);
  fs.copyFileSync(path.join(SRC, 'deploy/shared-hosting/htaccess'), path.join(api, '.htaccess'));
  fs.writeFileSync(path.join(api, 'llmgw.cgi'), fs.readFileSync(path.join(SRC, 'deploy/shared-hosting/llmgw.cgi'),
    'utf8').split('/home/USER').join(home));
  fs.chmodSync(path.join(api, 'llmgw.cgi'), 0o755);
  // The host's part: a document root the user may override with .htaccess.
  const san = sanitizerEnv(dir);
  const host = [`DocumentRoot "${path.join(home, 'public_html')}"`,
    `<Directory "${path.join(home, 'public_html')}">`, '    AllowOverride All', '    Require all granted',
    '</Directory>', `ScriptSock ${dir}/apache/cgid.sock`,
    ...Object.entries(san).map(([k, v]) => `SetEnv ${k} "${v}"`)].join('\n');
  const srv = await startApache({dir, snippet: host, modules: ['cgid', 'rewrite', 'env', 'mime']});
  if (srv.why) t.skipAll(srv.why);
  await checkDeployment({name: 'shared hosting (.htaccess, CGI)', url: srv.url, stub,
    db: path.join(llhome, 'llmgw.db'), spool: path.join(llhome, 'spool')});

  await t.test('shared hosting: llmgw-spoold --once from cron', async () => {
    const r = spawnSync(SPOOLD, ['--once', '--config', path.join(llhome, 'llmgw.conf')], {encoding: 'utf8',
      env: {PATH: process.env.PATH, HOME: home, ...san}});
    t.is(r.status, 0, `drains the user's spool: ${r.stderr.trim()}`);
    t.ok(sql(path.join(llhome, 'llmgw.db'), 'SELECT count(*) AS n FROM request_log')[0].n > 50,
      'into the user\'s database');
  });
});
