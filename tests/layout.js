// The tree is the architecture (README, "Hacking"), checked by reading
// the includes of every file under src/:
//   - src/core uses nothing of llmgw's; src/store uses core; each program's
//     folder uses core and store, never another program's folder;
//   - inside src/llmgw, a file includes only headers of its own layer or
//     of a layer below (the order a request meets them, bottom up);
//   - no circle of includes between modules anywhere;
//   - no file over 700 lines without a reason at its top ("Long because").
'use strict';
const fs = require('fs');
const path = require('path');
const t = require('./lib/tap');

const SRC = path.join(process.env.LLMGW_SRCDIR || path.resolve(__dirname, '..'), 'src');
const FOLDERS = {core: [], store: ['core'], llmgw: ['core', 'store'], spoold: ['core', 'store'],
  admin: ['core', 'store']};
// src/llmgw, bottom up: what each layer is, and its modules.
const LAYERS = [
  ['transport', ['listen', 'fcgi', 'fcgi_out', 'server', 'server_conn', 'conn']],
  ['upstream', ['sse', 'anthropic', 'retry', 'upstream', 'upstream_loop']],
  ['process', ['metrics', 'usage', 'openapi', 'openapi_doc', 'app']],
  ['request parts', ['auth', 'request', 'resp', 'route', 'req', 'verdict', 'meter', 'request_ui', 'openai', 'openai_request',
    'traceparent']],
  ['engine', ['engine', 'engine_admit']],
  ['routes', ['routes', 'route_chat', 'route_messages', 'route_meta', 'route_ui', 'route_openai', 'route_api']],
  ['dispatcher', ['dispatch']],
  ['main', ['llmgw']],
];
const LONG = 700;

const layerOf = {};
LAYERS.forEach(([, mods], i) => mods.forEach(m => { layerOf[m] = i; }));

const files = [];
for (const dir of Object.keys(FOLDERS))
  for (const f of fs.readdirSync(path.join(SRC, dir)).sort())
    if (/\.[ch]$/.test(f) && f !== 'openapi_doc.c') files.push(`${dir}/${f}`);

// A module's private header (x_impl.h, shared by the parts of x) is x.
const mod = f => f.replace(/\.[ch]$/, '').replace(/_impl$/, '');
const includes = f => [...fs.readFileSync(path.join(SRC, f), 'utf8').matchAll(/^#include "([^"]+)"/gm)]
  .map(m => m[1]).filter(h => h !== 'config.h');

t.main(async () => {
  const graph = {};	// module -> modules it includes (folder/name)
  const upward = [], foreign = [], unlayered = [], long = [];
  for (const f of files) {
    const [dir] = f.split('/');
    const from = mod(f);
    graph[from] = graph[from] || new Set();
    for (const h of includes(f)) {
      const to = h.includes('/') ? mod(h) : `${dir}/${mod(h)}`;
      const toDir = to.split('/')[0];
      if (toDir !== dir && !FOLDERS[dir].includes(toDir)) foreign.push(`${f} includes ${h}`);
      if (to !== from) graph[from].add(to);
      if (dir === 'llmgw' && toDir === 'llmgw') {
        const a = layerOf[path.basename(from)], b = layerOf[path.basename(to)];
        if (a === undefined || b === undefined) unlayered.push(a === undefined ? from : to);
        else if (b > a) upward.push(`${f} (${LAYERS[a][0]}) includes ${h} (${LAYERS[b][0]})`);
      }
    }
    const text = fs.readFileSync(path.join(SRC, f), 'utf8');
    const lines = text.split('\n').length - 1;
    if (lines > LONG && !/Long because/.test(text.split('\n').slice(0, 40).join('\n')))
      long.push(`${f}: ${lines} lines`);
  }
  t.is(foreign, [], 'core uses nothing of llmgw, store uses core, programs use core and store, never each other');
  t.is([...new Set(unlayered)], [], 'every module of src/llmgw has its layer in this test and in the README');
  t.is(upward, [], 'src/llmgw includes only its own layer and the ones below');

  // A module and its header are one node: a circle through includes of
  // x.c -> y.h -> x.h is a circle between modules.
  const cycles = [];
  const state = {};
  const visit = (m, stack) => {
    state[m] = 1;
    for (const n of graph[m] || []) {
      if (state[n] === 1) cycles.push([...stack.slice(stack.indexOf(n)), n].join(' -> '));
      else if (!state[n]) visit(n, [...stack, n]);
    }
    state[m] = 2;
  };
  for (const m of Object.keys(graph)) if (!state[m]) visit(m, [m]);
  t.is(cycles, [], 'no circle of includes between modules');
  t.is(long, [], `no file over ${LONG} lines without "Long because" at its top`);
  t.ok(files.length > 50, `${files.length} files read`);
});
