// deploy/systemd: llmgw.socket and llmgw.service verify and are hardened;
// llmgw serves a socket handed over by systemd-style socket activation;
// deploy/logrotate parses.
'use strict';
const {spawn, spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {waitFor} = require('../lib/http');
const {SRC, LLMGW, which, workdir, startStub, startLighttpd, llmgwEnv, writeConf, sanitizerReports} = require('../lib/servers');
const {checkDeployment} = require('../lib/matrix');

t.main(async () => {
  const dir = workdir('deploy-systemd');

  await t.test('systemd units', async () => {
    if (!which('systemd-analyze')) return t.skip('systemd units', 'systemd-analyze is not installed (Debian package systemd)');
    for (const u of ['llmgw.socket', 'llmgw.service'])
      fs.writeFileSync(path.join(dir, u), fs.readFileSync(path.join(SRC, 'deploy/systemd', u), 'utf8')
        .replace('/usr/local/sbin/llmgw', LLMGW));
    let r = spawnSync('systemd-analyze', ['verify', '--man=no', path.join(dir, 'llmgw.socket'),
      path.join(dir, 'llmgw.service')], {encoding: 'utf8'});
    t.is([r.status, r.stderr.trim()], [0, ''], 'systemd-analyze verify is quiet');
    r = spawnSync('systemd-analyze', ['security', '--offline=yes', path.join(dir, 'llmgw.service')], {encoding: 'utf8'});
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout);
    t.ok(m && +m[1] <= 2.5, `llmgw.service is hardened: exposure ${m && m[1]}`);
    const svc = fs.readFileSync(path.join(dir, 'llmgw.service'), 'utf8');
    for (const k of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/llmgw /var/spool/llmgw',
      'User=llmgw', 'Requires=llmgw.socket', 'ExecReload=/bin/kill -HUP $MAINPID'])
      t.ok(svc.includes(k), `llmgw.service: ${k}`);
    const sock = fs.readFileSync(path.join(dir, 'llmgw.socket'), 'utf8');
    t.ok(/ListenStream=\/run\/llmgw\/llmgw.sock/.test(sock) && /SocketGroup=www-data/.test(sock),
      'llmgw.socket: the socket, for group www-data');
  });

  await t.test('socket activation', async () => {
    const act = which('systemd-socket-activate');
    if (!act) return t.skip('socket activation', 'systemd-socket-activate is not installed (Debian package systemd)');
    const stub = await startStub();
    writeConf(dir, {retry_base: '50ms'});
    const env = llmgwEnv(dir, stub);
    const sock = path.join(dir, 'llmgw.sock');
    const log = fs.openSync(path.join(dir, 'llmgw.log'), 'w');
    const args = ['-l', sock, ...Object.entries(env).flatMap(([k, v]) => ['-E', `${k}=${v}`]), LLMGW];
    const p = spawn(act, args, {stdio: ['ignore', log, log]});
    let exited = false;
    p.on('exit', () => { exited = true; });
    t.onCleanup(async () => { if (!exited) { p.kill('SIGTERM'); await waitFor(() => exited, 10000); } });
    await waitFor(() => fs.existsSync(sock), 5000);
    const srv = await startLighttpd({dir, backend: {socket: sock}});
    if (!srv) return t.skip('socket activation', 'lighttpd is not installed');
    await checkDeployment({name: 'systemd socket', url: srv.url, stub, db: env.LLMGW_DB, spool: env.LLMGW_SPOOL_DIR});
    await srv.stop();
    p.kill('SIGTERM');
    t.ok(await waitFor(() => exited, 10000), 'llmgw stops on SIGTERM');
    t.like(fs.readFileSync(path.join(dir, 'llmgw.log'), 'utf8'), /serving FastCGI/,
      'it served the socket systemd handed it (LISTEN_FDS)');
    t.is(sanitizerReports(dir), [], 'no sanitizer reports');
  });

  await t.test('logrotate', async () => {
    if (!which('logrotate')) return t.skip('logrotate', 'logrotate is not installed (Debian package logrotate)');
    const logs = path.join(dir, 'logs');
    fs.mkdirSync(logs);
    fs.writeFileSync(path.join(logs, 'records.jsonl'), '{}\n');
    const conf = path.join(dir, 'logrotate.conf');
    fs.writeFileSync(conf, fs.readFileSync(path.join(SRC, 'deploy/logrotate/llmgw'), 'utf8')
      .replace('/var/log/llmgw/*.jsonl', `${logs}/*.jsonl`).replace('create 0640 llmgw llmgw', 'create 0640 root root'));
    const r = spawnSync('logrotate', ['--debug', '--state', path.join(dir, 'state'), conf], {encoding: 'utf8'});
    t.is(r.status, 0, 'logrotate --debug accepts it');
    t.like(r.stdout + r.stderr, /records\.jsonl/, 'and finds the jsonl sink file');
  });
});
