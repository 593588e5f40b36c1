/* test_webui.js — the browser front end in real headless Chromium, against
 * a real tracker and real peers on 127.0.0.1: alice runs with her web
 * bridge on (and her headless front end too), bob is headless. What a
 * user sees is asserted: the login form, a message in #general reaching
 * bob, bob's direct message with its unread dot, a reload that keeps the
 * session, a foreign page refused, markup shown as text, and the
 * headless front end and the tab seeing each other's messages. */
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const H = require('./harness');

const PW = { alice: 'alice web pw', bob: 'bob-s3cret', nina: 'nina-away-pw',
  carol: 'carol-talks-pw' };
const T = 15000; /* one step's deadline */
const S = {};

function incomingFrom(peer, type, from, text, since) {
  return peer.wait((e) => e.type === type && e.from === from && e.message === text && !e.outgoing,
    { since, timeoutMs: T, what: `${type} from ${from}: ${JSON.stringify(text)}` });
}

async function sendFromPage(page, text) {
  const input = page.getByTestId('message-input');
  await input.fill(text);
  await input.press('Enter');
}

async function messageTexts(page) {
  return page.$$eval('[data-testid="message-list"] .text', (els) => els.map((e) => e.textContent));
}

async function waitMessage(page, text) {
  await page.waitForFunction((t) =>
    [...document.querySelectorAll('[data-testid="message-list"] .text')]
      .some((e) => e.textContent === t), text, { timeout: T });
}

/* A raw WebSocket upgrade; resolves with the HTTP status (101 or not). */
function upgrade(port, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: '/ws', timeout: 5000,
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'), ...headers,
      },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(101); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', () => resolve(0)); /* refused by hanging up */
    req.on('timeout', () => { req.destroy(); reject(new Error('upgrade: no answer')); });
    req.end();
  });
}

describe('web UI', { timeout: 240000 }, () => {
  before(async () => {
    S.dir = H.tmpdir();
    S.tracker = await H.startTracker(S.dir);
    for (const [u, p] of Object.entries(PW))
      await H.register(S.tracker.port, u, p);
    S.bob = await H.startPeer('bob', S.tracker.port, S.dir, { password: PW.bob });
    /* nina's key is published; then she is gone without a word (killed):
     * the tracker still lists her, her port answers no one. */
    const nina = await H.startPeer('nina', S.tracker.port, S.dir, { password: PW.nina });
    nina.p.kill('SIGKILL');
    await nina.exited;
    /* No password: she logs in from the page. */
    S.alice = await H.startPeer('alice', S.tracker.port, S.dir, { web: true });
    S.browser = await H.launchBrowser();
    S.context = await S.browser.newContext({ viewport: { width: 1100, height: 700 } });
    S.page = await S.context.newPage();
    S.dialogs = [];
    S.page.on('dialog', (d) => { S.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    S.pageErrors = [];
    S.page.on('pageerror', (e) => S.pageErrors.push(String(e)));
  });

  after(async () => {
    const bad = [];
    if (S.browser)
      await S.browser.close();
    for (const p of [S.alice, S.bob, S.nina]) {
      if (!p)
        continue;
      const r = await p.quit();
      if (!r.clean)
        bad.push(`${p.name} exited ${r.code}/${r.sig}:\n${r.stderr.slice(-4000)}`);
    }
    if (S.tracker)
      await S.tracker.proc.stop();
    fs.rmSync(S.dir, { recursive: true, force: true });
    assert.deepEqual(bad, [], 'a peer did not exit cleanly');
  });

  test('the page logs in and shows #general and #broadcast', async () => {
    const page = S.page;
    const since = S.alice.mark();
    await H.openSession(page, S.alice);
    await page.getByTestId('login-username').waitFor({ timeout: T });
    assert.equal(await page.getByTestId('login-username').inputValue(), 'alice');
    await page.getByTestId('login-password').fill(PW.alice);
    await page.getByTestId('login-submit').click();
    await S.alice.wait((e) => e.type === 'login_result' && e.status === 'success',
      { since, timeoutMs: T, what: 'login_result' });
    const channels = page.getByTestId('channel-list');
    await channels.locator('li[data-conversation="#general"]').waitFor({ timeout: T });
    await channels.locator('li[data-conversation="#broadcast"]').waitFor({ timeout: T });
    assert.equal(await page.locator('#login-view').isHidden(), true);
    await S.alice.wait((e) => e.type === 'tracker' && e.state === 'online',
      { since, timeoutMs: T, what: 'tracker online' });
  });

  test('a message sent in #general reaches a headless peer', async () => {
    const page = S.page;
    await page.locator('[data-testid="channel-list"] li[data-conversation="#general"] button').click();
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="conversation-title"]').textContent === '#general');
    const since = S.bob.mark();
    await sendFromPage(page, 'hello #general from the browser');
    const ev = await incomingFrom(S.bob, 'broadcast', 'alice', 'hello #general from the browser', since);
    assert.equal(ev.channel, 'general');
    await waitMessage(page, 'hello #general from the browser');
  });

  test('#broadcast and a direct message are sent from the page', async () => {
    const page = S.page;
    await page.locator('[data-testid="channel-list"] li[data-conversation="#broadcast"] button').click();
    let since = S.bob.mark();
    await sendFromPage(page, 'to everyone');
    await incomingFrom(S.bob, 'broadcast', 'alice', 'to everyone', since);

    await page.getByTestId('tab-peers').click();
    const bob = page.locator('[data-testid="peer-list"] li[data-conversation="bob"] button');
    await bob.waitFor({ timeout: T });
    await bob.click();
    since = S.bob.mark();
    await sendFromPage(page, 'line one\nline two');
    await incomingFrom(S.bob, 'chat', 'alice', 'line one\nline two', since);
    await waitMessage(page, 'line one\nline two');
    /* The delivery mark: bob acknowledged it. */
    await page.locator('li.message.outgoing[data-delivery="delivered"]', { hasText: 'line one' })
      .waitFor({ timeout: T });
    /* Shift-Enter is a new line, not a send. */
    const input = page.getByTestId('message-input');
    await input.fill('first');
    await input.press('Shift+Enter');
    await input.type('second');
    assert.equal(await input.inputValue(), 'first\nsecond');
    await page.getByTestId('send-button').click();
    await incomingFrom(S.bob, 'chat', 'alice', 'first\nsecond', since);
    /* A command typed in the page: an action in the conversation shown. */
    since = S.bob.mark();
    await sendFromPage(page, '/me waves');
    const act = await incomingFrom(S.bob, 'chat', 'alice', 'waves', since);
    assert.equal(act.action, true);
    await page.getByTestId('tab-channels').click();
    await page.locator('[data-testid="channel-list"] li[data-conversation="#general"] button').click();
  });

  test('a message to a user who is away moves pending, stored, delivered', async () => {
    const page = S.page;
    await sendFromPage(page, '/msg nina opening line');
    await page.getByTestId('tab-peers').click();
    const nina = page.locator('[data-testid="peer-list"] li[data-conversation="nina"] button');
    await nina.waitFor({ timeout: T });
    await nina.click();
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="conversation-title"]').textContent === 'nina');
    const line = (text, state) =>
      page.locator(`li.message.outgoing[data-delivery="${state}"]`, { hasText: text });
    await line('opening line', 'stored').waitFor({ timeout: 30000 });
    /* In the outbox while a link is waited for, then sealed at the tracker. */
    await sendFromPage(page, 'left for later');
    await line('left for later', 'pending').waitFor({ timeout: T });
    await line('left for later', 'stored').waitFor({ timeout: 30000 });
    /* nina comes back: she takes them from her mailbox; her ack over the
     * link makes them delivered. */
    S.nina = await H.startPeer('nina', S.tracker.port, S.dir, { password: PW.nina });
    await S.nina.wait((e) => e.type === 'chat' && e.message === 'left for later',
      { timeoutMs: 30000, what: 'the stored message' });
    await line('left for later', 'delivered').waitFor({ timeout: 60000 });
    await line('opening line', 'delivered').waitFor({ timeout: T });
    await page.getByTestId('tab-channels').click();
    await page.locator('[data-testid="channel-list"] li[data-conversation="#general"] button').click();
  });

  test('a direct message from a headless peer shows an unread dot', async () => {
    const page = S.page;
    await page.getByTestId('tab-peers').click();
    S.bob.cmd('send alice are you there?');
    const dot = page.locator('[data-testid="peer-list"] li[data-conversation="bob"] [data-testid="unread-dot"]');
    await dot.waitFor({ timeout: T });
    await page.locator('[data-testid="peer-list"] li[data-conversation="bob"] button').click();
    await waitMessage(page, 'are you there?');
    await dot.waitFor({ state: 'detached', timeout: T });
    /* The whole conversation, both ways, in order. */
    const texts = await messageTexts(page);
    const i = texts.indexOf('line one\nline two'), j = texts.indexOf('are you there?');
    assert.ok(i >= 0 && j > i, `history in order: ${JSON.stringify(texts)}`);
  });

  test('typing shows both ways: bob is typing in the page, the page tells bob', async () => {
    const page = S.page; /* bob's conversation is open */
    const typing = page.getByTestId('typing');
    const t0 = Date.now();
    S.bob.cmd('typing alice');
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="typing"]').textContent === 'bob is typing\u2026',
    null, { timeout: T });
    assert.ok(Date.now() - t0 <= 1000, `shown after ${Date.now() - t0} ms`);
    /* His message clears it at once. */
    S.bob.cmd('send alice typed it');
    await waitMessage(page, 'typed it');
    assert.equal(await typing.textContent(), '');
    /* Keys in the composer reach bob as a typing event; a command does not. */
    const since = S.bob.mark();
    await page.getByTestId('message-input').pressSequentially('half a thought');
    await S.bob.wait((e) => e.type === 'typing' && e.user === 'alice' &&
      e.conversation === 'alice' && e.state === 'active',
    { since, timeoutMs: T, what: 'alice typing' });
    await page.getByTestId('message-input').fill('');
  });

  test('a message read by bob gets its second tick', async () => {
    const page = S.page; /* bob's conversation is open */
    const since = S.bob.mark();
    await sendFromPage(page, 'read me, bob');
    await S.bob.wait((e) => e.type === 'chat' && e.message === 'read me, bob',
      { since, timeoutMs: T, what: 'the message' });
    S.bob.cmd('read alice');
    await page.waitForFunction(() => [...document.querySelectorAll('li.message.seen .text')]
      .some((e) => e.textContent === 'read me, bob'), null, { timeout: T });
  });

  test('contacts come first in the Peers tab, with their presence', async () => {
    const page = S.page;
    await page.getByTestId('tab-peers').click();
    S.alice.cmd('add bob');
    const first = page.locator('[data-testid="peer-list"] li').first();
    await page.waitForFunction(() => {
      const li = document.querySelector('[data-testid="peer-list"] li');
      return li && li.dataset.conversation === 'bob' && li.classList.contains('contact') &&
        li.querySelector('[data-testid="presence"]').title !== 'offline';
    }, null, { timeout: T });
    assert.equal(await first.getAttribute('data-conversation'), 'bob');
    S.alice.cmd('remove bob');
    await page.waitForFunction(() =>
      !document.querySelector('[data-testid="peer-list"] li.contact'), null, { timeout: T });
    await page.getByTestId('tab-channels').click();
  });

  test('a hidden tab notifies a direct message and a highlight, once allowed', async () => {
    const page = S.page;
    await page.evaluate(() => {
      window.__notes = [];
      window.__realNotification = window.Notification;
      class FakeNotification {
        constructor(title, opts) { window.__notes.push({ title, body: opts.body }); }
      }
      FakeNotification.permission = 'granted';
      FakeNotification.requestPermission = () => Promise.resolve('granted');
      window.Notification = FakeNotification;
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    });
    const since = S.alice.mark();
    S.alice.cmd('set highlight deploy');
    await S.alice.wait((e) => e.type === 'setting' && e.name === 'highlight',
      { since, timeoutMs: T, what: 'the highlight setting' });
    S.bob.cmd('send alice ping while hidden');
    S.bob.cmd('sendchannel general nothing for you');
    S.bob.cmd('sendchannel general we Deploy at noon');
    await page.waitForFunction(() => window.__notes.length >= 2, null, { timeout: T });
    await new Promise((r) => setTimeout(r, 500));
    const notes = await page.evaluate(() => window.__notes);
    assert.deepEqual(notes, [
      { title: 'bob', body: 'ping while hidden' },
      { title: 'bob in #general', body: 'we Deploy at noon' },
    ]);
    await page.evaluate(() => {
      window.Notification = window.__realNotification;
      delete document.hidden;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    S.alice.cmd('set highlight ""');
  });

  test('a reload keeps the session without a new login', async () => {
    const page = S.page;
    const since = S.alice.mark();
    await page.reload();
    await page.locator('#chat-view').waitFor({ state: 'visible', timeout: T });
    assert.equal(await page.locator('#login-view').isHidden(), true);
    await page.getByTestId('status').filter({ hasText: /connected|online/ }).waitFor({ timeout: T });
    /* The conversation shown before the reload, with its history. */
    await waitMessage(page, 'are you there?');
    assert.equal(await page.getByTestId('conversation-title').textContent(), 'bob');
    assert.equal(S.alice.events.slice(since).some((e) => e.type === 'login_result'), false,
      'no new login');
    const cookies = await S.context.cookies(S.alice.url);
    const c = cookies.find((k) => k.name === `hychat_session_${S.alice.webPort}`);
    assert.ok(c, `session cookie set: ${JSON.stringify(cookies)}`);
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the cookie is HttpOnly');
  });

  test('markup in a message is shown as text', async () => {
    const page = S.page;
    const evil = '<img src=x onerror=alert(1)>';
    S.bob.cmd('send alice ' + evil);
    await waitMessage(page, evil);
    assert.equal(await page.locator('[data-testid="message-list"] img').count(), 0);
    await H.sleep(300);
    assert.deepEqual(S.dialogs, []);
  });

  test('what came while no tab was open shows unread when one opens', async () => {
    const page = S.page;
    await page.getByTestId('tab-channels').click();
    await page.locator('[data-testid="channel-list"] li[data-conversation="#general"] button').click();
    await page.goto('about:blank');
    const since = S.alice.mark();
    S.bob.cmd('send alice while you were away');
    await incomingFrom(S.alice, 'chat', 'bob', 'while you were away', since);
    await page.goto(S.alice.url);
    await page.locator('#chat-view').waitFor({ state: 'visible', timeout: T });
    assert.equal(await page.getByTestId('conversation-title').textContent(), '#general');
    await page.getByTestId('tab-peers').click();
    const bob = page.locator('[data-testid="peer-list"] li[data-conversation="bob"]');
    await bob.locator('[data-testid="unread-dot"]').waitFor({ timeout: T });
    await bob.locator('button').click();
    await waitMessage(page, 'while you were away');
    await bob.locator('[data-testid="unread-dot"]').waitFor({ state: 'detached', timeout: T });
  });

  test('the headless front end and the tab see each other\'s messages', async () => {
    const page = S.page;
    /* From the tab: the headless front end prints it. */
    let since = S.alice.mark();
    await sendFromPage(page, 'typed in the browser');
    await S.alice.wait((e) => e.type === 'chat' && e.outgoing && e.message === 'typed in the browser',
      { since, timeoutMs: T, what: 'the outgoing chat on stdout' });
    /* From stdin: the tab shows it, and bob gets it. */
    since = S.bob.mark();
    S.alice.cmd('send bob typed at the headless prompt');
    await incomingFrom(S.bob, 'chat', 'alice', 'typed at the headless prompt', since);
    await waitMessage(page, 'typed at the headless prompt');
  });

  test('a second tab sees the same conversation', async () => {
    const tab = await S.context.newPage();
    await tab.goto(S.alice.url);
    await tab.locator('#chat-view').waitFor({ state: 'visible', timeout: T });
    await waitMessage(tab, 'typed at the headless prompt');
    S.bob.cmd('send alice seen by both tabs');
    await waitMessage(tab, 'seen by both tabs');
    await waitMessage(S.page, 'seen by both tabs');
    await tab.close();
  });

  test('the token URL works once; without the cookie a tab is told where the URL is', async () => {
    const context = await S.browser.newContext();
    try {
      const tab = await context.newPage();
      /* Spent by the first test: refused, and no cookie. */
      const r = await tab.goto(S.alice.loginUrl);
      assert.equal(r.status(), 403);
      assert.match(await tab.locator('body').textContent(), /web-url/);
      assert.deepEqual(await context.cookies(S.alice.url), []);
      /* The page itself, and what it would hold: refused too. */
      const r2 = await tab.goto(S.alice.url);
      assert.equal(r2.status(), 403);
      assert.equal(await tab.locator('meta[name="hychat-config"]').count(), 0);
      const code = await tab.evaluate(() => new Promise((resolve) => {
        const ws = new WebSocket('ws://' + location.host + '/ws');
        ws.onopen = () => resolve('open');
        ws.onclose = () => resolve('closed');
        setTimeout(() => resolve('timeout'), 5000);
      }));
      assert.equal(code, 'closed', 'a WebSocket without the cookie');
    } finally {
      await context.close();
    }
  });

  test('a foreign Origin, a foreign Host and a socket without the secret are refused', async () => {
    const port = S.alice.webPort;
    const Cookie = await H.sessionCookie(S.context, S.alice);
    const own = `http://127.0.0.1:${port}`;
    assert.equal(await upgrade(port, { Origin: own, Cookie }), 101, 'own origin, the cookie');
    assert.notEqual(await upgrade(port, { Origin: own }), 101, 'no cookie');
    assert.notEqual(await upgrade(port, { Origin: 'http://evil.example', Cookie }), 101);
    assert.notEqual(await upgrade(port, { Origin: `http://evil.example:${port}`, Cookie }), 101);
    assert.notEqual(await upgrade(port, { Cookie }), 101, 'no Origin');
    assert.notEqual(await upgrade(port, { Origin: own, Host: `evil.example:${port}`, Cookie }), 101);
    assert.notEqual(await upgrade(port, { Origin: `http://localhost:${port}`, Cookie }), 101,
      'an accepted host, but not this request\'s');

    /* DNS rebinding: a page under another name must not read the secret. */
    const r = await new Promise((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/', headers: { Host: `rebind.example:${port}` } },
        (res) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve({ s: res.statusCode, b })); });
    });
    assert.equal(r.s, 403);
    assert.ok(!r.b.includes('secret'));

    /* A real page of another origin tries, in the browser. */
    const evilPort = await H.freePort();
    const evil = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>evil</title>');
    });
    await new Promise((resolve) => evil.listen(evilPort, '127.0.0.1', resolve));
    try {
      const tab = await S.context.newPage();
      await tab.goto(`http://localhost:${evilPort}/`);
      const outcome = await tab.evaluate((p) => new Promise((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${p}/ws`);
        ws.onopen = () => { ws.send('send bob from the evil page'); setTimeout(() => resolve('open'), 500); };
        ws.onerror = () => resolve('error');
        ws.onclose = () => resolve('closed');
        setTimeout(() => resolve('timeout'), 5000);
      }), port);
      assert.notEqual(outcome, 'open');
      await tab.close();
    } finally {
      evil.close();
    }

    /* The right Origin but no secret: the first command closes it. */
    const page = S.page;
    const since = S.bob.mark();
    const code = await page.evaluate(() => new Promise((resolve) => {
      const ws = new WebSocket('ws://' + location.host + '/ws');
      ws.onopen = () => ws.send('send bob sent without the secret');
      ws.onclose = (e) => resolve(e.code);
      setTimeout(() => resolve(0), 5000);
    }));
    assert.equal(code, 1008);
    await H.sleep(500);
    assert.equal(S.bob.events.slice(since).some((e) => e.message === 'sent without the secret'), false);
  });

  test('a phone-sized screen and a screenshot of the chat', async () => {
    const page = S.page;
    await page.setViewportSize({ width: 1100, height: 700 });
    await page.getByTestId('message-list').waitFor();
    const heights = await page.$$eval('[data-testid="message-list"] li',
      (els) => els.map((e) => e.getBoundingClientRect().height));
    assert.ok(heights.length > 3 && heights.every((h) => h > 0 && h < 120),
      `one message, one compact row: ${heights}`);
    const out = path.join(H.BUILD, 'webui-chat.png');
    await page.screenshot({ path: out });
    assert.ok(fs.statSync(out).size > 1000);

    await page.setViewportSize({ width: 375, height: 700 });
    const input = await page.getByTestId('message-input').boundingBox();
    assert.ok(input && input.x >= 0 && input.x + input.width <= 375, 'the composer fits');
    /* The sidebar is tucked away, to the left of the screen. */
    await page.waitForFunction(() => {
      const r = document.getElementById('sidebar').getBoundingClientRect();
      return r.x + r.width <= 1;
    }, null, { timeout: T });
    await page.locator('#menu-button').click();
    await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().x >= 0);
    await page.getByTestId('tab-channels').click();
    await page.locator('[data-testid="channel-list"] li[data-conversation="#general"] button').click();
    await waitMessage(page, 'hello #general from the browser');
    await page.waitForFunction(() => {
      const r = document.getElementById('sidebar').getBoundingClientRect();
      return r.x + r.width <= 1;
    }, null, { timeout: T });
    await page.screenshot({ path: path.join(H.BUILD, 'webui-chat-phone.png') });
    await page.setViewportSize({ width: 1100, height: 700 });
    assert.deepEqual(S.pageErrors, []);
  });

  test('what #general said while alice was away is marked where it begins', async () => {
    /* carol speaks while alice's peer is down, and leaves; bob, who was
     * there, gives it to alice when she is back. */
    const carol = await H.startPeer('carol', S.tracker.port, S.dir, { password: PW.carol });
    await carol.wait((e) => e.type === 'link' && e.state === 'up' && e.peer === 'bob',
      { timeoutMs: T, what: 'carol linked with bob' });
    const old = await S.alice.quit();
    assert.ok(old.clean, old.stderr.slice(-3000));
    const since = S.bob.mark();
    carol.cmd('sendchannel general said while alice was away');
    await incomingFrom(S.bob, 'broadcast', 'carol', 'said while alice was away', since);
    const gone = await carol.quit();
    assert.ok(gone.clean, gone.stderr.slice(-3000));
    S.alice = await H.startPeer('alice', S.tracker.port, S.dir, { web: true });
    const page = S.page;
    await H.openSession(page, S.alice);
    await page.getByTestId('login-password').fill(PW.alice);
    await page.getByTestId('login-submit').click();
    await page.locator('[data-testid="channel-list"] li[data-conversation="#general"] button').click();
    await waitMessage(page, 'said while alice was away');
    const marked = page.locator('li.message[data-backlog]', { hasText: 'said while alice was away' });
    await marked.waitFor({ timeout: T });
    assert.match(await marked.getAttribute('data-backlog'), /^history since \d\d:\d\d/);
    assert.deepEqual(S.pageErrors, []);
  });
});
