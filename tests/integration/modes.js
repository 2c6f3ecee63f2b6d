// The three ways llmgw runs: spawned by the web server (the other files),
// on its own socket (--listen, TCP and unix), and as plain CGI.  Plus the
// command line and configuration errors.
'use strict';
const {spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {request, sse, freePort} = require('../lib/http');
const {LLMGW, TOKEN, workdir, startStub, startLighttpd, startLlmgw, llmgwEnv, writeConf,
  sanitizerReports} = require('../lib/servers');

t.main(async () => {
  const dir = workdir('modes');
  const stub = await startStub();
  writeConf(dir, {threads: 2});
  const env = llmgwEnv(dir, stub);
  const auth = {authorization: `Bearer ${TOKEN}`};

  await t.test('--listen on TCP, lighttpd connecting', async () => {
    const port = await freePort();
    const g = await startLlmgw({dir, env, listen: `127.0.0.1:${port}`});
    const srv = await startLighttpd({dir, backend: {port}});
    if (!srv) return t.skip('lighttpd tests', 'lighttpd is not installed');
    const r = await sse(srv.url('/chat/stream'), {message: '[[tokens:3]]'}, {headers: auth});
    t.ok(r.status === 200 && r.done && r.events.length === 4, 'a stream through TCP');
    const c = await request(srv.url('/chat'), {method: 'POST', headers: auth, body: {message: 'x'}});
    t.is(c.status, 200, '/chat through TCP');
    await srv.stop();
    t.is(await g.stop('SIGTERM'), 0, 'SIGTERM: exit status 0');
  });

  await t.test('--listen on a unix socket, lighttpd connecting', async () => {
    const sock = path.join(dir, 'llmgw.sock');
    const g = await startLlmgw({dir, env, listen: sock});
    const srv = await startLighttpd({dir, backend: {socket: sock}});
    if (!srv) return t.skip('lighttpd tests', 'lighttpd is not installed');
    const rs = await Promise.all(Array.from({length: 5}, () =>
      sse(srv.url('/chat/stream'), {message: '[[tokens:5]] [[delay:50]]'}, {headers: auth})));
    t.is(rs.filter(r => r.done).length, 5, 'five concurrent streams through the socket');
    await srv.stop();
    t.is(await g.stop('SIGINT'), 0, 'SIGINT: exit status 0');
  });

  await t.test('plain CGI', async () => {
    const body = JSON.stringify({message: '[[tokens:2]]'});
    const cgiEnv = {...env, GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'POST', PATH_INFO: '/chat',
      SCRIPT_NAME: '/cgi-bin/llmgw', CONTENT_TYPE: 'application/json', CONTENT_LENGTH: String(body.length),
      HTTP_AUTHORIZATION: `Bearer ${TOKEN}`};
    let r = spawnSync(LLMGW, [], {env: cgiEnv, input: body, encoding: 'utf8'});
    t.is(r.status, 0, 'exit status 0');
    t.like(r.stdout, /^Status: 200 OK\r\n/, 'a CGI Status line');
    t.like(r.stdout, /\r\n\r\n\{"reply":"tok0 tok1 ","input_tokens":\d+,"output_tokens":2\}$/, 'then the JSON');
    r = spawnSync(LLMGW, [], {env: {...cgiEnv, PATH_INFO: '/chat/stream'}, input: body, encoding: 'utf8'});
    t.like(r.stdout, /Content-Type: text\/event-stream[\s\S]*data: tok0 \n\ndata: tok1 \n\ndata: \[DONE\]\n\n$/,
      'a stream over CGI');
    r = spawnSync(LLMGW, [], {env: {...cgiEnv, REQUEST_METHOD: 'GET', PATH_INFO: '/healthz',
      CONTENT_LENGTH: ''}, encoding: 'utf8'});
    t.like(r.stdout, /^Status: 200 OK/, 'GET /healthz over CGI');
  });

  await t.test('command line', async () => {
    let r = spawnSync(LLMGW, ['--version'], {encoding: 'utf8'});
    t.ok(r.status === 0 && /^llmgw \d+\.\d+\.\d+\n$/.test(r.stdout), '--version');
    r = spawnSync(LLMGW, ['--help'], {encoding: 'utf8'});
    t.ok(r.status === 0 && /^usage: llmgw \[--config FILE\] \[--listen ADDR\] \[--threads N\]/.test(r.stdout), '--help');
    r = spawnSync(LLMGW, ['--frobnicate'], {encoding: 'utf8'});
    t.ok(r.status === 2 && /usage: llmgw/.test(r.stderr), 'unknown option: exit 2 and usage');
    r = spawnSync(LLMGW, ['--threads', 'lots'], {encoding: 'utf8'});
    t.ok(r.status === 2 && /--threads: "lots" is not a number/.test(r.stderr), 'bad --threads: exit 2');
    r = spawnSync(LLMGW, [], {encoding: 'utf8', env: {...env, GATEWAY_INTERFACE: ''}, stdio: ['pipe', 'pipe', 'pipe']});
    t.ok(r.status === 2 && /no FastCGI socket on standard input/.test(r.stderr),
      'from a terminal or pipe: exit 2 with a hint');
  });

  await t.test('configuration errors stop it at start', async () => {
    const conf = path.join(dir, 'bad.conf');
    fs.writeFileSync(conf, '# ok\nthreads = 4\nmax_tokens_limit = lots\n');
    let r = spawnSync(LLMGW, ['--config', conf, '--listen', '127.0.0.1:1'], {encoding: 'utf8', env});
    t.is(r.status, 1, 'exit status 1');
    t.is(r.stderr, `llmgw: ${conf}:3: max_tokens_limit: "lots" is not a whole number\n`, 'file:line: message');
    fs.writeFileSync(conf, 'thread = 4\n');
    r = spawnSync(LLMGW, ['--listen', '127.0.0.1:1'], {encoding: 'utf8', env: {...env, LLMGW_CONFIG: conf}});
    t.is(r.stderr, `llmgw: ${conf}:1: unknown key "thread"\n`, 'LLMGW_CONFIG is read');
    r = spawnSync(LLMGW, ['--config', path.join(dir, 'missing.conf')], {encoding: 'utf8', env});
    t.ok(r.status === 1 && /missing\.conf: No such file/.test(r.stderr), 'a named file that is missing');
    r = spawnSync(LLMGW, ['--listen', 'nonsense'], {encoding: 'utf8', env});
    t.ok(r.status === 1 && /listen nonsense: expected/.test(r.stderr), 'a bad --listen address');
  });

  await t.test('root, and secrets others may read', async () => {
    const healthz = {...env, GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', PATH_INFO: '/healthz'};
    if (process.getuid() === 0) {
      const noRoot = {...healthz};
      delete noRoot.LLMGW_ALLOW_ROOT;
      const r = spawnSync(LLMGW, [], {env: noRoot, encoding: 'utf8'});
      t.ok(r.status === 1 && /refusing to run as root: .*allow_root = yes/.test(r.stderr) && r.stdout === '',
        'as root without allow_root: exit 1, the reason, nothing served');
    } else {
      t.skip('as root without allow_root', 'not running as root');
    }
    const conf = path.join(dir, 'secret.conf');
    fs.writeFileSync(conf, 'api_key = sk-ant-in-a-file\n', {mode: 0o644});
    fs.chmodSync(conf, 0o644);
    let r = spawnSync(LLMGW, [], {env: {...healthz, LLMGW_CONFIG: conf}, encoding: 'utf8'});
    t.like(r.stderr, new RegExp(`${conf}:1: holds api_key but every user may read it \\(mode 644\\)`),
      'a warning at start');
    t.ok(!r.stderr.includes('sk-ant-in-a-file'), 'that does not show the secret');
    t.like(r.stdout, /^Status: 200 OK/, 'and it still serves');
    fs.chmodSync(conf, 0o600);
    r = spawnSync(LLMGW, [], {env: {...healthz, LLMGW_CONFIG: conf}, encoding: 'utf8'});
    t.ok(!/every user may read/.test(r.stderr), 'mode 600: no warning');
  });

  t.is(sanitizerReports(dir), [], 'no sanitizer reports');
});
