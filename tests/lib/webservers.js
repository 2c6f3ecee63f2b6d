// Apache and nginx for the tests, on loopback ports, each in a folder of
// the test's, with configurations made from deploy/.
'use strict';
const {spawn} = require('child_process');
const fs = require('fs');
const path = require('path');
const t = require('./tap');
const {freePort, waitPort, waitFor} = require('./http');
const {SRC, which, llmgwPids, stopSpawner} = require('./servers');

const APACHE_MODULES = '/usr/lib/apache2/modules';

// Apache 2.4 with "snippet" (text) included; runs as www-data, so the
// folder is made writable for it.  Returns null when Apache or a module
// is missing, with the reason in .why.
async function startApache({dir, snippet, modules, spawnsLlmgw = false}) {
  const bin = which('apache2');
  if (!bin) return {why: 'apache2 is not installed (Debian package apache2)'};
  for (const m of modules)
    if (!fs.existsSync(path.join(APACHE_MODULES, `mod_${m}.so`)))
      return {why: `mod_${m} is not installed` + (m === 'fcgid' ? ' (Debian package libapache2-mod-fcgid)' : '')};
  const port = await freePort();
  const run = path.join(dir, 'apache');
  fs.mkdirSync(path.join(run, 'fcgid'), {recursive: true});
  fs.chmodSync(dir, 0o777);
  fs.chmodSync(run, 0o777);
  fs.chmodSync(path.join(run, 'fcgid'), 0o777);
  const conf = [
    'ServerRoot /etc/apache2', 'ServerName localhost', `PidFile ${run}/httpd.pid`,
    `Listen 127.0.0.1:${port}`, `ErrorLog ${run}/error.log`, 'LogLevel warn',
    `DefaultRuntimeDir ${run}`,
    `LoadModule mpm_event_module ${APACHE_MODULES}/mod_mpm_event.so`,
    `LoadModule authz_core_module ${APACHE_MODULES}/mod_authz_core.so`,
    ...modules.map(m => `LoadModule ${m}_module ${APACHE_MODULES}/mod_${m}.so`),
    'User www-data', 'Group www-data',
    'ServerLimit 4', 'ThreadsPerChild 64', 'MaxRequestWorkers 256',
    modules.includes('fcgid') ? `FcgidIPCDir ${run}/fcgid\nFcgidProcessTableFile ${run}/fcgid_shm` : '',
    modules.includes('mime') ? `TypesConfig ${fs.existsSync('/etc/mime.types') ? '/etc/mime.types' : '/dev/null'}` : '',
    `DocumentRoot ${run}`,
    snippet,
  ].join('\n');
  fs.writeFileSync(path.join(run, 'httpd.conf'), conf + '\n');
  const errfd = fs.openSync(path.join(run, 'stderr.log'), 'a');
  const p = spawn(bin, ['-f', path.join(run, 'httpd.conf'), '-DFOREGROUND'], {stdio: ['ignore', errfd, errfd]});
  fs.closeSync(errfd);
  let exited = false;
  p.on('exit', () => { exited = true; });
  try { await waitPort(port, 10000); } catch (e) {
    const said = ['stderr.log', 'error.log'].map(f => {
      try { return fs.readFileSync(path.join(run, f), 'utf8'); } catch (x) { return ''; }
    }).join(' ').trim().split('\n').slice(-3).join(' ');
    return {why: `apache2 did not start: ${said}`};
  }
  const srv = {
    port, run, proc: p, base: `http://127.0.0.1:${port}`,
    url: (route) => `http://127.0.0.1:${port}/api/v1${route}`,
    log: () => ['error.log', 'stderr.log'].map(f => {
      try { return fs.readFileSync(path.join(run, f), 'utf8'); } catch (e) { return ''; }
    }).join(''),
    async stop() {
      if (exited) return;
      await stopSpawner(p, () => exited, spawnsLlmgw ? llmgwPids(dir) : [], dir,
        'llmgw processes exit when Apache stops');
    },
  };
  t.onCleanup(() => srv.stop());
  return srv;
}

// nginx with deploy/nginx/llmgw.conf, its listen line and socket replaced.
async function startNginx({dir, socket, connections = 4096, reuseport = false}) {
  const bin = which('nginx');
  if (!bin) return {why: 'nginx is not installed (Debian package nginx)'};
  const port = await freePort();
  const run = path.join(dir, 'nginx');
  fs.mkdirSync(run, {recursive: true});
  fs.chmodSync(dir, 0o755);	// nginx's workers run as nobody
  const site = fs.readFileSync(path.join(SRC, 'deploy/nginx/llmgw.conf'), 'utf8')
    .replace('listen 80;', `listen 127.0.0.1:${port}${reuseport ? ' reuseport' : ''};`)
    .split('/run/llmgw/llmgw.sock').join(socket);
  const conf = `daemon off;\nworker_processes 2;\nworker_rlimit_nofile ${2 * connections + 100};\n` +
    `pid ${run}/nginx.pid;\nerror_log ${run}/error.log warn;\n` +
    `events { worker_connections ${connections}; }\n` +
    `http {\n  access_log off;\n  client_body_temp_path ${run}/body;\n  fastcgi_temp_path ${run}/fastcgi;\n` +
    `  proxy_temp_path ${run}/proxy;\n  uwsgi_temp_path ${run}/uwsgi;\n  scgi_temp_path ${run}/scgi;\n` +
    site.split('\n').map(l => '  ' + l).join('\n') + '\n}\n';
  fs.writeFileSync(path.join(run, 'nginx.conf'), conf);
  // "include fastcgi_params" is relative to the configuration's folder.
  for (const f of ['/etc/nginx/fastcgi_params', '/usr/local/nginx/conf/fastcgi_params'])
    if (fs.existsSync(f)) { fs.copyFileSync(f, path.join(run, 'fastcgi_params')); break; }
  const errfd = fs.openSync(path.join(run, 'stderr.log'), 'a');
  const p = spawn(bin, ['-c', path.join(run, 'nginx.conf')], {stdio: ['ignore', errfd, errfd]});
  fs.closeSync(errfd);
  let exited = false;
  p.on('exit', () => { exited = true; });
  try { await waitPort(port, 10000); } catch (e) {
    return {why: `nginx did not start: ${fs.readFileSync(path.join(run, 'stderr.log'), 'utf8').trim()}`};
  }
  const srv = {
    port, run, proc: p, base: `http://127.0.0.1:${port}`,
    url: (route) => `http://127.0.0.1:${port}/api/v1${route}`,
    log: () => fs.readFileSync(path.join(run, 'error.log'), 'utf8'),
    async stop() {
      if (exited) return;
      p.kill('SIGQUIT');
      await waitFor(() => exited, 15000);
    },
  };
  t.onCleanup(() => srv.stop());
  return srv;
}

// deploy/apache/llmgw-fcgid.conf for startApache(), with the binary "bin"
// and the environment "env" of a test in place of the installed ones.
function fcgidSnippet(bin, env, extra = '') {
  const envLines = Object.entries(env).map(([k, v]) => `    FcgidInitialEnv ${k} "${v}"`).join('\n');
  return fs.readFileSync(path.join(SRC, 'deploy/apache/llmgw-fcgid.conf'), 'utf8')
    .split('/usr/local/sbin/llmgw').join(bin)
    .replace('    FcgidInitialEnv LLMGW_CONFIG /etc/llmgw.conf', envLines) + extra;
}

module.exports = {startApache, startNginx, fcgidSnippet};
