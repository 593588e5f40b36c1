/* test_bridge.js — the web bridge's edges, in Chromium and over raw
 * sockets: the forms of --web and --web-listen and what they print, an
 * account created from the page, a wrong password, the original's
 * /www/chat.html behind the one-time URL's cookie, /confirm-login
 * without the secret, binary and
 * oversized messages, and a peer that stops while tabs are open. */
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const { after, before, describe, test } = require('node:test');

const H = require('./harness');

const T = 15000;
const S = {};

/* Waits for a line on a peer's stderr. */
async function stderrMatch(peer, re, timeoutMs = T) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = peer.stderr.match(re);
    if (m)
      return m;
    if (peer.exitCode !== null)
      break;
    await H.sleep(50);
  }
  throw new Error(`${peer.name}: no ${re} on stderr:\n${peer.stderr}`);
}

/* A peer port whose web port (+10000) is free too. */
async function portPair() {
  for (let i = 0; i < 50; i++) {
    const p = await H.freePort();
    if (p + 10000 > 65535)
      continue;
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.on('error', () => resolve(false));
      s.listen(p + 10000, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free)
      return p;
  }
  throw new Error('no free port pair');
}

function peerArgs(name, port, extra) {
  return [H.binary('hychat'), '--headless', '--username', name, '--peer-port', String(port),
    '--listen', '127.0.0.1', '--tracker', `http://127.0.0.1:${S.tracker.port}`,
    '--data-dir', `${S.dir}/peer-${name}`, ...extra];
}

/* A client-to-server text frame (masked, RFC 6455 5.3). */
function textFrame(text) {
  const payload = Buffer.from(text);
  const mask = crypto.randomBytes(4);
  assert.ok(payload.length < 126);
  const head = Buffer.from([0x81, 0x80 | payload.length]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([head, mask, body]);
}

/* A WebSocket on a raw socket, upgraded with the page's Origin and the
 * session cookie. */
function rawSocket(port, cookie) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: '/ws', timeout: 5000,
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
        Origin: `http://127.0.0.1:${port}`, Cookie: cookie,
      },
    });
    req.on('upgrade', (res, socket) => resolve(socket));
    req.on('response', (res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

async function stopClean(peer) {
  const r = await peer.quit();
  assert.ok(r.clean, `${peer.name} exited ${r.code}/${r.sig}:\n${r.stderr.slice(-3000)}`);
}

describe('web bridge', { timeout: 240000 }, () => {
  before(async () => {
    S.dir = H.tmpdir();
    S.tracker = await H.startTracker(S.dir);
    await H.register(S.tracker.port, 'dave', 'dave pass 1');
    S.browser = await H.launchBrowser();
  });

  after(async () => {
    if (S.browser)
      await S.browser.close();
    if (S.tracker)
      await S.tracker.proc.stop();
    fs.rmSync(S.dir, { recursive: true, force: true });
  });

  test('--web alone serves on the peer port + 10000 and prints the address', async () => {
    const port = await portPair();
    const peer = new H.Peer('dave', peerArgs('dave', port, ['--web']));
    try {
      const m = await stderrMatch(peer,
        /web bridge: ((http:\/\/127\.0\.0\.1:(\d+)\/)\?token=[0-9a-f]{64}) \(open it once; also in (\S+)\)/);
      assert.equal(Number(m[3]), port + 10000);
      assert.equal(m[4], `${S.dir}/peer-dave/web-url`);
      assert.equal(fs.statSync(m[4]).mode & 0o777, 0o600);
      assert.equal(H.readLoginUrl(`${S.dir}/peer-dave`), m[1], 'the file holds the logged URL');
      await H.waitPort(port + 10000, peer.p);
      const refused = await fetch(m[2] + 'www/chat.html');
      assert.equal(refused.status, 403);
      assert.doesNotMatch(await refused.text(), /secret/);
      const cookie = await H.tokenCookie(m[1]);
      const r = await fetch(m[2] + 'www/chat.html', { headers: { cookie } });
      assert.equal(r.status, 200);
      const html = await r.text();
      assert.match(html, /name="hychat-config" content="\{&quot;username&quot;:&quot;dave&quot;/);
      assert.match(r.headers.get('content-security-policy'), /script-src 'self'/);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.equal((await fetch(m[2] + 'nothing-here.js')).status, 404);
      assert.equal((await fetch(m[2] + 'app.js')).headers.get('content-type'),
        'text/javascript; charset=utf-8');
      const c = await fetch(m[2] + 'confirm-login');
      assert.equal(c.status, 403);
      assert.equal(c.headers.get('set-cookie'), null);
    } finally {
      await stopClean(peer);
    }
  });

  test('--web PORT, --web=PORT, --web-listen with a warning off loopback, a port taken', async () => {
    const port = await H.freePort(), web = await H.freePort();
    let peer = new H.Peer('dave', peerArgs('dave', port, ['--web', String(web)]));
    try {
      await stderrMatch(peer, new RegExp(`web bridge: http://127\\.0\\.0\\.1:${web}/`));
    } finally {
      await stopClean(peer);
    }
    peer = new H.Peer('dave', peerArgs('dave', port, [`--web-listen=0.0.0.0:${web}`]));
    try {
      await stderrMatch(peer, /not loopback/);
      await stderrMatch(peer, new RegExp(`web bridge: http://127\\.0\\.0\\.1:${web}/`));
      await H.waitPort(web, peer.p);
      assert.equal((await fetch(`http://127.0.0.1:${web}/`)).status, 403);
      const cookie = await H.tokenCookie(H.readLoginUrl(`${S.dir}/peer-dave`));
      assert.equal((await fetch(`http://127.0.0.1:${web}/`, { headers: { cookie } })).status, 200);
    } finally {
      await stopClean(peer);
    }
    const bad = new H.Peer('dave', peerArgs('dave', port, ['--web-listen', 'example.org:80']));
    assert.equal((await bad.exited).code, 1);
    assert.match(bad.stderr, /not an IP address/);

    /* A web port already taken is a start-up error, not a silent page. */
    const taken = net.createServer();
    await new Promise((resolve) => taken.listen(web, '127.0.0.1', resolve));
    try {
      const busy = new H.Peer('dave', peerArgs('dave', port, [`--web=${web}`]));
      assert.equal((await busy.exited).code, 1);
      assert.match(busy.stderr, new RegExp(`web bridge: 127\\.0\\.0\\.1 port ${web}: Address already in use`));
    } finally {
      taken.close();
    }
  });

  test('an account is created from the page; a wrong password is shown', async () => {
    const peer = await H.startPeer('erin', S.tracker.port, S.dir, { web: true });
    const page = await S.browser.newPage();
    try {
      await H.openSession(page, peer);
      await page.getByTestId('login-password').fill('not the password');
      await page.getByTestId('login-submit').click();
      await page.getByTestId('login-error').filter({ hasText: /./ }).waitFor({ timeout: T });
      assert.equal(await page.locator('#chat-view').isHidden(), true);

      await page.getByTestId('login-password').fill('erin pass 1');
      await page.getByTestId('register-submit').click();
      await page.locator('[data-testid="channel-list"] li[data-conversation="#general"]')
        .waitFor({ timeout: T });
      await peer.wait((e) => e.type === 'login_result' && e.status === 'success',
        { timeoutMs: T, what: 'login_result' });
    } finally {
      await page.close();
      await stopClean(peer);
    }
  });

  test('binary and oversized messages are refused; "quit" and a restart', async () => {
    const peer = await H.startPeer('dave', S.tracker.port, S.dir,
      { web: true, password: 'dave pass 1' });
    const page = await S.browser.newPage();
    let peer2 = null;
    try {
      await H.openSession(page, peer);
      await page.locator('#chat-view').waitFor({ state: 'visible', timeout: T });
      const secret = await page.evaluate(() =>
        JSON.parse(document.querySelector('meta[name="hychat-config"]').content).secret);
      assert.match(secret, /^[0-9a-f]{64}$/);

      const binary = await page.evaluate((s) => new Promise((resolve) => {
        const ws = new WebSocket('ws://' + location.host + '/ws');
        ws.onopen = () => { ws.send('auth ' + s); ws.send(new Uint8Array([1, 2, 3])); };
        ws.onclose = (e) => resolve(e.code);
        setTimeout(() => resolve(0), 5000);
      }), secret);
      assert.equal(binary, 1008);

      const since = peer.mark();
      const big = await page.evaluate((s) => new Promise((resolve) => {
        const ws = new WebSocket('ws://' + location.host + '/ws');
        ws.onopen = () => { ws.send('auth ' + s); ws.send('send nobody ' + 'x'.repeat(70000)); };
        ws.onmessage = (m) => {
          const ev = JSON.parse(m.data);
          if (ev.type === 'error')
            resolve(ev.message);
        };
        setTimeout(() => resolve(''), 5000);
      }), secret);
      assert.match(big, /too long/);
      await peer.wait((e) => e.type === 'error' && /too long/.test(e.message),
        { since, timeoutMs: T, what: 'the error on stdout too' });

      /* "quit" from a tab stops the peer, cleanly, with the tabs open. */
      const status = page.getByTestId('status');
      await page.getByTestId('message-input').fill('/quit');
      await page.getByTestId('message-input').press('Enter');
      await status.filter({ hasText: 'peer stopped' }).waitFor({ timeout: T });
      const { code } = await peer.exited;
      assert.equal(code, 0);

      /* Started again on the same ports: the cookie was of the last
       * run, so the tab finds it has no session and shows where the new
       * address is; opened, the tab is back in the chat. */
      peer2 = await H.startPeer('dave', S.tracker.port, S.dir,
        { web: true, password: 'dave pass 1', port: peer.port, webPort: peer.webPort });
      await page.waitForFunction(() => /web-url/.test(document.body.textContent),
        null, { timeout: 30000 });
      assert.equal(await page.locator('meta[name="hychat-config"]').count(), 0);
      await H.openSession(page, peer2);
      await page.getByTestId('status').filter({ hasText: /connected|online/ })
        .waitFor({ timeout: T });
      await page.locator('#chat-view').waitFor({ state: 'visible', timeout: T });
    } finally {
      await page.close();
      await stopClean(peer);
      if (peer2)
        await stopClean(peer2);
    }
  });

  test('a socket that never presents the secret is closed; 64 at most', async () => {
    const peer = await H.startPeer('dave', S.tracker.port, S.dir, { web: true });
    const socks = [];
    try {
      const cookie = await H.tokenCookie(peer.loginUrl);
      const closedAt = [];
      const t0 = Date.now();
      for (let i = 0; i < 64; i++) {
        const sock = await rawSocket(peer.webPort, cookie);
        sock.on('close', () => closedAt.push(Date.now() - t0));
        sock.on('error', () => {});
        socks.push(sock);
      }
      await assert.rejects(rawSocket(peer.webPort, cookie), 'the 65th is refused');
      const deadline = Date.now() + T;
      while (closedAt.length < 64 && Date.now() < deadline)
        await H.sleep(100);
      assert.equal(closedAt.length, 64, 'every silent socket was closed');
      assert.ok(Math.min(...closedAt) >= 3000, `not before the timeout: ${Math.min(...closedAt)} ms`);
      (await rawSocket(peer.webPort, cookie)).destroy(); /* and a place is free again */
    } finally {
      for (const s of socks)
        s.destroy();
      await stopClean(peer);
    }
  });

  test('a tab that stops reading is cut off, not allowed to grow', async () => {
    const peer = await H.startPeer('dave', S.tracker.port, S.dir,
      { web: true, password: 'dave pass 1' });
    try {
      const cookie = await H.tokenCookie(peer.loginUrl);
      const html = await (await fetch(peer.url, { headers: { cookie } })).text();
      const secret = html.match(/&quot;secret&quot;:&quot;([0-9a-f]+)&quot;/)[1];
      const sock = await rawSocket(peer.webPort, cookie);
      sock.write(textFrame('auth ' + secret));
      await H.sleep(200);
      sock.pause(); /* and read nothing more */
      let closed = false;
      sock.on('close', () => { closed = true; });
      /* Each "help" is an answer of 1.4 KB, to the socket that asked
       * alone: 67 MB of them is more than this one may hold (32 MiB)
       * plus what the kernel's socket buffers take (several MB on
       * loopback). Standard output sees none of them. */
      const n = 48000, since = peer.mark();
      for (let i = 0; i < n; i++)
        sock.write(textFrame('@label=h' + i + ' help'));
      await stderrMatch(peer, /more than \d+ bytes behind: closing it/, 60000);
      assert.equal(peer.events.slice(since).filter((e) => e.type === 'help').length, 0,
        'the tab\'s answers went to standard output');
      sock.resume();
      const deadline = Date.now() + T;
      while (!closed && Date.now() < deadline)
        await H.sleep(50);
      assert.ok(closed, 'the server closed the socket');
      assert.equal(peer.exitCode, null, 'the peer lives on');
    } finally {
      await stopClean(peer);
    }
  });
});
