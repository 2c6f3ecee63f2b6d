// The chat page (deploy/www) in real Chromium, driven by playwright-core,
// served by lighttpd next to llmgw, against the stub sending a token every
// 200 ms: text appears as it streams, arrives exactly, the conversation
// goes with each message, Markdown shows safely, Stop cancels the
// upstream, errors read as plain words.
'use strict';
const t = require('../lib/tap');
const fs = require('fs');
const path = require('path');
const {waitFor} = require('../lib/http');
const {setup, usageRow, SRC, TOKEN} = require('../lib/servers');

const CHROMIUM = process.env.LLMGW_CHROMIUM || '/usr/bin/chromium';

function playwright() {
  try { return require('playwright-core'); } catch (e) { return null; }
}

t.main(async () => {
  const pw = playwright();
  if (!fs.existsSync(CHROMIUM))
    t.skipAll(`no Chromium at ${CHROMIUM} (Debian package chromium)`);
  if (!pw)
    t.skipAll('playwright-core is not installed (npm install in tests/)');

  const {dir, stub, srv, db} = await setup('browser', {
    docroot: path.join(SRC, 'deploy/www'),
    conf: {retries: 0},
  });
  const browser = await pw.chromium.launch({executablePath: CHROMIUM, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']});
  t.onCleanup(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', e => pageErrors.push(String(e)));
  page.on('console', m => { if (m.type() === 'error') pageErrors.push(m.text()); });
  const requests = [];
  page.on('request', r => requests.push(r.url()));

  const last = (sel) => page.locator(sel).last();
  const replies = () => page.locator('.exchange').count();
  // Send a message and wait until its exchange is on the page.
  async function send(message) {
    const before = await replies();
    await page.fill('#message', message);
    await page.click('#send');
    await page.waitForFunction(n => document.querySelectorAll('.exchange').length > n, before);
    return page.locator('.exchange').last();
  }
  const finished = (ex) => ex.locator('.usage, .error').first().waitFor({timeout: 20000});
  const lastStub = async () => { const l = await stub.log(); return l[l.length - 1]; };

  await t.test('the page, and the token asked for once', async () => {
    const r = await page.goto(srv.base + '/');
    t.is(r.status(), 200, 'lighttpd serves the page at /');
    t.ok(await page.isVisible('#token-form'), 'it asks for the token');
    await page.fill('#token', TOKEN);
    await page.click('#token-form button[type=submit]');
    t.ok(await page.isVisible('#chat-form'), 'then shows the message box');
    t.is(await page.evaluate(() => sessionStorage.getItem('llmgw-token')), TOKEN, 'kept in sessionStorage');
    await page.reload();
    t.ok(await page.isVisible('#chat-form'), 'not asked again after a reload');
  });

  await t.test('streams as it arrives, multi-line text exact', async () => {
    const n = 5;
    const ex = await send(`[[multiline]] [[tokens:${n}]] [[delay:200]]`);
    await ex.locator('.reply').filter({hasText: /\S/}).waitFor({timeout: 10000});
    const atFirst = await lastStub();
    t.ok(!atFirst.completed && atFirst.deltas < n,
      `first words on the page when the stub had sent ${atFirst.deltas} of ${n} deltas`);
    await finished(ex);
    let want = '';
    for (let i = 0; i < n; i++) want += `line${i}\n\nnext${i}\n`;
    t.is(await ex.locator('.reply').getAttribute('data-text'), want, 'final text exactly the stub\'s');
    t.is(await ex.locator('.reply p').count(), n + 1, 'shown as paragraphs (a blank line between)');
    t.like(await ex.locator('.usage').textContent(), /tokens in, \d+ out .*first words after \d+ ms/,
      'usage and time to first words shown');
    t.is(await ex.locator('.error').count(), 0, 'no error');
  });

  await t.test('non-ASCII text exact', async () => {
    const ex = await send('[[unicode]] [[tokens:4]] [[delay:200]]');
    await finished(ex);
    t.is(await ex.locator('.reply').getAttribute('data-text'), 'ünï0 日本語 🚀 ünï1 日本語 🚀 ünï2 日本語 🚀 ünï3 日本語 🚀 ',
      'final text exactly the stub\'s');
    t.is(await page.inputValue('#message'), '', 'the box is cleared once answered');
  });

  await t.test('a three-turn conversation, then a new one', async () => {
    await page.click('#new');
    t.is(await replies(), 0, 'New conversation clears the page');
    for (const m of ['First. [[tokens:2]]', 'Second. [[tokens:1]]', 'Third. [[tokens:1]]'])
      await finished(await send(m));
    const turns = (await lastStub()).turns;
    t.is(turns, ['user:First. [[tokens:2]]', 'assistant:tok0 tok1 ', 'user:Second. [[tokens:1]]', 'assistant:tok0 ',
      'user:Third. [[tokens:1]]'], 'the third message went with the whole conversation');
    await page.click('#new');
    await finished(await send('Afresh. [[tokens:1]]'));
    t.is((await lastStub()).turns, ['user:Afresh. [[tokens:1]]'], 'after New conversation, only the new message');
  });

  await t.test('Markdown, safely: a code block, a <script> that stays text', async () => {
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    const ex = await send('[[markdown]]');
    await finished(ex);
    t.is(await ex.locator('.reply pre code').textContent(), 'let x = "<b>";', 'a fenced code block, its text as it was');
    t.is(await ex.locator('.reply strong').textContent(), 'bold', 'emphasis');
    t.is(await ex.locator('.reply script, .reply b').count(), 0, 'no element from the model\'s text');
    t.like(await ex.locator('.reply').textContent(), /<script>window\.pwned = 1<\/script>/, 'the tag shown as text');
    t.is(await page.evaluate(() => window.pwned), undefined, 'and never run');
    await ex.locator('.reply .copy').click();
    t.is(await page.evaluate(() => navigator.clipboard.readText()), 'let x = "<b>";', 'Copy puts the code on the clipboard');
  });

  await t.test('Stop aborts, llmgw cancels the upstream, usage shows the disconnect', async () => {
    const ex = await send('[[tokens:100]] [[delay:200]]');
    await ex.locator('.reply').filter({hasText: /\S/}).waitFor({timeout: 10000});
    await page.click('#stop');
    await ex.locator('.error').waitFor({timeout: 5000});
    t.like(await ex.locator('.error').textContent(), /Stopped/, 'the page says it stopped');
    const id = await ex.getAttribute('data-request-id');
    t.ok(id, `request id ${id} kept on the exchange`);
    const u = await usageRow(db, id);
    t.ok(u && u.disconnected === 1 && u.partial === 1, 'usage row: disconnected, partial',
      JSON.stringify(u));
    const up = await waitFor(async () => { const e = await lastStub(); return e.client_closed_early ? e : null; }, 5000);
    t.ok(up && up.deltas < 100, `upstream transfer cancelled after ${up && up.deltas} of 100 deltas`);
    t.ok(await page.isEnabled('#send'), 'Send is ready again');
  });

  await t.test('errors in plain words', async () => {
    let ex = await send('[[status:529]]');
    await finished(ex);
    t.like(await ex.locator('.error').textContent(), /overloaded/, '503: overloaded');
    t.is(await page.inputValue('#message'), '[[status:529]]', 'the message stays in the box');
    ex = await send('[[status:429]] [[retry-after:7]]');
    await finished(ex);
    t.like(await ex.locator('.error').textContent(), /Too many requests.*Try again in 7 seconds/, '429: when to retry');
    await page.click('summary');
    await page.fill('#max-tokens', '999999');
    ex = await send('hello');
    await finished(ex);
    t.like(await ex.locator('.error').textContent(), /could not accept the message: max_tokens: Input should be less than or equal to 128000/,
      '422: the detail, located');
    await page.fill('#max-tokens', '');
  });

  await t.test('a wrong token shows the error and asks again', async () => {
    await page.click('#forget');
    await page.fill('#token', 'not-the-token');
    await page.click('#token-form button[type=submit]');
    const ex = await send('hello there');
    await finished(ex);
    t.like(await ex.locator('.error').textContent(), /token was not accepted/, '401 in plain words');
    t.ok(await page.isVisible('#token-form'), 'the token is asked for again');
    t.is(await page.evaluate(() => sessionStorage.getItem('llmgw-token')), null, 'the wrong token is forgotten');
    await page.fill('#token', TOKEN);
    await page.click('#token-form button[type=submit]');
    t.is(await page.inputValue('#message'), 'hello there', 'the message was not lost');
  });

  await t.test('nothing from elsewhere, no script errors', async () => {
    const shot = path.join(dir, 'chat-page.png');
    await page.screenshot({path: shot, fullPage: true});
    const keep = path.join(process.env.LLMGW_BUILDDIR || SRC, 'tests/integration/browser-screenshot.png');
    fs.copyFileSync(shot, keep);
    t.ok(fs.statSync(keep).size > 1000, `screenshot in ${path.relative(SRC, keep)}`);
    const foreign = requests.filter(u => !u.startsWith(srv.base));
    t.is(foreign, [], 'every request went to the same server');
    t.is(pageErrors.filter(e => !/Failed to load resource/.test(e)), [], 'no script errors');
  });
});
