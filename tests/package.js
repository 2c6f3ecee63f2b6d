// The Debian package (make deb), as root on this machine: lintian, apt-get
// install, the user, folders, modes and files it makes; the installed
// llmgw run as its units say (systemd's socket made by
// systemd-socket-activate when systemd is not running) behind Apache with
// the installed snippet enabled, a reply streamed and its usage row found;
// then apt-get purge, and nothing the package made is left.
//
// usage: node tests/package.js llmgw_<version>_<arch>.deb   (tests/run-all.sh)
'use strict';
const {spawn, spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');
const t = require('./lib/tap');
const {sse, waitFor} = require('./lib/http');
const {TOKEN, API_KEY, workdir, startStub, sql} = require('./lib/servers');
const {startApache} = require('./lib/webservers');

const run = (cmd, args, opts = {}) => spawnSync(cmd, args, {encoding: 'utf8', ...opts});
const mode = (p) => (fs.statSync(p).mode & 0o7777).toString(8);
const owner = (p) => {
  const st = fs.statSync(p);
  const name = (db, id) => (run('getent', [db, String(id)]).stdout.split(':')[0] || String(id));
  return `${name('passwd', st.uid)}:${name('group', st.gid)}`;
};
const exists = (p) => { try { fs.lstatSync(p); return true; } catch (e) { return false; } };

// What the package makes, apart from what dpkg lists as its files.
const MADE = ['/var/lib/llmgw', '/var/spool/llmgw', '/etc/llmgw.conf', '/usr/sbin/llmgw', '/usr/sbin/llmgw-spoold',
  '/usr/sbin/llmgw-admin', '/lib/systemd/system/llmgw.socket', '/lib/systemd/system/llmgw.service',
  '/lib/systemd/system/llmgw-spoold.service', '/etc/apache2/conf-available/llmgw.conf',
  '/etc/lighttpd/conf-available/90-llmgw.conf', '/etc/nginx/snippets/llmgw.conf', '/etc/logrotate.d/llmgw',
  '/usr/share/llmgw/www/index.html', '/usr/share/man/man8/llmgw.8.gz', '/usr/share/doc/llmgw'];

t.main(async () => {
  if (process.getuid() !== 0) t.skipAll('installing a package needs root');
  const deb = path.resolve(process.argv[2] || '');
  if (!process.argv[2] || !fs.existsSync(deb)) t.skipAll(`no package to test (${process.argv[2] || 'none given'}): make deb`);
  // A package of an earlier run would make this one an upgrade.
  run('apt-get', ['purge', '-y', '-q', 'llmgw']);

  await t.test('lintian', async () => {
    const l = run('lintian', ['--fail-on', 'error,warning', deb]);
    const said = (l.stdout + l.stderr).split('\n').filter(x => /^[EW]:/.test(x));
    t.is(said, [], 'no error or warning');
    t.is(l.status, 0, 'lintian exits 0');
  });

  await t.test('apt-get install', async () => {
    const i = run('apt-get', ['install', '-y', '-q', deb], {env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}});
    t.is(i.status, 0, `installed${i.status ? `: ${i.stderr.slice(-400)}` : ''}`);
    const pw = run('getent', ['passwd', 'llmgw']).stdout.trim().split(':');
    t.ok(pw.length === 7 && +pw[2] < 1000, `a system user llmgw (uid ${pw[2]})`);
    t.is([pw[5], pw[6]], ['/var/lib/llmgw', '/usr/sbin/nologin'], 'its home and no shell');
    for (const d of ['/var/lib/llmgw', '/var/spool/llmgw'])
      t.is([owner(d), mode(d)], ['llmgw:llmgw', '750'], `${d}: llmgw's, 0750`);
    t.is([owner('/etc/llmgw.conf'), mode('/etc/llmgw.conf')], ['root:llmgw', '640'], '/etc/llmgw.conf: root:llmgw 0640');
    t.ok(run('dpkg-query', ['-W', '-f=${Conffiles}', 'llmgw']).stdout.includes('/etc/llmgw.conf'), 'a conffile');
    t.is(MADE.filter(p => !exists(p)), [], 'programs, units, snippets, logrotate, the chat page, man pages, docs');
    const unit = fs.readFileSync('/lib/systemd/system/llmgw.service', 'utf8');
    t.like(unit, /^ExecStart=\/usr\/sbin\/llmgw --config \/etc\/llmgw.conf$/m, 'the unit runs /usr/sbin/llmgw');
    t.like(run('/usr/sbin/llmgw', ['--version']).stdout, /^llmgw \d/, 'llmgw --version');
  });

  await t.test('the installed llmgw behind Apache with the installed snippet', async () => {
    const stub = await startStub();
    // The settings an administrator adds to the installed file.
    fs.appendFileSync('/etc/llmgw.conf', `upstream_url = ${stub.url}\napi_key = ${API_KEY}\napi_token = ${TOKEN}\n`);
    const unit = fs.readFileSync('/lib/systemd/system/llmgw.service', 'utf8');
    const socketUnit = fs.readFileSync('/lib/systemd/system/llmgw.socket', 'utf8');
    const exec = /^ExecStart=(.*)$/m.exec(unit)[1].split(/\s+/);
    const sock = /^ListenStream=(.*)$/m.exec(socketUnit)[1];
    fs.mkdirSync(path.dirname(sock), {recursive: true});
    // One left by an earlier run would be there before ours is made.
    fs.rmSync(sock, {force: true});
    t.onCleanup(() => fs.rmSync(sock, {force: true}));
    // What llmgw.socket and llmgw.service do when systemd runs them: the
    // socket made by root for www-data, llmgw run as llmgw on it.
    const g = spawn('systemd-socket-activate', ['-l', sock, 'setpriv', '--reuid=llmgw', '--regid=llmgw',
      '--init-groups', ...exec], {stdio: ['ignore', 'ignore', 'pipe']});
    let log = '';
    g.stderr.on('data', d => { log += d; });
    t.onCleanup(() => { g.kill('SIGTERM'); });
    t.ok(await waitFor(() => exists(sock), 10000), `the socket ${sock}`);
    fs.chownSync(sock, 0, +run('getent', ['group', 'www-data']).stdout.split(':')[2]);
    fs.chmodSync(sock, 0o660);

    const en = run('a2enconf', ['-q', 'llmgw']);
    t.is(en.status, 0, 'a2enconf llmgw');
    t.onCleanup(() => run('a2disconf', ['-q', 'llmgw']));
    const dir = workdir('package');
    const srv = await startApache({dir, snippet: 'Include /etc/apache2/conf-enabled/llmgw.conf',
      modules: ['proxy', 'proxy_fcgi', 'env']});
    if (srv.why) return t.skip('Apache', srv.why);
    t.onCleanup(() => srv.stop());
    const r = await sse(srv.url('/chat/stream'), {message: '[[tokens:4]]'},
      {headers: {authorization: `Bearer ${TOKEN}`, 'x-request-id': 'package-stream'}});
    t.ok(r.status === 200 && r.done, `a reply streamed through Apache (${r.status})`);
    t.is(r.text, 'tok0 tok1 tok2 tok3 ', 'its text');
    const row = await waitFor(() => {
      try { return sql('/var/lib/llmgw/llmgw.db', "SELECT output_tokens FROM usage WHERE request_id = 'package-stream'")[0]; }
      catch (e) { return null; }
    }, 10000);
    t.is(row, {output_tokens: 4}, 'its usage row in /var/lib/llmgw/llmgw.db');
    t.is([owner('/var/lib/llmgw/llmgw.db'), mode('/var/lib/llmgw/llmgw.db')], ['llmgw:llmgw', '600'],
      'the database is llmgw\'s, 0600');
    await srv.stop();
    g.kill('SIGTERM');
    t.ok(await waitFor(() => g.exitCode !== null, 10000), `llmgw stops on SIGTERM${log ? '' : ''}`);
    run('a2disconf', ['-q', 'llmgw']);
  });

  await t.test('apt-get purge', async () => {
    const p = run('apt-get', ['purge', '-y', '-q', 'llmgw'], {env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}});
    t.is(p.status, 0, 'purged');
    t.is(MADE.filter(exists), [], 'nothing it made is left: data, conffiles, programs, units, snippets');
    t.is(run('getent', ['passwd', 'llmgw']).status, 2, 'nor its user');
    t.is(run('getent', ['group', 'llmgw']).status, 2, 'nor its group');
    t.ok(!exists('/etc/apache2/conf-enabled/llmgw.conf'), 'nor an enabled snippet');
  });
});
