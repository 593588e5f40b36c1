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
