// The chat page's SSE reader (deploy/www/chat.js), in Node: the same
// stream cut at every byte gives the same events, whatever the line ends.
'use strict';
const t = require('../lib/tap');
const path = require('path');
const {SRC} = require('../lib/servers');
const {SseParser, explainError} = require(path.join(SRC, 'deploy/www/chat.js'));

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

  await t.test('errors in plain words', async () => {
    t.like(explainError(401, {detail: 'Invalid or missing bearer token'}), /token was not accepted/, '401');
    t.is(explainError(422, {detail: [{loc: ['body', 'model'], msg: "Input should be 'a'"}]}),
      "llmgw could not accept the message: model: Input should be 'a'.", '422: where and what');
    t.like(explainError(429, {detail: 'Rate limited'}, '7'), /Try again in 7 seconds\./, '429: the wait');
    t.like(explainError(503, {detail: 'AI service temporarily unavailable'}), /overloaded/, '503');
    t.like(explainError(500, null), /answered 500/, 'anything else: the status');
  });
});
