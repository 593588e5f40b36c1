#!/usr/bin/env python3
"""The sealed mailbox (issue 17): the tracker's /mailbox routes with their
limits, answers and expiry, and then real peers: messages to an offline
user sealed, deposited, fetched once each in order, the tracker's database
holding neither text nor sender, altered and replayed blobs refused, and
delivery marks moving pending -> stored -> delivered.

HYTEST_STORE=redis runs every case against trackers on a real redis-server
(HYTEST_STORE=redis-cluster: on one-node Redis Clusters): what the SQLite
cases read or alter in the database is read or altered in the mailbox's
Redis keys instead."""
import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import case, request, run  # noqa: E402
from peer_harness import (login, register, start_peer, start_tracker, stop_checked,  # noqa: E402
                          tracker_redis)
from redis_harness import store_mode  # noqa: E402

REDIS = store_mode() != "sqlite"

S = {"procs": []}
PW = {"alice": "alice-mail-pw", "bob": "bob-mail-pw", "carol": "carol-mail-pw"}


def setup():
    S["dir"] = tempfile.mkdtemp(prefix="hychat-mailbox-test-")


def teardown(_):
    try:
        for p in S.get("peers", []):
            if p.alive():
                p.kill()
        for p in S["procs"]:
            if p.alive():
                p.stop()
    finally:
        shutil.rmtree(S["dir"], ignore_errors=True)


def tracker(name, extra=()):
    """A fresh tracker with its own database, alice, bob and carol registered."""
    d = os.path.join(S["dir"], name)
    os.makedirs(d)
    p, port = start_tracker(d, extra=["--kdf-cost", "min"] + list(extra))
    S["procs"].append(p)
    tokens = {}
    for user, pw in PW.items():
        register(port, user, pw)
        tokens[user] = login(port, user, pw)
    return p, port, tokens, os.path.join(d, "tracker.db")


def rcmd(db, *args):
    server, n = tracker_redis(db)
    return server.cmd(*args, db=n, raw=True)


def mail_count(db):
    """The messages the store holds, for everyone."""
    if REDIS:  # every mailbox
        return sum(rcmd(db, "HLEN", k) for k in rcmd(db, "KEYS", "hy:mb:*"))
    con = sqlite3.connect(db)
    n = con.execute("SELECT count(*) FROM mailbox").fetchone()[0]
    con.close()
    return n


def mail_index(db):
    """The entries of Redis's expiry index, in all its buckets."""
    return sum(rcmd(db, "ZCARD", k) for k in rcmd(db, "KEYS", "hy:mail:*"))


def mail_last(db, user="bob"):
    """(id, blob) of user's newest message, as the store holds it."""
    if not REDIS:
        con = sqlite3.connect(db)
        row = con.execute("SELECT id, blob FROM mailbox WHERE recipient = ? "
                          "ORDER BY id DESC LIMIT 1", (user,)).fetchone()
        con.close()
        return row[0], bytes(row[1])
    h = rcmd(db, "HGETALL", "hy:mb:{%s}" % user)
    msgs = {int(h[i]): h[i + 1] for i in range(0, len(h), 2)}
    rid = max(msgs)
    return rid, msgs[rid].split(b" ", 1)[1]


def mail_alter(db, rid, blob, user="bob"):
    """Replaces the blob of message rid, behind the tracker's back."""
    if not REDIS:
        con = sqlite3.connect(db)
        con.execute("UPDATE mailbox SET blob = ? WHERE id = ?", (blob, rid))
        con.commit()
        con.close()
        return
    key = "hy:mb:{%s}" % user
    when = rcmd(db, "HGET", key, rid).split(b" ", 1)[0]
    rcmd(db, "HSET", key, rid, when + b" " + blob)


def mail_dump(db):
    """(everything, rows, meta): the whole store as bytes, one row per
    message (SQLite's INSERT INTO mailbox lines, or Redis's "KEY ID TIME
    BLOB"), and the mailbox's other records (Redis's counters and
    indexes; none for SQLite)."""
    if not REDIS:
        dump = subprocess.run(["sqlite3", db, ".dump"], stdout=subprocess.PIPE,
                              check=True).stdout
        return dump, [l for l in dump.split(b"\n") if l.startswith(b"INSERT INTO mailbox")], []
    lines, rows, meta = [], [], []
    readers = {"string": lambda k: [rcmd(db, "GET", k)],
               "hash": lambda k: rcmd(db, "HGETALL", k),
               "set": lambda k: rcmd(db, "SMEMBERS", k),
               "zset": lambda k: rcmd(db, "ZRANGE", k, 0, -1, "WITHSCORES")}
    for k in rcmd(db, "KEYS", "*"):
        t = rcmd(db, "TYPE", k)
        v = [x if isinstance(x, bytes) else str(x).encode() for x in readers[t](k)]
        lines.append(b" ".join([k] + v))
        if k.startswith(b"hy:mb:"):
            rows += [k + b" " + v[i] + b" " + v[i + 1] for i in range(0, len(v), 2)]
        elif k.startswith(b"hy:m") or k == b"hy:mail":
            meta.append(lines[-1])
    return b"\n".join(lines), rows, meta


def api(port, method, path, token, body=None):
    hdrs = {"Authorization": "Bearer " + token}
    if isinstance(body, bytes):
        hdrs["Content-Type"] = "text/plain"
    st, h, raw_body = request(port, method, path, body=body, headers=hdrs)
    return st, h, json.loads(raw_body) if raw_body else None


def deposit(port, token, to, blob):
    return api(port, "POST", "/mailbox/" + to, token, base64.b64encode(blob))


@case
def tracker_deposit_fetch_ack():
    _, port, tok, db = tracker("basic")
    ids = []
    for i in range(3):
        st, _, r = deposit(port, tok["alice"], "bob", b"sealed-%d" % i)
        assert st == 201, (st, r)
        ids.append(r["id"])
    assert ids == sorted(ids) and len(set(ids)) == 3, ids
    st, _, r = api(port, "POST", "/heartbeat", tok["bob"], {})
    assert st == 404  # not online, but the login answer has the hint:
    st, _, r = request(port, "POST", "/login", {"username": "bob", "password": PW["bob"]})
    assert json.loads(r)["mail"] == 3, r
    st, _, r = api(port, "POST", "/submit-info", tok["bob"],
                   {"username": "bob", "ip": "127.0.0.1", "port": 9})
    assert st == 200 and r["mail"] == 3, r
    st, _, r = api(port, "POST", "/heartbeat", tok["bob"], {})
    assert st == 200 and r["mail"] == 3, r
    # alice's own box is empty: nobody reads another's
    st, _, r = api(port, "GET", "/mailbox", tok["alice"])
    assert st == 200 and r["messages"] == [], r
    st, _, r = api(port, "GET", "/mailbox?limit=2", tok["bob"])
    assert st == 200 and [m["id"] for m in r["messages"]] == ids[:2] and r["next"] == ids[1], r
    assert base64.b64decode(r["messages"][0]["blob"]) == b"sealed-0"
    assert r["messages"][0]["size"] == len(b"sealed-0") and r["messages"][0]["time"] > 0
    st, _, r = api(port, "GET", "/mailbox?after=%d" % ids[1], tok["bob"])
    assert [m["id"] for m in r["messages"]] == ids[2:] and "next" not in r, r
    # alice cannot delete bob's
    st, _, r = api(port, "POST", "/mailbox/ack", tok["alice"], {"ids": ids})
    assert st == 200 and r["deleted"] == 0, r
    st, _, r = api(port, "POST", "/mailbox/ack", tok["bob"], {"ids": ids[:2]})
    assert st == 200 and r["deleted"] == 2, r
    st, _, r = api(port, "GET", "/mailbox", tok["bob"])
    assert [m["id"] for m in r["messages"]] == ids[2:], r
    # the database holds recipient, size, time and blob: no sender
    if REDIS:
        _, rows, meta = mail_dump(db)
        assert [r.split(b" ", 3)[3] for r in rows] == [b"sealed-2"], rows
        assert not any(b"alice" in l for l in rows + meta), (rows, meta)
        return
    con = sqlite3.connect(db)
    cols = [c[1] for c in con.execute("PRAGMA table_info(mailbox)")]
    con.close()
    assert cols == ["id", "recipient", "size", "deposited", "blob"], cols


@case
def tracker_bad_deposits():
    _, port, tok, _ = tracker("bad", ["--mailbox-message-max", "100"])
    st, _, r = deposit(port, tok["alice"], "nobody", b"x")
    assert st == 404, (st, r)
    st, _, r = deposit(port, tok["alice"], "bob", b"x" * 101)
    assert st == 413 and "at most 100 bytes" in r["message"], (st, r)
    st, _, r = deposit(port, tok["alice"], "bob", b"x" * 100)
    assert st == 201, (st, r)
    st, _, r = api(port, "POST", "/mailbox/bob", tok["alice"], json.dumps("eA==").encode())
    assert st == 201, (st, r)  # a JSON string is taken too
    for body in (b"", b"!!!not base64", b"{\"ids\":[1]}", b'"eA==" x', b'"', b'"\\u0000"'):
        st, _, r = api(port, "POST", "/mailbox/bob", tok["alice"], body)
        assert st == 400, (body, st, r)
    st, _, r = api(port, "POST", "/mailbox/bad%20name", tok["alice"], b"eA==")
    assert st == 400, (st, r)
    st, _, r = request(port, "POST", "/mailbox/bob", body="eA==")
    assert st == 401, st
    for q in ("after=x", "limit=0", "limit=-1", "after=1e3"):
        st, _, r = api(port, "GET", "/mailbox?" + q, tok["bob"])
        assert st == 400, (q, st, r)
    for body in ({"ids": "1"}, {"ids": [0]}, {"ids": ["1"]}, {"ids": list(range(1, 1002))},
                 {}, {"ids": [1], "username": "alice"}):
        st, _, r = api(port, "POST", "/mailbox/ack", tok["bob"], body)
        assert st in (400, 403), (body, st, r)
    # a base64 body on /mailbox/ack is a deposit for the account "ack"
    st, _, r = deposit(port, tok["alice"], "ack", b"x")
    assert st == 404 and r["message"] == "No such user", (st, r)


@case
def tracker_quota_507():
    _, port, tok, _ = tracker("quota", ["--mailbox-max-messages", "3",
                                        "--mailbox-max-bytes", "1000"])
    for i in range(3):
        assert deposit(port, tok["alice"], "bob", b"m%d" % i)[0] == 201
    st, _, r = deposit(port, tok["alice"], "bob", b"one too many")
    assert st == 507 and r["message"] == "bob's mailbox is full", (st, r)
    assert deposit(port, tok["alice"], "carol", b"x" * 990)[0] == 201
    st, _, r = deposit(port, tok["alice"], "carol", b"x" * 11)
    assert st == 507 and r["message"] == "carol's mailbox is full", (st, r)
    # freeing room lets the next one in
    st, _, r = api(port, "GET", "/mailbox", tok["bob"])
    api(port, "POST", "/mailbox/ack", tok["bob"], {"ids": [r["messages"][0]["id"]]})
    assert deposit(port, tok["alice"], "bob", b"now it fits")[0] == 201


@case
def tracker_rate_429():
    _, port, tok, _ = tracker("rate", ["--mailbox-rate", "4"])
    for i in range(4):
        assert deposit(port, tok["alice"], "bob", b"m")[0] == 201
    st, h, r = deposit(port, tok["alice"], "bob", b"m")
    assert st == 429 and int(h["retry-after"]) >= 1, (st, h, r)
    # another sender has its own bucket
    assert deposit(port, tok["carol"], "bob", b"m")[0] == 201


@case
def tracker_ttl_sweep():
    p, port, tok, db = tracker("ttl", ["--mailbox-ttl", "2"])
    assert deposit(port, tok["alice"], "bob", b"old")[0] == 201
    time.sleep(1.2)
    assert deposit(port, tok["alice"], "bob", b"newer")[0] == 201
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st, _, r = api(port, "GET", "/mailbox", tok["bob"])
        if len(r["messages"]) < 2:
            break
        time.sleep(0.2)
    assert [base64.b64decode(m["blob"]) for m in r["messages"]] == [b"newer"], r
    while time.monotonic() < deadline:
        st, _, r = api(port, "GET", "/mailbox", tok["bob"])
        if not r["messages"]:
            break
        time.sleep(0.2)
    assert r["messages"] == [], r
    # the tracker said it swept, and its database agrees
    assert mail_count(db) == 0
    if REDIS:  # and the sweep empties the expiry index too
        while time.monotonic() < deadline and mail_index(db) > 0:
            time.sleep(0.2)
        assert mail_index(db) == 0


@case
def tracker_mailbox_survives_restart():
    p, port, tok, db = tracker("restart")
    assert deposit(port, tok["alice"], "bob", b"kept")[0] == 201
    p.stop()
    p2, port2 = start_tracker(os.path.dirname(db), port=port)
    S["procs"].append(p2)
    t = login(port, "bob", PW["bob"])
    st, _, r = api(port, "GET", "/mailbox", t)
    assert [base64.b64decode(m["blob"]) for m in r["messages"]] == [b"kept"], r


@case
def tracker_flags_documented():
    from hytest import binary
    out = subprocess.run([binary("hychat-tracker"), "--help"], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    for flag in ("--mailbox-ttl", "--mailbox-max-messages", "--mailbox-max-bytes",
                 "--mailbox-message-max", "--mailbox-rate"):
        assert flag in out, flag
    r = subprocess.run([binary("hychat-tracker"), "--mailbox-ttl", "0", "--db", "/nonexistent"],
                       stderr=subprocess.PIPE, check=False)
    assert r.returncode == 2 and b"--mailbox-ttl 0" in r.stderr, r


# Real peers.

def peers_world(name, extra=()):
    """A tracker and alice, bob and carol, each started once so that the
    tracker publishes their keys, then stopped: everyone is offline."""
    p, port, tok, db = tracker(name, extra)
    d = os.path.join(S["dir"], name)
    for user in ("alice", "bob", "carol"):
        peer = start_peer(user, port, d, PW[user])
        bad = stop_checked([peer])
        assert not bad, bad
    return port, tok, db, d


def start(user, port, d):
    peer = start_peer(user, port, d, PW[user])
    S.setdefault("peers", []).append(peer)
    return peer


def finish(*peers):
    bad = stop_checked(peers)
    assert not bad, bad


def chats(peer, since=0):
    return [e for e in peer.events(since, "chat") if not e.get("outgoing")]


def send_stored(a, to, texts):
    """alice sends texts to the offline `to`; waits until each is stored;
    returns their ids and the delivery events seen."""
    mark = a.mark()
    for t in texts:
        a.cmd("send %s %s" % (to, t))
    ids = []
    for t in texts:
        ev = a.wait(lambda e, t=t: e.get("type") == "chat" and e.get("outgoing") and
                    e.get("message") == t, 10, mark, "own line " + t)
        ids.append(ev["id"])
    for i in ids:
        a.wait_type("delivery", 30, mark, id=i, state="stored")
    return ids, [e for e in a.events(mark, "delivery")]


@case
def peer_offline_five_in_order_once():
    port, tok, db, d = peers_world("five")
    a = start("alice", port, d)
    texts = ["mail %d: Xin chào 🙂 secret-word-%d" % (i, i) for i in range(5)]
    ids, dels = send_stored(a, "bob", texts)
    for i in ids:  # pending, then stored, in that order
        states = [e["state"] for e in dels if e["id"] == i]
        assert states == ["pending", "stored"], (i, states)
        assert all(e["conversation"] == "bob" for e in dels if e["id"] == i)
    finish(a)
    # the tracker's database: neither the text nor the sender
    dump, rows, meta = mail_dump(db)
    assert len(rows) == 5, dump[-2000:]
    assert b"secret-word" not in dump and "Xin chào".encode() not in dump
    assert rows and not any(b"alice" in l for l in rows + meta), (rows, meta)
    b = start("bob", port, d)
    got = b.wait(lambda e: len(chats(b)) >= 5, 20, 0, "five messages")
    time.sleep(1.5)  # nothing more comes
    got = chats(b)
    assert [e["message"] for e in got] == texts, [e["message"] for e in got]
    assert [e["id"] for e in got] == ids and all(e["from"] == "alice" for e in got)
    assert all(e["encrypted"] for e in got)
    # deleted at the tracker once taken in
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st, _, r = api(port, "GET", "/mailbox", login(port, "bob", PW["bob"]))
        if not r["messages"]:
            break
        time.sleep(0.2)
    assert r["messages"] == [], r
    # after a restart bob still has them, once
    finish(b)
    b = start("bob", port, d)
    mark = b.mark()
    b.cmd("history alice")
    h = b.wait_type("history", 10, mark)
    assert [m["message"] for m in h["messages"] if not m.get("outgoing")] == texts, h
    # alice comes back: the resend over the link is a duplicate; acks make
    # every message delivered
    a = start("alice", port, d)
    for i in ids:
        a.wait_type("delivery", 30, 0, id=i, state="delivered")
    time.sleep(1)
    assert len(chats(b, mark)) == 0, chats(b, mark)
    # the states are kept: a history after a restart shows them
    finish(a)
    a = start("alice", port, d)
    ma = a.mark()
    a.cmd("history bob")
    h = a.wait_type("history", 10, ma)
    own = [m for m in h["messages"] if m.get("outgoing")]
    assert [m["id"] for m in own] == ids, own
    assert all(m["delivery"] == "delivered" for m in own), own
    finish(a, b)


@case
def peer_altered_blob_refused():
    port, tok, db, d = peers_world("altered")
    a = start("alice", port, d)
    send_stored(a, "bob", ["genuine one", "to be altered"])
    finish(a)
    rid, blob = mail_last(db)
    blob = bytearray(blob)
    blob[len(blob) // 2] ^= 1
    mail_alter(db, rid, bytes(blob))
    b = start("bob", port, d)
    b.wait(lambda e: e.get("type") == "error" and "mailbox" in e.get("message", ""), 20, 0,
           "an error for the altered blob")
    b.wait(lambda e: len(chats(b)) >= 1, 10, 0, "the genuine message")
    time.sleep(1.5)
    assert [e["message"] for e in chats(b)] == ["genuine one"], chats(b)
    deadline = time.monotonic() + 10
    while mail_count(db) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert mail_count(db) == 0  # deleted too
    finish(b)


def sodium():
    import ctypes
    import ctypes.util
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    assert lib.sodium_init() >= 0
    return lib, ctypes


def forge(sender, sender_sk, recipient_pk, inner):
    """A blob as mailbox_seal.c makes it, from any key."""
    lib, ct = sodium()
    nonce = os.urandom(24)
    box = ct.create_string_buffer(len(inner) + 16)
    assert lib.crypto_box_easy(box, inner, ct.c_ulonglong(len(inner)), nonce, recipient_pk,
                               sender_sk) == 0
    plain = bytes([len(sender)]) + sender + nonce + box.raw
    sealed = ct.create_string_buffer(len(plain) + 48)
    assert lib.crypto_box_seal(sealed, plain, ct.c_ulonglong(len(plain)), recipient_pk) == 0
    return sealed.raw


def keys_of(d, user):
    with open(os.path.join(d, "peer-" + user, "identity.key")) as f:
        sk = base64.b64decode([l for l in f.read().split("\n")
                               if l.strip() and not l.startswith("#")][0])
    lib, ct = sodium()
    pk = ct.create_string_buffer(32)
    assert lib.crypto_scalarmult_base(pk, sk) == 0
    return pk.raw, sk


@case
def peer_forged_sender_refused():
    """carol seals to bob a message naming alice as its sender, boxed with
    carol's own key: it does not verify against alice's pinned key. One
    under her own name is taken, her key pinned on first use."""
    port, tok, db, d = peers_world("forged")
    b = start("bob", port, d)
    a = start("alice", port, d)  # bob pins alice's key over a link
    a.cmd("send bob hello")
    b.wait(lambda e: len(chats(b)) >= 1, 20, 0, "alice's hello")
    finish(a, b)
    bob_pk, _ = keys_of(d, "bob")
    _, carol_sk = keys_of(d, "carol")
    inner = json.dumps({"id": "f" * 32, "time": "2030-01-01T00:00:00.000000",
                        "message": "forged as alice"}).encode()
    assert deposit(port, tok["carol"], "bob", forge(b"alice", carol_sk, bob_pk, inner))[0] == 201
    inner = json.dumps({"id": "c" * 32, "time": "2030-01-01T00:00:01.000000",
                        "message": "really carol"}).encode()
    assert deposit(port, tok["carol"], "bob", forge(b"carol", carol_sk, bob_pk, inner))[0] == 201
    b = start("bob", port, d)
    ev = b.wait(lambda e: e.get("type") == "error" and "alice" in e.get("message", "") and
                "mailbox" in e.get("message", ""), 20, 0, "the forged blob's error")
    assert "verify" in ev["message"], ev
    b.wait(lambda e: len(chats(b)) >= 1, 20, 0, "carol's message")
    time.sleep(1)
    assert [(e["from"], e["message"]) for e in chats(b)] == [("carol", "really carol")], \
        chats(b)
    with open(os.path.join(d, "peer-bob", "known_peers")) as f:
        assert "carol " in f.read()
    finish(b)


@case
def peer_replayed_blob_shown_once():
    port, tok, db, d = peers_world("replay")
    a = start("alice", port, d)
    send_stored(a, "bob", ["only once"])
    finish(a)
    _, blob = mail_last(db)
    b = start("bob", port, d)
    b.wait(lambda e: len(chats(b)) >= 1, 20, 0, "the message")
    mark = b.mark()
    # the tracker (or anyone with a token) deposits the same blob again
    st, _, r = deposit(port, tok["carol"], "bob", blob)
    assert st == 201, (st, r)
    # bob's next heartbeat sees mail: fetched, dropped as a duplicate, deleted
    deadline = time.monotonic() + 40
    while mail_count(db) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert mail_count(db) == 0
    time.sleep(0.5)
    assert chats(b, mark) == [], chats(b, mark)
    assert [e["message"] for e in chats(b)] == ["only once"]
    finish(b)


@case
def peer_quota_full_told():
    port, tok, db, d = peers_world("full", ["--mailbox-max-messages", "2"])
    a = start("alice", port, d)
    mark = a.mark()
    send_stored(a, "bob", ["one", "two"])
    a.cmd("send bob three")
    ev = a.wait(lambda e: e.get("type") == "error" and "mailbox is full" in
                e.get("message", ""), 20, mark, "the mailbox-full error")
    assert "bob's mailbox is full" in ev["message"], ev
    finish(a)


@case
def peer_too_large_does_not_hold_up_the_next():
    port, tok, db, d = peers_world("large", ["--mailbox-message-max", "300"])
    a = start("alice", port, d)
    mark = a.mark()
    a.cmd("send bob " + "x" * 400)
    ev = a.wait(lambda e: e.get("type") == "error" and "too large" in e.get("message", ""),
                20, mark, "the too-large error")
    assert "a message to bob is not stored" in ev["message"], ev
    ids, _ = send_stored(a, "bob", ["small enough"])
    finish(a)
    b = start("bob", port, d)
    b.wait(lambda e: len(chats(b)) >= 1, 20, 0, "the small message")
    assert [e["message"] for e in chats(b)] == ["small enough"], chats(b)
    finish(b)


@case
def peer_ttl_expired():
    port, tok, db, d = peers_world("expiry", ["--mailbox-ttl", "2"])
    a = start("alice", port, d)
    send_stored(a, "bob", ["short-lived"])
    finish(a)
    deadline = time.monotonic() + 15
    while mail_count(db) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert mail_count(db) == 0
    b = start("bob", port, d)
    time.sleep(3)
    assert chats(b) == [], chats(b)
    finish(b)


@case
def peer_channel_message_is_not_mailed():
    """A channel message owed to an offline member waits in the sender's
    outbox for a link; once a direct message to him started his deposits,
    it used to be deposited too, and filed in the sender's direct
    conversation (the chaos test saw it)."""
    port, tok, db, d = peers_world("chan")
    a = start("alice", port, d)
    m = a.mark()
    a.cmd("/sendchannel general for the channel only")
    a.wait(lambda e: e.get("type") == "broadcast" and e.get("outgoing"), 10, m, "own line")
    # a direct message after it: bob's outbox entries now go to the mailbox
    send_stored(a, "bob", ["direct, for bob"])
    time.sleep(2)
    assert len(mail_dump(db)[1]) == 1, "a channel message went to the mailbox"
    b = start("bob", port, d)
    ev = b.wait(lambda e: e.get("type") == "broadcast" and not e.get("outgoing") and
                e.get("message") == "for the channel only", 20, 0, "the channel message")
    assert ev["channel"] == "general", ev
    time.sleep(1)
    assert [e["message"] for e in chats(b)] == ["direct, for bob"], chats(b)
    finish(a, b)


if __name__ == "__main__":
    run(setup, teardown)
