/* test_tui_web.js — the terminal client and a browser tab on one peer at
 * once: carol runs hychat on a terminal (tmux, a private server of this
 * test's own) with --web, a Chromium tab opens her page with the
 * one-time address /web shows (on a terminal wide enough for it on one
 * line), bob is headless. A message typed in the tab shows on the
 * terminal, one typed on the terminal shows in the tab, and bob gets
 * both. */
'use strict';

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const H = require('./harness');

const T = 15000;
const PW = { carol: 'carol pass 1', bob: 'bob pass 1' };
const S = {};
const TMUX_SOCKET = `hychat-webui-${process.pid}`;

function tmux(...args) {
  const env = { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
  delete env.TMUX;
  return execFileSync('tmux', ['-L', TMUX_SOCKET, '-f', '/dev/null', ...args],
    { env, timeout: 10000, encoding: 'utf8' });
}

function shellQuote(s) {
  return "'" + s.replace(/'/g, "'\\''") + "'";
}

async function screenHas(text, timeoutMs = T) {
  const deadline = Date.now() + timeoutMs;
  let screen = '';
  while (Date.now() < deadline) {
    screen = tmux('capture-pane', '-p', '-J', '-t', 'carol');
    if (screen.includes(text))
      return screen;
    await H.sleep(100);
  }
  throw new Error(`no ${JSON.stringify(text)} on the terminal; it shows:\n${screen}`);
}

async function waitMessage(page, text) {
  await page.waitForFunction((t) =>
    [...document.querySelectorAll('[data-testid="message-list"] .text')]
      .some((e) => e.textContent === t), text, { timeout: T });
}

describe('terminal and browser on one peer', { timeout: 180000 }, () => {
  before(async () => {
    S.dir = H.tmpdir();
    S.tracker = await H.startTracker(S.dir);
    for (const [u, p] of Object.entries(PW))
      await H.register(S.tracker.port, u, p);
    S.bob = await H.startPeer('bob', S.tracker.port, S.dir, { password: PW.bob });
    S.port = await H.freePort();
    S.webPort = await H.freePort();
    S.log = path.join(S.dir, 'carol.stderr');
    const cmd = ['env', `HYCHAT_PASSWORD=${PW.carol}`, H.binary('hychat'),
      '--username', 'carol', '--peer-port', String(S.port), '--listen', '127.0.0.1',
      '--tracker', `http://127.0.0.1:${S.tracker.port}`,
      '--data-dir', path.join(S.dir, 'peer-carol'),
      `--web=${S.webPort}`, '--web-root', path.join(H.SOURCE, 'webui')]
      .map(shellQuote).join(' ') + ' 2>' + shellQuote(S.log) +
      '; echo $? >' + shellQuote(S.log + '.status');
    tmux('new-session', '-d', '-s', 'carol', '-x', '200', '-y', '32', cmd);
    tmux('set-option', '-t', 'carol', 'remain-on-exit', 'on');
    await H.waitPort(S.webPort);
    S.browser = await H.launchBrowser();
    S.page = await S.browser.newPage({ viewport: { width: 1000, height: 650 } });
  });

  after(async () => {
    if (S.browser)
      await S.browser.close();
    try {
      tmux('kill-server');
    } catch (e) {
      /* already gone */
    }
    if (S.bob)
      await S.bob.quit();
    if (S.tracker)
      await S.tracker.proc.stop();
    fs.rmSync(S.dir, { recursive: true, force: true });
  });

  test('/web shows the one-time address, and a new one once it was used', async () => {
    const url = `http://127.0.0.1:${S.webPort}/`;
    const file = H.readLoginUrl(path.join(S.dir, 'peer-carol'));
    const tokenUrl = new RegExp(url.replace(/[.]/g, '\\.') + '\\?token=[0-9a-f]{64}', 'g');
    tmux('send-keys', '-t', 'carol', '-l', '/web');
    tmux('send-keys', '-t', 'carol', 'Enter');
    let screen = await screenHas(file);
    /* Opened in the browser: the page, without the token in its address. */
    await S.page.goto(file);
    assert.equal(S.page.url(), url);
    /* Again in the same browser: on to the page; in another: refused. */
    await S.page.goto(file);
    assert.equal(S.page.url(), url);
    const stranger = await S.browser.newContext();
    try {
      const r = await (await stranger.newPage()).goto(file);
      assert.equal(r.status(), 403, 'the address worked twice');
      assert.deepEqual(await stranger.cookies(url), []);
    } finally {
      await stranger.close();
    }
    /* Spent: /web makes another, which a second browser can use once. */
    tmux('send-keys', '-t', 'carol', '-l', '/web');
    tmux('send-keys', '-t', 'carol', 'Enter');
    const deadline = Date.now() + T;
    let fresh = null;
    while (!fresh && Date.now() < deadline) {
      screen = tmux('capture-pane', '-p', '-J', '-t', 'carol');
      fresh = (screen.match(tokenUrl) || []).find((u) => u !== file) || null;
      if (!fresh)
        await H.sleep(100);
    }
    assert.ok(fresh, `no new address on the terminal:\n${screen}`);
    const other = await S.browser.newContext();
    try {
      const tab = await other.newPage();
      await tab.goto(fresh);
      assert.equal(tab.url(), url);
      await tab.locator('#chat-view').waitFor({ state: 'visible', timeout: T });
    } finally {
      await other.close();
    }
  });

  test('a message from either front end shows in the other', async () => {
    const page = S.page;
    /* Every frame the tab sends and receives, for the answers below. */
    S.frames = [];
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => S.frames.push({ sent: true, text: String(f.payload) }));
      ws.on('framereceived', (f) => S.frames.push({ sent: false, text: String(f.payload) }));
    });
    await page.goto(`http://127.0.0.1:${S.webPort}/`);
    await page.locator('#chat-view').waitFor({ state: 'visible', timeout: T });
    await page.locator('[data-testid="channel-list"] li[data-conversation="#general"] button')
      .click();
    await page.getByTestId('status').filter({ hasText: /online|connected/ }).waitFor({ timeout: T });

    /* The tab to the terminal (and to bob). */
    let since = S.bob.mark();
    await page.getByTestId('message-input').fill('typed in the tab');
    await page.getByTestId('message-input').press('Enter');
    await S.bob.wait((e) => e.type === 'broadcast' && e.message === 'typed in the tab',
      { since, timeoutMs: T, what: 'the tab\'s message at bob' });
    await screenHas('typed in the tab');

    /* The terminal to the tab (and to bob). */
    since = S.bob.mark();
    tmux('send-keys', '-t', 'carol', '-l', '/sendchannel general typed on the terminal');
    tmux('send-keys', '-t', 'carol', 'Enter');
    await S.bob.wait((e) => e.type === 'broadcast' && e.message === 'typed on the terminal',
      { since, timeoutMs: T, what: 'the terminal\'s message at bob' });
    await waitMessage(page, 'typed on the terminal');

    /* bob to both. */
    S.bob.cmd('sendchannel general bob to both');
    await waitMessage(page, 'bob to both');
    await screenHas('bob to both');

    /* The terminal's queries are answered to the terminal alone: a
     * /history typed there, a scroll back (a labelled page of history),
     * /who and /fingerprint bring the tab no answer of theirs. */
    const mark = S.frames.length;
    for (const keys of ['/history #general', '/who', '/fingerprint bob']) {
      tmux('send-keys', '-t', 'carol', '-l', keys);
      tmux('send-keys', '-t', 'carol', 'Enter');
    }
    tmux('send-keys', '-t', 'carol', 'PPage');
    await screenHas('history of #general');
    await screenHas('key of bob');
    await H.sleep(500);
    const seen = S.frames.slice(mark);
    const asked = seen.filter((f) => f.sent).map((f) => f.text).join('\n');
    for (const f of seen.filter((x) => !x.sent)) {
      const ev = JSON.parse(f.text);
      if (!['history', 'peer_list', 'fingerprint', 'error'].includes(ev.type))
        continue;
      assert.ok(ev.type === 'history' && asked.includes('history') ||
        ev.type === 'peer_list' && /list|who/.test(asked),
        `the tab got the terminal's answer ${f.text}; it asked:\n${asked}`);
    }

    /* A conversation read in the page is read in the terminal within a
     * second: the engine owns the unread counts and tells every front
     * end. The terminal's left pane shows bob's count until then. */
    const unreadRow = /^\s*\d+\s+bob\s+\d+\s*│/m;
    S.bob.cmd('send carol for the page to read');
    const deadline0 = Date.now() + T;
    let pane = '';
    while (!unreadRow.test(pane) && Date.now() < deadline0) {
      pane = tmux('capture-pane', '-p', '-t', 'carol');
      await H.sleep(100);
    }
    assert.match(pane, unreadRow, 'bob\'s message is not counted unread on the terminal');
    await page.getByTestId('tab-peers').click();
    await page.locator('[data-testid="peer-list"] li[data-conversation="bob"] button').click();
    const readAt = Date.now();
    while (unreadRow.test(pane) && Date.now() - readAt < 1000) {
      await H.sleep(50);
      pane = tmux('capture-pane', '-p', '-t', 'carol');
    }
    assert.doesNotMatch(pane, unreadRow, 'read in the page, still unread on the terminal 1 s on');

    /* bob goes away: the engine pushes it to the terminal's member list
     * and to the page at once (neither holds a poll timer), and back. */
    S.bob.cmd('away gone fishing');
    await screenHas('bob (away)', 5000);
    await page.locator('[data-testid="peer-list"] li[data-conversation="bob"] .presence.away')
      .waitFor({ state: 'attached', timeout: 5000 });
    assert.equal(await page.locator('[data-testid="peer-list"] li[data-conversation="bob"] ' +
      '.presence').getAttribute('title'), 'away: gone fishing');
    S.bob.cmd('back');
    await page.locator('[data-testid="peer-list"] li[data-conversation="bob"] .presence.away')
      .waitFor({ state: 'detached', timeout: 5000 });
    const backDeadline = Date.now() + 5000;
    while (tmux('capture-pane', '-p', '-t', 'carol').includes('bob (away)') &&
           Date.now() < backDeadline)
      await H.sleep(100);
    assert.ok(!tmux('capture-pane', '-p', '-t', 'carol').includes('bob (away)'));
    await page.getByTestId('tab-channels').click();

    /* /quit on the terminal: the tab hears it, the process ends cleanly. */
    tmux('send-keys', '-t', 'carol', '-l', '/quit');
    tmux('send-keys', '-t', 'carol', 'Enter');
    await page.getByTestId('status').filter({ hasText: 'peer stopped' }).waitFor({ timeout: T });
    const deadline = Date.now() + T;
    while (!fs.existsSync(S.log + '.status') && Date.now() < deadline)
      await H.sleep(100);
    await H.sleep(100);
    const status = fs.readFileSync(S.log + '.status', 'utf8').trim();
    const stderr = fs.readFileSync(S.log, 'utf8');
    assert.equal(status, '0', `exit status; stderr:\n${stderr.slice(-3000)}`);
    assert.doesNotMatch(stderr, /AddressSanitizer|LeakSanitizer|runtime error/);
  });
});
