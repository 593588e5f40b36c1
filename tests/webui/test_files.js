/* test_files.js — file transfer in the page, in headless Chromium: a file
 * picked with the page's button reaches a headless peer with the same
 * hash (streamed to the bridge, spooled, offered, and the spool removed
 * once done); a file dropped on the conversation goes too; an offer from
 * the headless peer is accepted with the page's button, its progress bar
 * moves and ends at 100%, and the file arrives with the same hash; an
 * upload cancelled with the Cancel on its bar mid-send stops there: no
 * offer, nothing left in the spool, and the next file goes as usual. */
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const H = require('./harness');

const PW = { alice: 'alice files pw', bob: 'bob files pw' };
const T = 20000;
const PICKED = 8 * 1024 * 1024; /* several windows of the page's upload */
const OFFERED = 96 * 1024 * 1024; /* enough for the bar to be seen moving */
const CANCELLED = 1024 * 1024 * 1024; /* sparse: long enough to be cancelled mid-send */
const S = {};

function sha(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function makeFile(name, size) {
  const p = path.join(S.dir, 'src', name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, crypto.randomBytes(size));
  return p;
}

/* A peer whose downloads land in a directory of this test's. */
async function startPeer(name, opts) {
  const down = path.join(S.dir, 'down-' + name);
  fs.mkdirSync(down, { recursive: true });
  const saved = process.env.XDG_DOWNLOAD_DIR;
  process.env.XDG_DOWNLOAD_DIR = down;
  try {
    const peer = await H.startPeer(name, S.tracker.port, S.dir, opts);
    peer.down = path.join(down, 'hychat');
    return peer;
  } finally {
    if (saved === undefined)
      delete process.env.XDG_DOWNLOAD_DIR;
    else
      process.env.XDG_DOWNLOAD_DIR = saved;
  }
}

function spoolEntries() {
  const dir = path.join(S.alice.dataDir, 'uploads');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

async function waitFor(pred, what, timeoutMs = T) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (pred())
      return;
    await H.sleep(100);
  }
  throw new Error('no ' + what + ' within ' + timeoutMs + ' ms');
}

/* bob accepts the offer of name from alice; resolves with the done event. */
async function bobTakes(name, since) {
  const offer = await S.bob.wait((e) => e.type === 'file_offer' && e.from === 'alice' &&
    e.name === name, { since, timeoutMs: T, what: 'the offer of ' + name });
  S.bob.cmd('accept ' + offer.id);
  return S.bob.wait((e) => e.type === 'transfer' && e.id === offer.id &&
    ['done', 'failed', 'cancelled'].includes(e.state), { since, timeoutMs: 60000, what: name + ' done' });
}

describe('file transfer in the page', { timeout: 240000 }, () => {
  before(async () => {
    S.dir = H.tmpdir();
    S.tracker = await H.startTracker(S.dir);
    for (const [u, p] of Object.entries(PW))
      await H.register(S.tracker.port, u, p);
    S.bob = await startPeer('bob', { password: PW.bob });
    S.alice = await startPeer('alice', { password: PW.alice, web: true });
    S.browser = await H.launchBrowser();
    S.page = await (await S.browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
    S.pageErrors = [];
    S.page.on('pageerror', (e) => S.pageErrors.push(String(e)));
    await H.openSession(S.page, S.alice);
    await S.page.locator('#chat-view').waitFor({ state: 'visible', timeout: T });
    /* The direct conversation with bob, from the Peers tab. */
    await S.page.getByTestId('tab-peers').click();
    await S.page.locator('[data-testid="peer-list"] li[data-conversation="bob"] button').click({ timeout: T });
    await S.page.getByTestId('conversation-title').filter({ hasText: 'bob' }).waitFor({ timeout: T });
  });

  after(async () => {
    if (S.browser)
      await S.browser.close();
    for (const p of [S.alice, S.bob])
      if (p) {
        const r = await p.quit();
        assert.ok(r.clean, `${p.name} exited ${r.code}/${r.sig}:\n${r.stderr.slice(-3000)}`);
      }
    if (S.tracker)
      await S.tracker.proc.stop();
    fs.rmSync(S.dir, { recursive: true, force: true });
  });

  test('a file picked in the page reaches the other peer, and its spool goes', async () => {
    const file = makeFile('picked.bin', PICKED);
    const since = S.bob.mark();
    await S.page.getByTestId('file-input').setInputFiles(file);
    const done = await bobTakes('picked.bin', since);
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.equal(sha(path.join(S.bob.down, 'picked.bin')), sha(file));
    /* The page shows it sent, at 100%. */
    const row = S.page.locator('[data-testid="transfer"][data-direction="out"][data-state="done"]');
    await row.waitFor({ timeout: T });
    assert.equal(await row.getByTestId('transfer-progress').evaluate((p) => p.value), 100);
    /* The spooled copy is removed once its transfer has ended. */
    await waitFor(() => spoolEntries().length === 0, 'empty spool: ' + spoolEntries());
    assert.equal(fs.statSync(path.join(S.alice.dataDir, 'uploads')).mode & 0o777, 0o700);
  });

  test('a file dropped on the conversation goes too', async () => {
    const since = S.bob.mark();
    const bytes = crypto.randomBytes(300 * 1024);
    const want = crypto.createHash('sha256').update(bytes).digest('hex');
    const drop = await S.page.evaluateHandle((b64) => {
      const dt = new DataTransfer();
      const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([raw], 'dropped.bin'));
      return dt;
    }, bytes.toString('base64'));
    await S.page.dispatchEvent('.conversation', 'dragover', { dataTransfer: drop });
    await S.page.dispatchEvent('.conversation', 'drop', { dataTransfer: drop });
    const done = await bobTakes('dropped.bin', since);
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.equal(sha(path.join(S.bob.down, 'dropped.bin')), want);
  });

  test('an upload cancelled mid-send stops: no offer, an empty spool, the next goes', async () => {
    const big = path.join(S.dir, 'src', 'cancelled.bin');
    fs.mkdirSync(path.dirname(big), { recursive: true });
    fs.closeSync(fs.openSync(big, 'w'));
    fs.truncateSync(big, CANCELLED); /* a hole: the page reads zeros fast */
    const since = S.bob.mark();
    await S.page.getByTestId('file-input').setInputFiles(big);
    const row = S.page.locator('[data-testid="upload"][data-state="uploading"]');
    /* Mid-send: some bytes spooled, far from all. */
    await waitFor(() => spoolEntries().length === 1, 'a spool directory');
    const incoming = () => {
      const d = path.join(S.alice.dataDir, 'uploads', spoolEntries()[0] || '-', '.incoming');
      return fs.existsSync(d) ? fs.statSync(d).size : 0;
    };
    await waitFor(() => incoming() > 0, 'spooled bytes');
    const value = await row.locator('progress').evaluate((p) => p.value);
    assert.ok(value < 100, 'the upload ended before the cancel: ' + value);
    await row.getByTestId('upload-cancel').click({ timeout: T });
    await row.waitFor({ state: 'detached', timeout: T });
    /* The bridge drops what it spooled; nothing is offered. */
    await waitFor(() => spoolEntries().length === 0, 'empty spool: ' + spoolEntries());
    await H.sleep(1000);
    assert.ok(!S.bob.events.slice(since).some((e) => e.type === 'file_offer' &&
      e.name === 'cancelled.bin'), 'bob was offered the cancelled file');
    /* The socket goes on: the next file is sent whole. */
    const next = makeFile('after-cancel.bin', 200 * 1024);
    const since2 = S.bob.mark();
    await S.page.getByTestId('file-input').setInputFiles(next);
    const done = await bobTakes('after-cancel.bin', since2);
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.equal(sha(path.join(S.bob.down, 'after-cancel.bin')), sha(next));
    assert.deepEqual(S.pageErrors, []);
  });

  test('an offer is accepted in the page: the bar moves and ends at 100%', async () => {
    const file = makeFile('offered.bin', OFFERED);
    /* Every value the bar of the incoming transfer takes. */
    await S.page.evaluate(() => {
      window.seenValues = [];
      new MutationObserver(() => {
        for (const p of document.querySelectorAll(
          '[data-testid="transfer"][data-direction="in"] [data-testid="transfer-progress"]'))
          window.seenValues.push(p.value);
      }).observe(document.getElementById('transfer-list'), { childList: true, subtree: true });
    });
    S.bob.cmd('sendfile alice ' + file);
    const row = S.page.locator('[data-testid="transfer"][data-direction="in"]');
    await row.getByTestId('accept').click({ timeout: T });
    await S.page.locator('[data-testid="transfer"][data-direction="in"][data-state="done"]')
      .waitFor({ timeout: 60000 });
    assert.equal(await row.getByTestId('transfer-progress').evaluate((p) => p.value), 100);
    assert.match(await row.getByTestId('transfer-percent').textContent(), /^100%/);
    const seen = await S.page.evaluate(() => window.seenValues);
    assert.ok(seen.some((v) => v > 0 && v < 100), 'the bar never moved: ' + JSON.stringify(seen));
    assert.equal(sha(path.join(S.alice.down, 'offered.bin')), sha(file));
    assert.deepEqual(S.pageErrors, []);
  });
});
