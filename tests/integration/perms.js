// What llmgw, llmgw-spoold and llmgw-admin create is private, whatever
// the umask: the database and its journal, the spool's folders
// and records, the jsonl sink, 0600 and 0700; with file_group set, 0640
// and 0750 and that group.  And the listening socket has its mode from
// the moment it can be connected to.
'use strict';
const t = require('../lib/tap');
const fs = require('fs');
const path = require('path');
const {spawn, spawnSync, execFileSync} = require('child_process');
const {request, waitFor} = require('../lib/http');
const {fcgiRequest} = require('../lib/fcgi');
const {LLMGW, SPOOLD, ADMIN, TOKEN, workdir, startStub, llmgwEnv, writeConf} = require('../lib/servers');

const mode = (p) => fs.statSync(p).mode & 0o7777;
const oct = (m) => '0' + m.toString(8);

// llmgw on a unix socket, started under umask 000.
async function start(dir, env, sock) {
  const p = spawn('/bin/sh', ['-c', 'umask 000; exec "$0" --listen "$1"', LLMGW, sock],
    {env: {...process.env, ...env}, stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'llmgw.log'), 'a')]});
  let exited = false;
  p.on('exit', () => { exited = true; });
  t.onCleanup(async () => { if (!exited) { p.kill('SIGTERM'); await waitFor(() => exited, 10000); } });
  await waitFor(() => fs.existsSync(sock), 10000);
  return {stop: async () => { p.kill('SIGTERM'); await waitFor(() => exited, 10000); }};
}

// Everything below "root": [path, mode, gid] for what llmgw made.
function walk(root) {
  const out = [];
  const visit = (p) => {
    const st = fs.lstatSync(p);
    out.push([p, st.mode & 0o7777, st.gid, st.isDirectory()]);
    if (st.isDirectory()) for (const f of fs.readdirSync(p)) visit(path.join(p, f));
  };
  visit(root);
  return out;
}

async function oneRun(t, name, settings, fileMode, dirMode, gid) {
  const dir = workdir(`perms-${name}`);
  const stub = await startStub();
  writeConf(dir, settings);
  const state = path.join(dir, 'state');
  fs.mkdirSync(state);
  const env = llmgwEnv(dir, stub, {LLMGW_DB: path.join(state, 'llmgw.db'), LLMGW_SPOOL_DIR: path.join(state, 'spool')});
  const sock = path.join(dir, 'llmgw.sock');
  const g = await start(dir, env, sock);
  const cgi = {REQUEST_METHOD: 'POST', SCRIPT_NAME: '', PATH_INFO: '/chat', CONTENT_TYPE: 'application/json',
    HTTP_AUTHORIZATION: `Bearer ${TOKEN}`};
  const r = await fcgiRequest({path: sock}, cgi, '{"message":"[[tokens:2]]"}');
  t.is(r.status, 200, `${name}: a request served`);
  t.is(oct(mode(sock)), '0660', `${name}: the socket has listen_mode`);
  t.ok(!fs.readdirSync(dir).some(f => f.startsWith('.llmgw.')), `${name}: no folder left from making it`);
  // The record reaches new/ once its segment closes.
  await waitFor(() => fs.readdirSync(path.join(state, 'spool', 'new')).length > 0, 5000);
  fs.writeFileSync(path.join(state, 'spool', 'new', 'zzbroken'), 'not a record\n');
  const jsonl = path.join(dir, 'out.jsonl');
  const conf = writeConf(dir, {...settings, sinks: 'sqlite, jsonl', jsonl_path: jsonl, spool_attempts: 1});
  const s = spawnSync('/bin/sh', ['-c', 'umask 000; exec "$0" --once', SPOOLD], {env: {...process.env, ...env,
    LLMGW_CONFIG: conf}, encoding: 'utf8'});
  t.is(s.status, 0, `${name}: llmgw-spoold --once delivered`);
  // The rollback journal stays, empty, between transactions; and a
  // database never left in WAL mode has no WAL or SHM file.
  const live = walk(state).filter(([p]) => /-(wal|shm)$/.test(p));
  t.is(live.map(([p]) => path.relative(state, p)), [], `${name}: no WAL or SHM file: nothing is mapped`);
  const key = spawnSync('/bin/sh', ['-c', 'umask 000; exec "$0" key create --name perms', ADMIN],
    {env: {...process.env, ...env, LLMGW_DB: path.join(state, 'admin.db')}, encoding: 'utf8'});
  t.is(key.status, 0, `${name}: llmgw-admin made a database of its own`);
  await g.stop();
  // zzbroken is the test's own file, moved into failed/ as it was.
  const files = walk(state).filter(([p]) => p !== state && !p.endsWith('/zzbroken')).concat(walk(jsonl));
  const wrong = files.filter(([, m, g2, isDir]) => m !== (isDir ? dirMode : fileMode) || (gid !== null && g2 !== gid))
    .map(([p, m, g2]) => `${path.relative(dir, p)} ${oct(m)} gid ${g2}`);
  const names = files.map(([p]) => path.relative(state, p));
  const want = ['llmgw.db', 'llmgw.db-journal', 'spool/new', 'spool/failed/zzbroken.reason', 'spool/.spoold-status',
    'admin.db', '../out.jsonl'];
  t.is(want.filter(n => !names.includes(n)), [],
    `${name}: the database, its journal, the spool's folders and records, the jsonl sink (${files.length} made)`);
  t.is(wrong, [], `${name}: all ${oct(fileMode)} (folders ${oct(dirMode)})${gid !== null ? `, group ${gid}` : ''} under umask 000`);
}

t.main(async () => {
  await t.test('private by default', (async function () { await oneRun(t, 'private', {}, 0o600, 0o700, null); }));
  await t.test('with file_group', async () => {
    const group = execFileSync('id', ['-gn'], {encoding: 'utf8'}).trim();
    const gid = +execFileSync('id', ['-g'], {encoding: 'utf8'}).trim();
    await oneRun(t, 'group', {file_group: group}, 0o640, 0o750, gid);
  });
  await t.test('file_group naming no group', async () => {
    const dir = workdir('perms-bad');
    writeConf(dir, {file_group: 'no-such-group-llmgw'});
    const r = spawnSync(LLMGW, ['--config', path.join(dir, 'llmgw.conf'), '--listen', path.join(dir, 's')],
      {env: {...process.env, LLMGW_ALLOW_ROOT: 'yes'}, encoding: 'utf8'});
    t.ok(r.status === 1 && /llmgw\.conf:1: file_group: no such group/.test(r.stderr),
      `a config error with file and line: ${r.stderr.trim()}`);
  });
});
