/* app.js — hychat's browser front end. It speaks the peer's command
 * language over one WebSocket (one message, one command line) and shows
 * the events that come back (one message, one JSON object).
 *
 * Every text that came from the network is put in the page with
 * textContent, never as HTML. */
'use strict';

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 5000;
const HISTORY_N = 1000; /* the most the peer gives: the whole conversation */
const MARK_READ_MS = 400; /* after a message in the open conversation */
const BROADCAST = '#broadcast';
const LIST_DEBOUNCE_MS = 300;
const CLOSE_POLICY = 1008; /* the bridge refused what this socket sent */
const FORBIDDEN = 403; /* an answer without this run's session cookie */
const TYPING_SEND_MS = 1000; /* this tab's "typing" at most this often (the peer: 3 s) */
/* A file sent from here: read a slice at a time, one binary message a
 * slice, no more than a window ahead of what the peer has written to disk
 * (it acknowledges each write): memory stays bounded for any size. */
const UPLOAD_CHUNK = 64 * 1024; /* the peer takes 256 KiB a message at most */
const UPLOAD_WINDOW = 1024 * 1024;
const UPLOAD_LABEL = 'upload'; /* the label of the "upload" command's answers */
const FINAL_STATES = new Set(['done', 'failed', 'rejected', 'cancelled']);

const cfg = JSON.parse(document.querySelector('meta[name="hychat-config"]').content);
const storeKey = 'hychat:' + cfg.web_port;

const $ = (id) => document.getElementById(id);

const state = {
  ws: null,
  authed: false,
  loggedIn: false,
  quit: false,
  username: cfg.username,
  convs: new Map(), /* name -> {name, messages: Map(seq -> msg), unread} */
  peers: new Map(), /* username -> peer from peer_list */
  presence: new Map(), /* username -> {state, message}, pushed by the peer */
  typing: new Map(), /* conversation -> Set of usernames typing there */
  contacts: new Map(), /* username -> {contact, blocked}, the peer's list */
  settings: {}, /* name -> value, from the peer's settings and setting events */
  typingSent: 0, /* when this tab last said the user types */
  transfers: new Map(), /* id -> the last "transfer" object or offer */
  uploads: [], /* files waiting to go to the peer, oldest first */
  upload: null, /* the one going now: {file, user, sent, acked, ready} */
  current: null,
  tab: 'channels',
  retryMs: RECONNECT_MIN_MS,
  markTimer: null,
  listTimer: null,
};

/* The session kept across reloads. */

function loadStore() {
  try {
    return JSON.parse(localStorage.getItem(storeKey)) || {};
  } catch (e) {
    return {};
  }
}

function saveStore() {
  const s = { loggedIn: state.loggedIn, username: state.username, current: state.current,
    tab: state.tab };
  localStorage.setItem(storeKey, JSON.stringify(s));
}

/* Elements. */

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls)
    e.className = cls;
  if (text !== undefined)
    e.textContent = text;
  return e;
}

/* ", relayed via HOST:PORT" and the like: how a link goes (issue 18). */
function linkPath(p) {
  if (!p.path)
    return '';
  return ', ' + p.path + (p.via ? ' via ' + p.via : '');
}

function isChannel(name) {
  return name.startsWith('#');
}

function conv(name) {
  let c = state.convs.get(name);
  if (!c) {
    c = { name, messages: new Map(), unread: 0 };
    state.convs.set(name, c);
  }
  return c;
}

/* The wire. */

function send(line) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN)
    state.ws.send(line);
  else
    notice('not connected to the peer: try again in a moment', true);
}

function connect() {
  const ws = new WebSocket('ws://' + location.host + cfg.ws_path);
  state.ws = ws;
  state.authed = false;
  setStatus('connecting');
  ws.onopen = () => {
    ws.send('auth ' + cfg.secret);
  };
  ws.onmessage = (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch (e) {
      return;
    }
    handle(ev);
  };
  ws.onclose = (e) => {
    if (state.ws !== ws)
      return;
    state.ws = null;
    state.authed = false;
    /* The peer removes what it had of a file cut short. */
    if (state.upload) {
      notice('sending ' + state.upload.file.name + ' stopped: the connection to the peer dropped', true);
      state.upload = null;
      renderTransfers();
    }
    /* The peer was started again: its secret is new, and so is the
     * page it serves. */
    if (e.code === CLOSE_POLICY && e.reason === 'wrong secret') {
      location.reload();
      return;
    }
    /* A peer started again holds a new session, and this tab's cookie
     * is of the last run: the page then says where the new address is. */
    fetch(location.pathname, { cache: 'no-store', credentials: 'same-origin' })
      .then((r) => {
        if (r.status === FORBIDDEN)
          location.reload();
      })
      .catch(() => {});
    setStatus(state.quit ? 'peer stopped' : 'reconnecting');
    setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, RECONNECT_MAX_MS);
  };
}

function requestState() {
  send('conversations');
  send('contacts');
  send('set');
  send('channels');
  send('list');
  send('transfers');
  openConversation(state.current || '#general');
  pumpUploads();
}

/* Events in: one handler per type. */

const handlers = {
  hello(ev) {
    state.authed = true;
    state.quit = false;
    state.retryMs = RECONNECT_MIN_MS;
    state.username = ev.username;
    setStatus('connected');
    if (ev.logged_in) {
      loggedIn();
    } else {
      state.loggedIn = false;
      saveStore();
      showLogin();
    }
  },
  login_result(ev) {
    if (ev.status === 'success') {
      state.username = ev.username;
      /* The original asked for its session cookie here. */
      fetch('/confirm-login', { headers: { Authorization: 'Bearer ' + cfg.secret } })
        .catch(() => {});
      loggedIn();
    } else {
      $('login-error').textContent = ev.message || 'login failed';
      $('login-submit').disabled = $('register-submit').disabled = false;
    }
  },
  register_result(ev) {
    /* On success the peer logs in with the new account: login_result. */
    if (ev.status !== 'success') {
      $('login-error').textContent = ev.message || 'registration failed';
      $('login-submit').disabled = $('register-submit').disabled = false;
    }
  },
  tracker(ev) {
    setStatus(ev.state === 'online' ? 'online' : ev.state);
  },
  chat(ev) {
    message(ev);
  },
  broadcast(ev) {
    message(ev);
  },
  delivered(ev) {
    const li = document.querySelector('li[data-id="' + CSS.escape(ev.id) + '"]');
    if (li)
      li.classList.add('delivered');
    for (const c of state.convs.values())
      for (const m of c.messages.values())
        if (m.id === ev.id)
          m.delivered = true;
  },
  /* The other side read our messages up to this one. */
  receipt(ev) {
    const li = document.querySelector('li[data-id="' + CSS.escape(ev.id) + '"]');
    if (li)
      li.classList.add('seen');
    const c = state.convs.get(ev.conversation);
    if (c)
      for (const m of c.messages.values())
        if (m.id === ev.id)
          m.seen = true;
  },
  /* An own direct message moved: pending, stored at the tracker, delivered. */
  delivery(ev) {
    const li = document.querySelector('li[data-id="' + CSS.escape(ev.id) + '"]');
    if (li)
      li.dataset.delivery = ev.state;
    const c = state.convs.get(ev.conversation);
    if (c)
      for (const m of c.messages.values())
        if (m.id === ev.id)
          m.delivery = ev.state;
  },
  /* What was said while we were away, given by the channel's members: a
   * marker above its first message. */
  backlog(ev) {
    const c = conv(ev.conversation);
    c.backlog = { seq: ev.seq, label: 'history since ' + formatTime(ev.since) };
    const li = document.querySelector('#message-list li[data-seq="' + ev.seq + '"]');
    if (li && ev.conversation === state.current)
      li.dataset.backlog = c.backlog.label;
  },
  history(ev) {
    const c = conv(ev.conversation);
    for (const m of ev.messages)
      c.messages.set(m.seq, m);
    renderLists();
    if (ev.conversation === state.current)
      renderMessages();
  },
  presence(ev) {
    state.presence.set(ev.user, { state: ev.state, message: ev.message || '' });
    if (ev.state !== 'offline' && !state.peers.has(ev.user))
      refreshPeers();
    renderLists();
  },
  /* The settings: notify and highlight matter here. */
  settings(ev) {
    for (const s of ev.settings)
      state.settings[s.name] = s.value;
  },
  setting(ev) {
    state.settings[ev.name] = ev.value;
  },
  /* The contact list, and one change to it: contacts first in Peers,
   * the blocked never listed. */
  contacts(ev) {
    state.contacts.clear();
    for (const k of ev.contacts)
      handlers.contact(k);
  },
  contact(ev) {
    if (ev.contact || ev.blocked)
      state.contacts.set(ev.user, { contact: ev.contact, blocked: ev.blocked });
    else
      state.contacts.delete(ev.user);
    if (ev.contact && !ev.blocked && ev.state)
      state.presence.set(ev.user, { state: ev.state, message: ev.message || '' });
    renderLists();
  },
  /* Someone started or stopped typing; the peer times them out. */
  typing(ev) {
    let who = state.typing.get(ev.conversation);
    if (!who)
      state.typing.set(ev.conversation, who = new Set());
    if (ev.state === 'active')
      who.add(ev.user);
    else
      who.delete(ev.user);
    renderTyping();
  },
  /* A conversation was read, in this tab or another front end. */
  read(ev) {
    conv(ev.conversation).unread = ev.unread || 0;
    renderLists();
  },
  conversation_list(ev) {
    for (const it of ev.conversations) {
      const c = conv(it.name);
      c.unread = it.name === state.current ? 0 : it.unread;
    }
    renderLists();
  },
  channel_list(ev) {
    for (const ch of ev.channels)
      if (ch.joined)
        conv('#' + ch.name.replace(/^#/, ''));
    renderLists();
  },
  channel(ev) {
    const name = ev.conversation || '#' + ev.channel;
    if (ev.joined) {
      conv(name);
    } else {
      state.convs.delete(name);
      if (state.current === name)
        openConversation('#general');
    }
    renderLists();
  },
  peer_list(ev) {
    if (ev.channel)
      return;
    state.peers.clear();
    for (const p of ev.peers)
      if (!p.self)
        state.peers.set(p.username, p);
    renderLists();
  },
  link(ev) {
    const p = state.peers.get(ev.peer);
    if (p) {
      p.link = ev.state;
      p.path = ev.path; /* direct, punched or relayed (issue 18) */
      p.via = ev.via;
      renderLists();
    } else {
      refreshPeers(); /* someone new */
    }
  },
  /* Files: an offer, a transfer's progress, the list, and this tab's
   * own upload to the peer. */
  file_offer(ev) {
    const t = state.transfers.get(ev.id) || {};
    state.transfers.set(ev.id, { ...t, id: ev.id, peer: ev.from, name: ev.name, size: ev.size,
      hash: ev.hash, direction: 'in', state: t.state || 'offered', bytes: t.bytes || 0 });
    notice(ev.from + ' offers ' + ev.name + ' (' + formatSize(ev.size) + ')', false);
    renderTransfers();
  },
  transfer(ev) {
    state.transfers.set(ev.id, ev);
    renderTransfers();
  },
  transfers(ev) {
    for (const t of ev.transfers)
      state.transfers.set(t.id, t);
    renderTransfers();
  },
  upload(ev) {
    const u = state.upload;
    if (!u || ev.state === 'cancelled') /* cancelled: the page let it go at the click */
      return;
    u.acked = ev.bytes;
    if (ev.state === 'ready') {
      u.ready = true;
    } else if (ev.state === 'sent' || ev.state === 'failed') {
      if (ev.state === 'failed')
        notice('sending ' + u.file.name + ' failed: ' + (ev.error || 'refused'), true);
      state.upload = null;
      renderTransfers();
      pumpUploads();
      return;
    }
    const bar = document.querySelector('[data-testid="upload"][data-state="uploading"] progress');
    if (bar)
      bar.value = percent(u.acked, u.file.size);
    else
      renderTransfers();
    sendSlices(u);
  },
  system(ev) {
    notice(ev.message, false);
  },
  error(ev) {
    if (ev.label === UPLOAD_LABEL && state.upload) {
      state.upload = null;
      renderTransfers();
      pumpUploads();
    }
    if (!state.loggedIn && !$('login-view').hidden) {
      $('login-error').textContent = ev.message;
      $('login-submit').disabled = $('register-submit').disabled = false;
    }
    notice(ev.message, true);
  },
  quit() {
    state.quit = true;
    setStatus('peer stopped');
  },
};

function handle(ev) {
  const h = handlers[ev.type];
  if (h)
    h(ev);
}

function loggedIn() {
  state.loggedIn = true;
  saveStore();
  showChat();
  requestState();
}

function message(ev) {
  const name = ev.conversation;
  const c = conv(name);
  const m = { seq: ev.seq, id: ev.id, from: ev.from, message: ev.message, time: ev.time,
    kind: ev.action ? 'action' : 'chat', outgoing: ev.outgoing, encrypted: ev.encrypted };
  c.messages.set(ev.seq, m);
  /* The peer counts what was not read, the same for every front end. */
  if (typeof ev.unread === 'number')
    c.unread = ev.unread;
  if (name === state.current && !document.hidden) {
    appendMessage(m);
    if (c.unread > 0)
      scheduleMarkRead();
  }
  if (!ev.outgoing && document.hidden && wanted(ev))
    notifyDesktop(ev);
  renderLists();
}

/* Notifications: a direct message, or a channel message naming the user
 * or a highlight word, while the tab is hidden, through the browser's
 * Notification API once it is allowed (asked once, at the first click). */
function mentions(text, word) {
  if (!word)
    return false;
  const t = text.toLowerCase(), w = word.toLowerCase();
  const wordChar = (ch) => /[A-Za-z0-9_]/.test(ch || '');
  for (let i = t.indexOf(w); i >= 0; i = t.indexOf(w, i + 1))
    if (!wordChar(t[i - 1]) && !wordChar(t[i + w.length]))
      return true;
  return false;
}

function wanted(ev) {
  if (!isChannel(ev.conversation))
    return true;
  const words = (state.settings.highlight || '').split(/[ \t]+/).filter(Boolean);
  return [state.username, ...words].some((w) => mentions(ev.message || '', w));
}

function notifyDesktop(ev) {
  if (state.settings.notify === 'off' || typeof Notification === 'undefined' ||
      Notification.permission !== 'granted')
    return;
  const title = isChannel(ev.conversation) ? ev.from + ' in ' + ev.conversation : ev.from;
  const n = new Notification(title, { body: ev.message, tag: ev.conversation });
  n.onclick = () => {
    window.focus();
    openConversation(ev.conversation);
  };
}

function askNotifyOnce() {
  const key = storeKey + ':notify-asked';
  if (typeof Notification === 'undefined' || Notification.permission !== 'default' ||
      localStorage.getItem(key))
    return;
  localStorage.setItem(key, '1');
  Promise.resolve(Notification.requestPermission()).catch(() => {});
}

/* The peer pushes presence; the list of addresses is asked for when
 * someone new links up or comes online, once for a burst. Nothing
 * polls. */
function refreshPeers() {
  clearTimeout(state.listTimer);
  state.listTimer = setTimeout(() => {
    if (state.authed && state.loggedIn)
      send('list');
  }, LIST_DEBOUNCE_MS);
}

/* The peer counts what was not read: tell it when the open conversation
 * got a message; every front end hears the "read" that follows. */
function scheduleMarkRead() {
  clearTimeout(state.markTimer);
  state.markTimer = setTimeout(() => {
    if (state.current)
      send('read ' + state.current);
  }, MARK_READ_MS);
}

/* Views. */

function showLogin() {
  $('chat-view').hidden = true;
  $('login-view').hidden = false;
  $('login-username').value = state.username || cfg.username;
  $('login-submit').disabled = $('register-submit').disabled = false;
  $('login-password').focus();
}

function showChat() {
  $('login-view').hidden = true;
  $('chat-view').hidden = false;
  $('me').textContent = state.username;
  showTab(state.tab);
}

function renderTyping() {
  const who = [...(state.typing.get(state.current) || [])];
  $('typing').textContent = who.length === 0 ? ''
    : who.join(', ') + (who.length > 1 ? ' are typing\u2026' : ' is typing\u2026');
}

/* A key in the composer: the peer tells the conversation, at most once
 * per 3 s; this tab asks at most once a second. */
function typed() {
  const text = $('message-input').value;
  const now = Date.now();
  if (!state.current || text === '' || text.startsWith('/') ||
      now - state.typingSent < TYPING_SEND_MS)
    return;
  state.typingSent = now;
  send('typing ' + state.current);
}

function setStatus(s) {
  const st = $('status');
  st.textContent = s;
  st.dataset.state = s;
}

function notice(text, isError) {
  const n = $('notice');
  n.textContent = text;
  n.classList.toggle('error', isError);
}

function showTab(tab) {
  state.tab = tab;
  $('tab-channels').setAttribute('aria-selected', String(tab === 'channels'));
  $('tab-peers').setAttribute('aria-selected', String(tab === 'peers'));
  $('channel-list').hidden = tab !== 'channels';
  $('peer-list').hidden = tab !== 'peers';
  if (tab === 'peers' && state.authed)
    send('list');
  saveStore();
}

function openConversation(name) {
  state.current = name;
  conv(name);
  $('conversation-title').textContent = name;
  document.title = name + ' — hychat';
  renderMessages();
  renderLists();
  renderTyping();
  saveStore();
  send('focus ' + name);
  send('history ' + name + ' ' + HISTORY_N);
  send('read ' + name);
  document.body.classList.remove('show-sidebar');
  $('message-input').focus();
}

function listItem(name, label, unread, extra) {
  const li = el('li', 'item');
  li.dataset.conversation = name;
  if (name === state.current)
    li.classList.add('current');
  const b = el('button', 'item-button');
  b.type = 'button';
  if (extra)
    b.appendChild(extra);
  b.appendChild(el('span', 'name', label));
  if (unread > 0) {
    const dot = el('span', 'dot');
    dot.dataset.testid = 'unread-dot';
    dot.title = unread + ' unread';
    b.appendChild(dot);
  }
  b.addEventListener('click', () => openConversation(name));
  li.appendChild(b);
  return li;
}

function renderLists() {
  const channels = [...state.convs.keys()].filter(isChannel).sort((a, b) => {
    if (a === BROADCAST || b === BROADCAST)
      return a === BROADCAST ? 1 : -1;
    return a.localeCompare(b);
  });
  const cl = $('channel-list');
  cl.replaceChildren(...channels.map((n) => listItem(n, n, conv(n).unread)));

  const names = new Set(state.peers.keys());
  for (const n of state.convs.keys())
    if (!isChannel(n) && n !== state.username)
      names.add(n);
  for (const [n, k] of state.contacts)
    if (k.contact)
      names.add(n);
  const isContact = (n) => {
    const k = state.contacts.get(n);
    return k && k.contact && !k.blocked ? 1 : 0;
  };
  const blocked = (n) => {
    const k = state.contacts.get(n);
    return k && k.blocked;
  };
  const pl = $('peer-list');
  pl.replaceChildren(...[...names].filter((n) => !blocked(n))
    .sort((a, b) => isContact(b) - isContact(a) || a.localeCompare(b)).map((n) => {
    const p = state.peers.get(n);
    const pushed = state.presence.get(n);
    const presence = el('span', 'presence');
    presence.dataset.testid = 'presence';
    if (pushed && pushed.state === 'away') {
      presence.classList.add('away');
      presence.title = 'away' + (pushed.message ? ': ' + pushed.message : '');
    } else if (pushed && pushed.state === 'offline' && !(p && p.link === 'up')) {
      presence.classList.add('offline');
      presence.title = 'offline';
    } else {
      presence.classList.add(p ? (p.link === 'up' ? 'up' : 'online') : pushed ? 'online' : 'offline');
      presence.title = p ? (p.link === 'up' ? 'linked' + linkPath(p) : 'online') : pushed ? 'online' : 'offline';
    }
    const c = state.convs.get(n);
    const label = p && p.display_name ? n + ' \u2014 ' + p.display_name : n;
    const li = listItem(n, label, c ? c.unread : 0, presence);
    if (p && p.status_line)
      li.title = p.status_line;
    if (isContact(n))
      li.classList.add('contact');
    return li;
  }));
  const total = [...state.convs.values()].reduce((s, c) => s + (c.unread > 0 ? 1 : 0), 0);
  $('menu-button').classList.toggle('unread', total > 0);
}

/* The peer stamps messages in its local time, without a zone, as the
 * original did; the page runs on the same host, so local it is. */
function formatTime(t) {
  if (!t)
    return '';
  const d = new Date(t.replace(/(\.\d{3})\d+/, '$1'));
  return isNaN(d) ? t : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function messageNode(m) {
  const li = el('li', 'message');
  li.dataset.seq = m.seq;
  if (m.id)
    li.dataset.id = m.id;
  li.classList.add('kind-' + (m.kind || 'chat'));
  if (m.outgoing)
    li.classList.add('outgoing');
  if (m.delivered)
    li.classList.add('delivered');
  if (m.seen)
    li.classList.add('seen');
  if (m.delivery)
    li.dataset.delivery = m.delivery;
  const c = state.current ? state.convs.get(state.current) : null;
  if (c && c.backlog && c.backlog.seq === m.seq)
    li.dataset.backlog = c.backlog.label;
  const time = el('time', 'time', formatTime(m.time));
  if (m.time)
    time.dateTime = m.time;
  li.appendChild(time);
  if (m.kind === 'system') {
    li.appendChild(el('span', 'text', m.message));
    return li;
  }
  li.appendChild(el('span', 'from', m.kind === 'action' ? '* ' + m.from : m.from));
  li.appendChild(el('span', 'text', m.message));
  if (m.encrypted === false)
    li.appendChild(el('span', 'plain', 'unencrypted'));
  return li;
}

function nearBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

function renderMessages() {
  const list = $('message-list');
  const c = state.current ? conv(state.current) : null;
  const msgs = c ? [...c.messages.values()].sort((a, b) => a.seq - b.seq) : [];
  list.replaceChildren(...msgs.map(messageNode));
  list.scrollTop = list.scrollHeight;
}

function appendMessage(m) {
  const list = $('message-list');
  const stick = nearBottom(list);
  const node = messageNode(m);
  const after = [...list.children].find((li) => Number(li.dataset.seq) > m.seq);
  const old = list.querySelector('li[data-seq="' + m.seq + '"]');
  if (old)
    old.replaceWith(node);
  else
    list.insertBefore(node, after || null);
  if (stick || m.outgoing)
    list.scrollTop = list.scrollHeight;
}

/* Files. */

function formatSize(n) {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (!(n >= 1024))
    return (n || 0) + ' B';
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ' + units[u];
}

function formatEta(left, rate) {
  if (!(rate > 0))
    return '--:--';
  const s = Math.ceil(left / rate);
  const mm = String(Math.floor(s / 60) % 60).padStart(s >= 3600 ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  return (s >= 3600 ? Math.floor(s / 3600) + ':' : '') + mm + ':' + ss;
}

function percent(bytes, size) {
  if (!size)
    return bytes > 0 ? 100 : 0;
  return bytes >= size ? 100 : Math.min(99, Math.floor(bytes * 100 / size));
}

/* Files go to one person: the open direct conversation. */
function queueFiles(files) {
  const user = state.current;
  if (!user || isChannel(user)) {
    notice('a file goes to one person: open a direct conversation first', true);
    return;
  }
  for (const file of files)
    state.uploads.push({ file, user, sent: 0, acked: 0, ready: false });
  renderTransfers();
  pumpUploads();
}

function pumpUploads() {
  if (state.upload || state.uploads.length === 0 || !state.authed || !state.ws)
    return;
  const u = state.uploads.shift();
  state.upload = u;
  u.ws = state.ws;
  send('@label=' + UPLOAD_LABEL + ' upload ' + u.user + ' ' + u.file.size + ' ' +
    u.file.name.replace(/[\r\n]+/g, ' '));
  renderTransfers();
}

async function sendSlices(u) {
  if (u.reading || !u.ready)
    return;
  u.reading = true;
  try {
    while (state.upload === u && u.sent < u.file.size && u.sent - u.acked < UPLOAD_WINDOW) {
      const end = Math.min(u.sent + UPLOAD_CHUNK, u.file.size);
      const buf = await u.file.slice(u.sent, end).arrayBuffer();
      if (state.upload !== u || state.ws !== u.ws || u.ws.readyState !== WebSocket.OPEN)
        break;
      u.ws.send(buf);
      u.sent = end;
    }
  } catch (e) {
    notice('reading ' + u.file.name + ' failed: ' + e.message, true);
    if (state.upload === u && u.ws)
      u.ws.close();
  } finally {
    u.reading = false;
  }
}

function actionButton(label, testid, line, primary) {
  const b = el('button', primary ? 'primary' : '', label);
  b.type = 'button';
  b.dataset.testid = testid;
  b.addEventListener('click', () => send(line));
  return b;
}

function transferNode(t) {
  const li = el('li', 'transfer');
  li.dataset.testid = 'transfer';
  li.dataset.id = t.id;
  li.dataset.state = t.state;
  li.dataset.direction = t.direction;
  const incoming = t.direction === 'in';
  li.appendChild(el('span', 'arrow', incoming ? '\u2190' : '\u2192'));
  li.appendChild(el('span', 'what', t.name + (incoming ? ' from ' : ' to ') + t.peer + ' (' +
    formatSize(t.size) + ')'));
  const st = el('span', 'state', t.state + (t.error ? ': ' + t.error : ''));
  st.dataset.testid = 'transfer-state';
  li.appendChild(st);
  const actions = el('span', 'actions');
  if (incoming && t.state === 'offered') {
    actions.appendChild(actionButton('Accept', 'accept', 'accept ' + t.id, true));
    actions.appendChild(actionButton('Reject', 'reject', 'reject ' + t.id));
  } else if (!FINAL_STATES.has(t.state)) {
    actions.appendChild(actionButton('Cancel', 'cancel', 'cancel ' + t.id));
  }
  li.appendChild(actions);
  const pct = t.state === 'done' ? 100 : percent(t.bytes, t.size);
  const bar = el('progress');
  bar.max = 100;
  bar.value = pct;
  bar.dataset.testid = 'transfer-progress';
  li.appendChild(bar);
  const moving = t.state === 'sending' || t.state === 'receiving';
  const detail = el('span', 'detail', pct + '%' + (moving ? ', ' + formatSize(t.rate || 0) + '/s, ' +
    formatEta((t.size || 0) - (t.bytes || 0), t.rate) + ' left' : ''));
  detail.dataset.testid = 'transfer-percent';
  li.appendChild(detail);
  return li;
}

/* Cancel on an upload's bar: one waiting leaves the queue; the one going
 * stops sending at once and the bridge drops what it spooled
 * (upload_cancel); the slices already sent reach it first, so nothing of
 * this file follows the cancel on the socket. */
function cancelUpload(u) {
  if (state.upload === u) {
    state.upload = null;
    /* Its own label: an error for it (the file was whole and offered
     * already: the transfer's Cancel stops it) must not end the next
     * upload, as an error labelled "upload" does. */
    send('@label=upload-cancel upload_cancel');
  } else {
    state.uploads = state.uploads.filter((w) => w !== u);
  }
  notice('sending ' + u.file.name + ' to ' + u.user + ' cancelled', false);
  renderTransfers();
  pumpUploads();
}

function uploadNode(u, going) {
  const li = el('li', 'transfer');
  li.dataset.testid = 'upload';
  li.dataset.state = going ? 'uploading' : 'waiting';
  li.appendChild(el('span', 'arrow', '\u2192'));
  li.appendChild(el('span', 'what', u.file.name + ' to ' + u.user + ' (' + formatSize(u.file.size) + ')'));
  li.appendChild(el('span', 'state', going ? 'handing it to the peer' : 'waiting'));
  const actions = el('span', 'actions');
  const cancel = el('button', '', 'Cancel');
  cancel.type = 'button';
  cancel.dataset.testid = 'upload-cancel';
  cancel.addEventListener('click', () => cancelUpload(u));
  actions.appendChild(cancel);
  li.appendChild(actions);
  const bar = el('progress');
  bar.max = 100;
  bar.value = percent(u.acked, u.file.size);
  li.appendChild(bar);
  li.appendChild(el('span', 'detail', percent(u.acked, u.file.size) + '%'));
  return li;
}

/* Every transfer, newest first, updated in place: a node per id. */
function renderTransfers() {
  const list = $('transfer-list');
  const nodes = [];
  if (state.upload)
    nodes.push(uploadNode(state.upload, true));
  for (const u of state.uploads)
    nodes.push(uploadNode(u, false));
  for (const t of [...state.transfers.values()].reverse())
    nodes.push(transferNode(t));
  list.replaceChildren(...nodes);
  $('transfers').hidden = nodes.length === 0;
}

/* Input. */

function submitMessage() {
  const input = $('message-input');
  const text = input.value;
  if (text.trim() === '' || !state.current)
    return;
  if (text.startsWith('/')) {
    send(text.slice(1));
  } else if (isChannel(state.current)) {
    send('sendchannel ' + state.current.slice(1) + ' ' + text);
  } else {
    send('send ' + state.current + ' ' + text);
  }
  input.value = '';
  autosize(input);
}

function autosize(t) {
  t.style.height = 'auto';
  t.style.height = Math.min(t.scrollHeight, 160) + 'px';
}

function bind() {
  const account = (command) => {
    const u = $('login-username').value.trim();
    const p = $('login-password').value;
    if (!u || !p) {
      $('login-error').textContent = 'username and password, please';
      return;
    }
    $('login-error').textContent = '';
    $('login-submit').disabled = $('register-submit').disabled = true;
    state.username = u;
    send(command + ' ' + u + ' ' + p);
    $('login-password').value = '';
  };
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    account('login');
  });
  $('register-submit').addEventListener('click', () => account('register'));
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    submitMessage();
  });
  $('message-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submitMessage();
    }
  });
  $('message-input').addEventListener('input', (e) => {
    autosize(e.target);
    typed();
  });
  $('tab-channels').addEventListener('click', () => showTab('channels'));
  $('tab-peers').addEventListener('click', () => showTab('peers'));
  $('menu-button').addEventListener('click', () => {
    document.body.classList.toggle('show-sidebar');
  });
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('join-input').value.trim().replace(/^#/, '');
    if (!name)
      return;
    send('join ' + name);
    $('join-input').value = '';
    openConversation('#' + name);
  });
  $('file-button').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', (e) => {
    queueFiles([...e.target.files]);
    e.target.value = '';
  });
  const conversation = document.querySelector('.conversation');
  conversation.addEventListener('dragover', (e) => {
    if (!e.dataTransfer || ![...e.dataTransfer.types].includes('Files'))
      return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    conversation.classList.add('dropping');
  });
  conversation.addEventListener('dragleave', (e) => {
    if (!conversation.contains(e.relatedTarget))
      conversation.classList.remove('dropping');
  });
  conversation.addEventListener('drop', (e) => {
    conversation.classList.remove('dropping');
    if (!e.dataTransfer || e.dataTransfer.files.length === 0)
      return;
    e.preventDefault();
    queueFiles([...e.dataTransfer.files]);
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.current && conv(state.current).unread > 0)
      openConversation(state.current);
  });
}

function start() {
  document.addEventListener('pointerdown', askNotifyOnce, { once: true });
  const saved = loadStore();
  bind();
  if (saved.tab)
    state.tab = saved.tab;
  if (saved.current)
    state.current = saved.current;
  /* A reload shows the chat at once; the peer's "hello" then says
   * whether it is still logged in. */
  if ((saved.loggedIn && saved.username === cfg.username) || cfg.session) {
    state.loggedIn = true;
    showChat();
  } else {
    showLogin();
  }
  connect();
}

start();
