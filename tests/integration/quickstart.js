// The README's first command: deploy/quickstart.sh starts lighttpd and
// llmgw with the embedded defaults, and a streamed reply comes back.
'use strict';
const {spawn} = require('child_process');
const fs = require('fs');
const path = require('path');
const t = require('../lib/tap');
const {request, sse, freePort, waitFor} = require('../lib/http');
const {SRC, LLMGW, which, workdir, sanitizerEnv, sanitizerReports} = require('../lib/servers');

t.main(async () => {
  if (!which('lighttpd')) t.skipAll('lighttpd is not installed (Debian package lighttpd)');
  const dir = workdir('quickstart');
  const port = await freePort();
  const out = fs.openSync(path.join(dir, 'out.txt'), 'w');
  const env = {...process.env, LLMGW_VAR: path.join(dir, 'var'), LLMGW: LLMGW, ...sanitizerEnv(dir)};
  delete env.ANTHROPIC_API_KEY;
  const p = spawn('sh', [path.join(SRC, 'deploy/quickstart.sh'), String(port)],
    {env, stdio: ['ignore', out, out], detached: true});
  let exited = false;
  p.on('exit', () => { exited = true; });
  t.onCleanup(async () => {
    try { process.kill(-p.pid, 'SIGTERM'); } catch (e) { /* gone */ }
    await waitFor(() => exited, 10000);
  });
  const text = () => fs.readFileSync(path.join(dir, 'out.txt'), 'utf8');
  const up = await waitFor(() => /llmgw is up/.test(text()), 60000, 100);
  t.ok(up, 'quickstart says llmgw is up');
  if (!up) return t.diag(text());
  t.like(text(), /REPLIES ARE CANNED/, 'without ANTHROPIC_API_KEY, a loud banner about the stub');
  const token = fs.readFileSync(path.join(dir, 'var', 'api-token'), 'utf8').trim();
  t.like(token, /^[0-9a-f]{48}$/, 'a generated token in var/api-token');
  await waitFor(async () => {
    try { return (await request(`http://127.0.0.1:${port}/api/v1/healthz`)).status === 200; } catch (e) { return false; }
  }, 15000);
  const r = await sse(`http://127.0.0.1:${port}/api/v1/chat/stream`, {message: 'Hello'},
    {headers: {authorization: `Bearer ${token}`}});
  t.ok(r.status === 200 && r.done && r.text.length > 0, `a streamed reply: ${JSON.stringify(r.text)}`);
  t.ok(fs.existsSync(path.join(dir, 'var', 'llmgw.db')), 'the database under var/');
  const page = await request(`http://127.0.0.1:${port}/`);
  t.ok(page.status === 200 && /<title>llmgw chat<\/title>/.test(page.text), 'the chat page at /');

  try { process.kill(-p.pid, 'SIGTERM'); } catch (e) { /* gone */ }
  await waitFor(() => exited, 10000);
  await waitFor(() => sanitizerReports(dir).length > 0, 2000);
  t.is(sanitizerReports(dir), [], 'no sanitizer reports');
});
