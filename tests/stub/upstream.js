// llmgw's stand-in for the Anthropic Messages API, for tests and benchmarks.
// No network: it listens on 127.0.0.1 only.
//
// usage: node upstream.js [PORT]    (0 or none: any free port; the chosen
//        port is printed on stdout as "listening PORT")
//
// POST /v1/messages answers like the Messages API: JSON, or SSE when the body
// has "stream": true.  What it does is steered per request by directives in
// the last message's text (they pass through any gateway unchanged):
//   [[tokens:N]]        N text deltas (default 5; env STUB_TOKENS)
//   [[delay:MS]]        MS between deltas (default 0; env STUB_DELAY_MS)
//   [[headers-delay:MS]] wait MS before sending the response head
//   [[status:N]]        answer HTTP N with an Anthropic error body
//   [[fail:K]]          with [[status:N]]: only the first K requests carrying
//                       the same message fail; later ones succeed
//   [[retry-after:S]]   a retry-after header on errors
//   [[error-type:T]] [[error-message:M]]  the error body's type and message
//   [[cut:N]]           drop the connection after N deltas
//   [[stall:N]]         after N deltas send nothing more, keep the connection
//   [[malformed:N]]     after N deltas send an event whose data is not JSON
//   [[error-event:N]]   after N deltas send an overloaded_error event, end
//   [[big-event]]       one 2 MiB text delta
//   [[reply-bytes:N]]   the reply text is N bytes (JSON or one delta per KiB)
//   [[multiline]]       deltas hold line breaks; [[unicode]] non-ASCII text
//   [[done-text]]       the second delta is "[DONE]\n[DONE]"
//   [[markdown]]        a reply with a fenced code block and a <script> tag
//   [[tool-use:NAME]]   first a sentence, then a call of tool NAME with
//                       {"city": "Paris"} (stop_reason tool_use)
// A last message holding tool_result blocks is answered "The tool said:
// <their text>".  Image blocks are counted in the log (images).
//   [[usage:IN,OUT,CC,CR]] usage numbers (input, output, cache creation/read)
//   [[no-stop]]         end the stream politely without message_stop
//   [[thinking:MS]]     pings only for MS before the first delta
//   [[server-tools:K,T]] K web searches, each bringing T input tokens: a
//                       stream shows a server_tool_use block for each and
//                       reports the input (as the API does) in
//                       message_delta; count_tokens cannot know of them
//
// POST /v1/messages/count_tokens: {"input_tokens": N}, N being what the
// same message reports at message_start ([[usage:IN,..]] included).
// GET /v1/models (limit, after_id, before_id) and GET /v1/models/ID: the
// models below, paged as the API pages them; env STUB_MODELS_STATUS makes
// both answer that status instead.
// GET /log: every request seen, with whether the client hung up early.
// GET /stats: counts, and replies in progress.  POST /reset: forget the log.
'use strict';
const http = require('http');

const TOKENS = +(process.env.STUB_TOKENS || 5);
const DELAY = +(process.env.STUB_DELAY_MS || 0);
const port = +(process.argv[2] || process.env.PORT || 0);
const quiet = !!process.env.STUB_QUIET;

let log = [];
let connections = 0, requests = 0, open = 0;	// open: replies in progress
const failures = new Map();   // message text -> failures served

function directives(text) {
  const d = {};
  for (const m of text.matchAll(/\[\[([a-z-]+)(?::([^\]]*))?\]\]/g))
    d[m[1]] = m[2] === undefined ? true : m[2];
  return d;
}

function textOf(i, d) {
  if (d.multiline) return `line${i}\n\nnext${i}\n`;
  if (d.unicode) return `ünï${i} 日本語 🚀 `;
  return `tok${i} `;
}

function sse(res, event, obj) {
  return res.write(`event: ${event}\ndata: ${JSON.stringify(obj)}\n\n`);
}

function lastMessage(body) {
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  const last = msgs.length ? msgs[msgs.length - 1] : {};
  return typeof last.content === 'string' ? last.content : JSON.stringify(last.content || '');
}

// The input a message is billed, before any server tool brings more.
function inputOf(said, d) {
  return d.usage ? (+String(d.usage).split(',')[0] || 0) : 10 + Math.floor(said.length / 4);
}

function countTokens(res, body, entry) {
  const said = lastMessage(body);
  entry.count_tokens = true;
  entry.message = said;
  const bad = ['max_tokens', 'stream', 'temperature', 'metadata'].filter(k => k in body);
  if (bad.length) {
    res.writeHead(400, {'content-type': 'application/json'});
    entry.status = 400;
    return res.end(JSON.stringify({type: 'error', error: {type: 'invalid_request_error',
      message: `${bad[0]}: Extra inputs are not permitted`}}));
  }
  entry.status = 200;
  res.writeHead(200, {'content-type': 'application/json', 'request-id': `req_stub_${entry.n}`});
  res.end(JSON.stringify({input_tokens: inputOf(said, directives(said))}));
}

const MODELS = [
  ['claude-opus-4-6', 'Claude Opus 4.6', '2026-02-05T00:00:00Z'],
  ['claude-sonnet-4-6', 'Claude Sonnet 4.6', '2026-02-17T00:00:00Z'],
  ['claude-haiku-4-5', 'Claude Haiku 4.5', '2025-10-15T00:00:00Z'],
  ['claude-sonnet-4-5', 'Claude Sonnet 4.5', '2025-09-29T00:00:00Z'],
  ['claude-opus-4-1', 'Claude Opus 4.1', '2025-08-05T00:00:00Z'],
].map(([id, display_name, created_at]) => ({type: 'model', id, display_name, created_at}));

function models(req, res, entry) {
  const url = new URL(req.url, 'http://stub');
  entry.models = url.pathname;
  entry.query = url.search;
  entry.api_key = req.headers['x-api-key'] || null;
  entry.version = req.headers['anthropic-version'] || null;
  const json = (status, obj) => {
    entry.status = status;
    res.writeHead(status, {'content-type': 'application/json', 'request-id': `req_stub_${entry.n}`});
    res.end(JSON.stringify(obj));
  };
  if (process.env.STUB_MODELS_STATUS)
    return json(+process.env.STUB_MODELS_STATUS, {type: 'error', error: {type: 'api_error', message: 'models unavailable'}});
  const one = url.pathname.slice('/v1/models/'.length);
  if (url.pathname.startsWith('/v1/models/')) {
    const m = MODELS.find(x => x.id === one);
    return m ? json(200, m) : json(404, {type: 'error', error: {type: 'not_found_error', message: `model: ${one}`}});
  }
  const limit = +(url.searchParams.get('limit') || 20);
  let from = 0;
  const after = url.searchParams.get('after_id');
  if (after) from = MODELS.findIndex(x => x.id === after) + 1;
  const data = MODELS.slice(from, from + limit);
  json(200, {data, has_more: from + limit < MODELS.length,
    first_id: data.length ? data[0].id : null, last_id: data.length ? data[data.length - 1].id : null});
}

function handle(req, res, body, entry) {
  const said = lastMessage(body);
  const d = directives(said);
  entry.message = said;
  entry.turns = (Array.isArray(body.messages) ? body.messages : []).map(m =>
    `${m.role}:${typeof m.content === 'string' ? m.content : JSON.stringify(m.content)}`);
  if (body.system !== undefined) entry.system = body.system;
  entry.model = body.model;
  entry.max_tokens = body.max_tokens;
  entry.stream = !!body.stream;
  entry.api_key = req.headers['x-api-key'] || null;
  entry.version = req.headers['anthropic-version'] || null;

  let status = +(req.headers['x-stub-status'] || d.status || 200);
  if (status !== 200 && d.fail !== undefined) {
    const n = failures.get(said) || 0;
    if (n >= +d.fail) status = 200; else failures.set(said, n + 1);
  }
  const n = +(d.tokens !== undefined ? d.tokens : TOKENS);
  const delay = +(d.delay !== undefined ? d.delay : DELAY);
  const model = body.model || 'stub-model';
  let usage = {input_tokens: inputOf(said, d), output_tokens: n,
               cache_creation_input_tokens: 0, cache_read_input_tokens: 0};
  if (d.usage) {
    const [a, b, c, e] = String(d.usage).split(',').map(Number);
    usage = {input_tokens: a || 0, output_tokens: b || 0,
             cache_creation_input_tokens: c || 0, cache_read_input_tokens: e || 0};
  }
  const [searches, perSearch] = d['server-tools'] ? String(d['server-tools']).split(',').map(Number) : [0, 0];
  const startInput = usage.input_tokens;
  usage.input_tokens += searches * perSearch;
  if (searches) usage.server_tool_use = {web_search_requests: searches};
  let words;
  if (d['big-event']) words = ['x'.repeat(2 * 1024 * 1024)];
  else if (d['reply-bytes']) {
    const total = +d['reply-bytes'];
    words = [];
    for (let left = total; left > 0; left -= 1024) words.push('y'.repeat(Math.min(1024, left)));
  } else words = Array.from({length: n}, (_, i) => textOf(i, d));
  if (d['done-text'] && words.length > 1) words[1] = '[DONE]\n[DONE]';
  if (d.markdown) words = ['Here:\n\n', '```js\nlet x = "<b>";\n```\n', '<script>window.pwned = 1</script> **bold**'];
  const lastContent = (Array.isArray(body.messages) && body.messages.length &&
    Array.isArray(body.messages[body.messages.length - 1].content)) ? body.messages[body.messages.length - 1].content : [];
  const results = lastContent.filter(b => b.type === 'tool_result');
  entry.images = (Array.isArray(body.messages) ? body.messages : []).flatMap(m => Array.isArray(m.content) ? m.content : [])
    .filter(b => b.type === 'image').map(b => b.source && b.source.type);
  if (body.tools) entry.tools = body.tools.map(t => t.name);
  if (body.tool_choice) entry.tool_choice = body.tool_choice;
  if (body.stop_sequences) entry.stop_sequences = body.stop_sequences;
  if (body.temperature !== undefined) entry.temperature = body.temperature;
  if (results.length) {
    const said = results.map(r => typeof r.content === 'string' ? r.content :
      (r.content || []).map(c => c.text || '').join('')).join(' | ');
    words = [`The tool said: ${said}`];
    entry.tool_results = results.map(r => r.tool_use_id);
  }
  const tool = d['tool-use'] && !results.length ? String(d['tool-use']) : null;
  if (tool) words = ['Let me look. '];
  const stopReason = tool ? 'tool_use' : 'end_turn';
  entry.text = words.join('');

  const go = () => {
    if (res.destroyed) return;
    if (status !== 200) {
      const type = d['error-type'] || (status === 529 ? 'overloaded_error' : status === 429 ?
        'rate_limit_error' : status === 400 ? 'invalid_request_error' : status === 401 ?
        'authentication_error' : status === 404 ? 'not_found_error' : 'api_error');
      const h = {'content-type': 'application/json', 'request-id': `req_stub_${entry.n}`};
      if (d['retry-after']) h['retry-after'] = String(d['retry-after']);
      res.writeHead(status, h);
      entry.status = status;
      return res.end(JSON.stringify({type: 'error', error: {type, message: d['error-message'] || type}}));
    }
    entry.status = 200;
    const rl = {'anthropic-ratelimit-requests-limit': '1000', 'anthropic-ratelimit-requests-remaining': '999',
                'request-id': `req_stub_${entry.n}`};
    if (!body.stream) {
      res.writeHead(200, {'content-type': 'application/json', ...rl});
      entry.deltas = words.length;
      const content = [{type: 'text', text: words.slice(0, Math.ceil(words.length / 2)).join('')},
                  {type: 'text', text: words.slice(Math.ceil(words.length / 2)).join('')}];
      if (tool) content.push({type: 'tool_use', id: 'toolu_stub_1', name: tool, input: {city: 'Paris'}});
      return res.end(JSON.stringify({
        id: 'msg_stub', type: 'message', role: 'assistant', model, content,
        stop_reason: stopReason, stop_sequence: null, usage}));
    }
    res.writeHead(200, {'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...rl});
    sse(res, 'message_start', {type: 'message_start', message: {id: 'msg_stub', type: 'message',
      role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null,
      usage: {input_tokens: startInput, output_tokens: 1,
              cache_creation_input_tokens: usage.cache_creation_input_tokens,
              cache_read_input_tokens: usage.cache_read_input_tokens}}});
    let block = 0;
    for (let k = 0; k < searches; k++) {
      sse(res, 'content_block_start', {type: 'content_block_start', index: block,
        content_block: {type: 'server_tool_use', id: `srvtoolu_${k}`, name: 'web_search', input: {}}});
      sse(res, 'content_block_stop', {type: 'content_block_stop', index: block++});
      sse(res, 'content_block_start', {type: 'content_block_start', index: block,
        content_block: {type: 'web_search_tool_result', tool_use_id: `srvtoolu_${k}`, content: []}});
      sse(res, 'content_block_stop', {type: 'content_block_stop', index: block++});
    }
    sse(res, 'content_block_start', {type: 'content_block_start', index: block, content_block: {type: 'text', text: ''}});
    sse(res, 'ping', {type: 'ping'});
    let i = 0;
    const at = (k) => d[k] !== undefined && i === +d[k];
    const finish = () => {
      sse(res, 'content_block_stop', {type: 'content_block_stop', index: block});
      if (tool) {
        sse(res, 'content_block_start', {type: 'content_block_start', index: ++block,
          content_block: {type: 'tool_use', id: 'toolu_stub_1', name: tool, input: {}}});
        for (const piece of ['{"ci', 'ty": "Par', 'is"}'])
          sse(res, 'content_block_delta', {type: 'content_block_delta', index: block,
            delta: {type: 'input_json_delta', partial_json: piece}});
        sse(res, 'content_block_stop', {type: 'content_block_stop', index: block});
      }
      sse(res, 'message_delta', {type: 'message_delta', delta: {stop_reason: stopReason, stop_sequence: null},
        usage: searches ? {input_tokens: usage.input_tokens, output_tokens: usage.output_tokens,
          server_tool_use: usage.server_tool_use} : {output_tokens: usage.output_tokens}});
      if (!d['no-stop']) sse(res, 'message_stop', {type: 'message_stop'});
      entry.completed = true;
      res.end();
    };
    const step = () => {
      if (res.destroyed) return;
      if (at('cut')) { entry.cut = true; return res.destroy(); }
      if (at('stall')) { entry.stalled = true; return; }
      if (at('malformed')) { res.write('event: content_block_delta\ndata: {"type": "content_block_delta", oops\n\n'); entry.completed = true; return res.end(); }
      if (at('error-event')) { sse(res, 'error', {type: 'error', error: {type: 'overloaded_error', message: 'Overloaded'}}); entry.completed = true; return res.end(); }
      if (i >= words.length) return finish();
      sse(res, 'content_block_delta', {type: 'content_block_delta', index: block, delta: {type: 'text_delta', text: words[i++]}});
      entry.deltas = i;
      entry.last_delta_at = Date.now();
      if (delay > 0) setTimeout(step, delay); else setImmediate(step);
    };
    if (d.thinking) {
      const until = Date.now() + +d.thinking;
      const ping = () => {
        if (res.destroyed) return;
        if (Date.now() >= until) return step();
        sse(res, 'ping', {type: 'ping'});
        setTimeout(ping, 200);
      };
      ping();
    } else step();
  };
  if (d['headers-delay']) setTimeout(go, +d['headers-delay']); else go();
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, {'content-type': 'application/json'});
    return res.end(JSON.stringify({connections, requests, open}));
  }
  if (req.method === 'GET' && req.url === '/log') {
    res.writeHead(200, {'content-type': 'application/json'});
    return res.end(JSON.stringify(log));
  }
  if (req.method === 'POST' && req.url === '/reset') {
    log = []; failures.clear(); requests = 0;
    res.writeHead(204); return res.end();
  }
  if (req.method === 'GET' && /^\/v1\/models(\/|\?|$)/.test(req.url)) {
    requests++;
    const entry = {n: requests, t: Date.now()};
    log.push(entry);
    return models(req, res, entry);
  }
  if (req.method !== 'POST' || (req.url !== '/v1/messages' && req.url !== '/v1/messages/count_tokens')) {
    res.writeHead(404, {'content-type': 'application/json'});
    return res.end(JSON.stringify({type: 'error', error: {type: 'not_found_error', message: 'no such route'}}));
  }
  const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    requests++;
    const entry = {n: requests, t: Date.now(), deltas: 0, completed: false, client_closed_early: false};
    if (!quiet || log.length < 100000) log.push(entry);
    open++;
    res.on('close', () => {
      open--;
      entry.client_closed_early = !res.writableFinished && !entry.cut;
      entry.closed_at = Date.now();
    });
    let body;
    try { body = JSON.parse(Buffer.concat(chunks).toString() || '{}'); } catch (e) {
      res.writeHead(400, {'content-type': 'application/json'});
      return res.end(JSON.stringify({type: 'error', error: {type: 'invalid_request_error', message: 'bad json'}}));
    }
    if (req.url === '/v1/messages/count_tokens') {
      entry.api_key = req.headers['x-api-key'] || null;
      return countTokens(res, body, entry);
    }
    handle(req, res, body, entry);
  });
});
server.on('connection', () => connections++);
server.keepAliveTimeout = 65000;
server.headersTimeout = 70000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
