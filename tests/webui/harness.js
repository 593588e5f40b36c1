/* harness.js — what the browser tests stand on: a tracker, headless
 * hychat peers (commands on stdin, events read from stdout), a peer with
 * its web bridge on, and Debian's Chromium driven by playwright-core.
 * Everything listens on 127.0.0.1, on ports and in directories of its
 * own, and every process is stopped by the pid this harness started. */
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const SOURCE = process.env.HYCHAT_SOURCE || path.resolve(__dirname, '..', '..');
const BUILD = process.env.HYCHAT_BUILD || path.join(SOURCE, 'build');
const CHROMIUM = process.env.HYCHAT_CHROMIUM || '/usr/bin/chromium';

function binary(name) {
  const sub = { 'hychat-tracker': 'tracker', hychat: 'peer' }[name];
  return path.join(BUILD, 'src', sub, name);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitPort(port, proc, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null)
      throw new Error(`process exited with ${proc.exitCode} before listening on ${port}`);
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('connect', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok)
      return;
    await sleep(30);
  }
  throw new Error(`nothing listens on port ${port}`);
}

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hychat-webui-test-'));
}

/* A process of ours, with its stderr kept for the failure message. */
class Proc {
  constructor(args, opts = {}) {
    this.args = args;
    this.stderr = '';
    this.p = spawn(args[0], args.slice(1), {
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: opts.env || process.env,
    });
    this.exited = new Promise((resolve) => this.p.on('exit', (code, sig) => resolve({ code, sig })));
    this.p.stderr.setEncoding('utf8');
    this.p.stderr.on('data', (d) => { this.stderr += d; });
  }

  get exitCode() {
    return this.p.exitCode;
  }

  async stop(timeoutMs = 15000) {
    if (this.p.exitCode === null && this.p.signalCode === null) {
      this.p.kill('SIGTERM');
      const t = setTimeout(() => this.p.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(t);
    }
    return this.exited;
  }
}

async function startTracker(dir) {
  const port = await freePort();
  const proc = new Proc([binary('hychat-tracker'), '--listen', `127.0.0.1:${port}`, '--quiet',
    '--db', path.join(dir, 'tracker.db')]);
  await waitPort(port, proc);
  return { proc, port };
}

async function register(trackerPort, username, password) {
  const r = await fetch(`http://127.0.0.1:${trackerPort}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (r.status !== 201 && r.status !== 409)
    throw new Error(`register ${username}: ${r.status} ${await r.text()}`);
}

/* A hychat peer: commands on its stdin, every event it prints kept in
 * order; wait() finds one with a deadline. */
class Peer extends Proc {
  constructor(name, args, env) {
    super(args, { stdin: true, env });
    this.name = name;
    this.events = [];
    this.waiters = [];
    let rest = '';
    this.p.stdout.setEncoding('utf8');
    this.p.stdout.on('data', (d) => {
      rest += d;
      let nl;
      while ((nl = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        let ev;
        try {
          ev = JSON.parse(line);
        } catch (e) {
          ev = { type: 'unparsable', line };
        }
        this.events.push(ev);
        this.wake();
      }
    });
    this.p.on('exit', () => this.wake());
  }

  wake() {
    for (const w of this.waiters.slice())
      w();
  }

  cmd(line) {
    this.p.stdin.write(line + '\n');
  }

  mark() {
    return this.events.length;
  }

  wait(pred, { since = 0, timeoutMs = 10000, what = 'an event' } = {}) {
    return new Promise((resolve, reject) => {
      let i = since;
      const check = () => {
        for (; i < this.events.length; i++)
          if (pred(this.events[i])) {
            done();
            resolve(this.events[i]);
            return;
          }
        if (this.p.exitCode !== null || this.p.signalCode !== null) {
          done();
          reject(new Error(`${this.name} exited while waiting for ${what}:\n${this.stderr.slice(-3000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        const last = this.events.slice(-8).map((e) => JSON.stringify(e).slice(0, 300));
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; last events:\n  ` +
          last.join('\n  ') + '\nstderr:\n' + this.stderr.slice(-3000)));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }

  /* Stops with "quit" and says whether it exited cleanly under the
   * sanitizers. */
  async quit(timeoutMs = 15000) {
    if (this.p.exitCode === null && this.p.signalCode === null) {
      this.cmd('quit');
      const t = setTimeout(() => this.p.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(t);
    }
    const { code, sig } = await this.exited;
    const bad = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error/.test(this.stderr);
    return { code, sig, clean: code === 0 && !bad, stderr: this.stderr };
  }
}

async function startPeer(name, trackerPort, dir,
  { password, web = false, extra = [], port = null, webPort = null } = {}) {
  port = port || await freePort();
  const args = [binary('hychat'), '--headless', '--username', name, '--peer-port', String(port),
    '--listen', '127.0.0.1', '--tracker', `http://127.0.0.1:${trackerPort}`,
    '--data-dir', path.join(dir, 'peer-' + name)];
  if (web) {
    webPort = webPort || await freePort();
    args.push(`--web=${webPort}`, '--web-root', path.join(SOURCE, 'webui'));
  }
  args.push(...extra);
  const env = { ...process.env };
  delete env.HYCHAT_PASSWORD;
  env.XDG_CONFIG_HOME = path.join(dir, 'peer-' + name, 'config'); // never the user's own
  if (password)
    env.HYCHAT_PASSWORD = password;
  const peer = new Peer(name, args, env);
  peer.port = port;
  peer.webPort = webPort;
  peer.dataDir = path.join(dir, 'peer-' + name);
  peer.url = webPort ? `http://127.0.0.1:${webPort}/` : null;
  if (webPort) {
    await waitPort(webPort, peer.p);
    peer.loginUrl = readLoginUrl(peer.dataDir);
  }
  if (password)
    await peer.wait((e) => e.type === 'tracker' && e.state === 'online',
      { timeoutMs: 20000, what: 'tracker online' });
  return peer;
}

/* The one-time URL the peer wrote for its user (hychat(1), "Web
 * bridge"): the page and /ws need the cookie it gives. */
function readLoginUrl(dataDir) {
  const url = fs.readFileSync(path.join(dataDir, 'web-url'), 'utf8').trim();
  if (!/\?token=[0-9a-f]{64}$/.test(url))
    throw new Error(`web-url holds no token URL: ${url}`);
  return url;
}

/* Opens the peer's one-time URL in page, as its user would: the peer
 * sets the session cookie and sends the tab on to the page itself. */
async function openSession(page, peer) {
  await page.goto(peer.loginUrl);
  if (page.url() !== peer.url)
    throw new Error(`the token URL led to ${page.url()}, not ${peer.url}`);
}

/* The session cookie of a browser context, as a Cookie header. */
async function sessionCookie(context, peer) {
  const c = (await context.cookies(peer.url)).find((k) => k.name === `hychat_session_${peer.webPort}`);
  if (!c)
    throw new Error('no session cookie in the browser');
  return `${c.name}=${c.value}`;
}

/* Outside a browser: spends the token URL for the session cookie, as a
 * Cookie header. */
async function tokenCookie(loginUrl) {
  const r = await fetch(loginUrl, { redirect: 'manual' });
  const set = r.headers.get('set-cookie');
  if (r.status !== 303 || !set)
    throw new Error(`the token URL answered ${r.status} ${set}`);
  return set.split(';')[0];
}

async function launchBrowser() {
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true });
}

module.exports = {
  BUILD, SOURCE, Proc, Peer, binary, freePort, launchBrowser, openSession, readLoginUrl,
  register, sessionCookie, sleep, tokenCookie, startPeer, startTracker, tmpdir, waitPort,
};
