// The chat page's readers (deploy/www/chat.js), in Node: the same SSE
// stream cut at every byte gives the same events, whatever the line ends;
// the UI message stream's chunks; Markdown that can carry no markup.
'use strict';
const t = require('../lib/tap');
const path = require('path');
const {SRC} = require('../lib/servers');
const {SseParser, UiStream, markdownTree, safeHref, explainError} = require(path.join(SRC, 'deploy/www/chat.js'));

// Bytes in, events out, the way the page reads them: TextDecoder with
// {stream: true}, so that a character cut between chunks survives.
function read(chunks) {
  const events = [];
  const p = new SseParser(e => events.push(e));
  const dec = new TextDecoder();
  for (const c of chunks) p.feed(dec.decode(c, {stream: true}));
  p.feed(dec.decode());
  return events;
}

t.main(async () => {
  const stream = ': keep-alive\n\n' +
    'data: Hello\n\n' +
    'data: ünï 日本語 🚀\n\n' +
    'data: line one\ndata: \ndata: line three\n\n' +
    'data:no space\n\n' +
    'id: 7\nretry: 10\nunknown: x\ndata:  two spaces\n\n' +
    'event: usage\ndata: {"input_tokens":4,"output_tokens":2}\n\n' +
    'event: error\ndata: {"type":"upstream_error","detail":"AI service error"}\n\n' +
    'event: ignored\n\n' +
    'data: [DONE]\n\n' +
    'data: never finished';
  const want = [
    {event: '', data: 'Hello'},
    {event: '', data: 'ünï 日本語 🚀'},
    {event: '', data: 'line one\n\nline three'},
    {event: '', data: 'no space'},
    {event: '', data: ' two spaces'},
    {event: 'usage', data: '{"input_tokens":4,"output_tokens":2}'},
    {event: 'error', data: '{"type":"upstream_error","detail":"AI service error"}'},
    {event: '', data: '[DONE]'},
  ];

  await t.test('whole, and cut at every byte', async () => {
    for (const eol of ['\n', '\r\n', '\r']) {
      const bytes = Buffer.from(stream.replace(/\n/g, eol));
      const name = JSON.stringify(eol);
      t.is(read([bytes]), want, `${name} line ends, in one piece`);
      let bad = null;
      for (let i = 1; i < bytes.length && bad === null; i++) {
        const got = read([bytes.subarray(0, i), bytes.subarray(i)]);
        if (JSON.stringify(got) !== JSON.stringify(want)) bad = i;
      }
      t.is(bad, null, `${name} line ends, cut in two at each of ${bytes.length} places`);
      t.is(read([...bytes].map(b => Uint8Array.of(b))), want, `${name} line ends, one byte at a time`);
    }
  });

  await t.test('a CR at the end of a chunk and an LF at the start of the next are one line end', async () => {
    t.is(read([Buffer.from('data: a\r'), Buffer.from('\ndata: b\r\n\r\n')]), [{event: '', data: 'a\nb'}],
      'CR | LF');
  });

  await t.test('the UI message stream', async () => {
    const got = [];
    const s = new UiStream({text: d => got.push(['text', d]), finish: (u, r) => got.push(['finish', u, r]),
      error: e => got.push(['error', e])});
    s.feed('data: {"type":"start","messageId":"m"}\n\ndata: {"type":"text-start","id":"t"}\n\n: keep-alive\n\n');
    s.feed('data: {"type":"text-delta","id":"t","delta":"a\\n[DONE]"}\n\ndata: {"type":"text-end","id":"t"}\n\n');
    s.feed('data: {"type":"finish","finishReason":"stop","messageMetadata":{"usage":{"inputTokens":3,"outputTokens":1}}}\n\n');
    t.ok(!s.done, 'not done before [DONE]');
    s.feed('data: [DONE]\n\n');
    t.is(got, [['text', 'a\n[DONE]'], ['finish', {inputTokens: 3, outputTokens: 1}, 'stop']], 'text and finish, in order');
    t.ok(s.done && s.finished, 'done');
    const e = [];
    const s2 = new UiStream({text: () => {}, finish: () => e.push('finish'), error: x => e.push(x)});
    s2.feed('data: {"type":"error","errorText":"the AI service ended the stream early"}\n\ndata: [DONE]\n\n');
    t.is(e, ['the AI service ended the stream early'], 'an error chunk, and no finish');
  });

  await t.test('Markdown without markup', async () => {
    const tags = (tree, out = []) => {
      for (const n of tree) if (typeof n !== 'string') { out.push(n.tag); tags(n.children || [], out); }
      return out;
    };
    const evil = '<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3)) ' +
      '[y](JavaScript:alert(4)) [z]( data:text/html,<b>) <a href="https://e.org">a</a>';
    const tree = markdownTree(evil);
    t.is([...new Set(tags(tree))], ['p'], 'raw HTML and unsafe links stay text: only a paragraph');
    t.is(safeHref('https://example.org/a'), 'https://example.org/a', 'https links');
    t.is([safeHref('javascript:x'), safeHref(' JAVASCRIPT:x'), safeHref('data:text/html,x'), safeHref('vbscript:x')],
      [null, null, null, null], 'no script, data or other schemes');
    const t2 = markdownTree('# Title\n\nText with `code` and **bold**.\n\n1. one\n2. two\n\n- a\n- b\n\n```c\nint x;\n```\n\n[site](https://e.org)');
    t.is(tags(t2), ['h3', 'p', 'code', 'strong', 'ol', 'li', 'li', 'ul', 'li', 'li', 'pre', 'code', 'p', 'a'],
      'headings, paragraphs, code, emphasis, lists, fenced code, links');
    t.is(markdownTree('```\nstill coming')[0].children[0].children, ['still coming'], 'an unfinished fence is code');
  });

  await t.test('errors in plain words', async () => {
    t.like(explainError(401, {detail: 'Invalid or missing bearer token'}), /token was not accepted/, '401');
    t.is(explainError(422, {detail: [{loc: ['body', 'model'], msg: "Input should be 'a'"}]}),
      "llmgw could not accept the message: model: Input should be 'a'.", '422: where and what');
    t.like(explainError(429, {detail: 'Rate limited'}, '7'), /Try again in 7 seconds\./, '429: the wait');
    t.like(explainError(503, {detail: 'AI service temporarily unavailable'}), /overloaded/, '503');
    t.like(explainError(500, null), /answered 500/, 'anything else: the status');
  });
});
