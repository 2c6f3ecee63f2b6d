// deploy/ files for llmgw-spoold: the systemd unit verifies and is
// hardened; the cron line, run as written, drains a spool.
'use strict';
const {spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {SRC, SPOOLD, which, workdir, sql} = require('../lib/servers');

t.main(async () => {
  const dir = workdir('deploy-spoold');

  await t.test('systemd unit', async () => {
    if (!which('systemd-analyze')) return t.skip('systemd unit', 'systemd-analyze is not installed (Debian package systemd)');
    const unit = path.join(dir, 'llmgw-spoold.service');
    fs.writeFileSync(unit, fs.readFileSync(path.join(SRC, 'deploy/systemd/llmgw-spoold.service'), 'utf8')
      .replace('/usr/local/sbin/llmgw-spoold', SPOOLD));
    let r = spawnSync('systemd-analyze', ['verify', '--man=no', unit], {encoding: 'utf8'});
    t.is([r.status, r.stderr.trim()], [0, ''], 'systemd-analyze verify is quiet');
    r = spawnSync('systemd-analyze', ['security', '--offline=yes', unit], {encoding: 'utf8'});
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout);
    t.ok(m && +m[1] <= 2.5, `hardened: exposure ${m && m[1]} (systemd-analyze security)`);
    const text = fs.readFileSync(unit, 'utf8');
    for (const k of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/llmgw /var/spool/llmgw',
      'User=llmgw', 'ExecReload=/bin/kill -HUP $MAINPID'])
      t.ok(text.includes(k), k);
  });

  await t.test('cron line', async () => {
    const line = fs.readFileSync(path.join(SRC, 'deploy/cron/llmgw-spoold.cron'), 'utf8')
      .split('\n').find(l => l.trim() && !l.startsWith('#'));
    t.ok(/^\* \* \* \* \* /.test(line), 'runs every minute');
    const cmd = line.replace(/^(\S+\s+){5}/, '');
    const home = path.join(dir, 'home');
    fs.mkdirSync(path.join(home, 'llmgw', 'sbin'), {recursive: true});
    fs.symlinkSync(SPOOLD, path.join(home, 'llmgw', 'sbin', 'llmgw-spoold'));
    fs.writeFileSync(path.join(home, 'llmgw', 'llmgw.conf'),
      `spool_dir = ${home}/llmgw/spool\ndatabase = ${home}/llmgw/llmgw.db\n`);
    fs.mkdirSync(path.join(home, 'llmgw', 'spool', 'new'), {recursive: true});
    fs.writeFileSync(path.join(home, 'llmgw', 'spool', 'new', 'cron1'),
      '{"id":"cron1","request_id":"from-cron","route":"/chat","ts_ms":1,"status":200}');
    const env = {PATH: process.env.PATH, HOME: home, ASAN_OPTIONS: `log_path=${dir}/asan`};
    const r = spawnSync('/bin/sh', ['-c', cmd], {env, encoding: 'utf8'});
    t.is(r.status, 0, `the line runs as cron would run it: ${cmd}`);
    t.is(sql(path.join(home, 'llmgw', 'llmgw.db'), 'SELECT request_id FROM request_log'),
      [{request_id: 'from-cron'}], 'and delivers the spool');
    t.ok(fs.existsSync(path.join(home, 'llmgw', 'spoold.log')), 'its output goes to spoold.log');
  });
});
