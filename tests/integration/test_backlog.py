#!/usr/bin/env python3
"""The channel backlog (issue 17): a member who was away is given what was
said meanwhile by the members who were there, each message under its
original sender's signature; a member relaying a forged or altered message
cannot make it appear, and the forgery is reported."""
import base64
import os
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import case, request, run  # noqa: E402
from peer_harness import login, register, start_peer, start_tracker, stop_checked  # noqa: E402
import noise_sim  # noqa: E402

S = {"procs": [], "peers": []}
PW = {"alice": "alice-backlog-pw", "bob": "bob-backlog-pw", "carol": "carol-backlog-pw",
      "mallory": "mallory-backlog-pw"}


def setup():
    S["dir"] = tempfile.mkdtemp(prefix="hychat-backlog-test-")


def teardown(_):
    try:
        for p in S["peers"]:
            if p.alive():
                p.kill()
        for p in S["procs"]:
            if p.alive():
                p.stop()
    finally:
        shutil.rmtree(S["dir"], ignore_errors=True)


def world(name):
    d = os.path.join(S["dir"], name)
    os.makedirs(d)
    p, port = start_tracker(d, extra=["--kdf-cost", "min"])
    S["procs"].append(p)
    for user, pw in PW.items():
        register(port, user, pw)
    return port, d


def start(user, port, d):
    peer = start_peer(user, port, d, PW[user])
    S["peers"].append(peer)
    return peer


def finish(*peers):
    bad = stop_checked(peers)
    assert not bad, bad


def heard(peer, since=0, channel="general"):
    return [e for e in peer.events(since, "broadcast")
            if not e.get("outgoing") and e.get("channel") == channel]


def say(peer, texts, listeners):
    """peer says texts in #general; every listener hears each of them."""
    m = peer.mark()
    marks = [(x, x.mark()) for x in listeners]
    for t in texts:
        peer.cmd("/sendchannel general " + t)
    for t in texts:
        peer.wait(lambda e, t=t: e.get("type") == "broadcast" and e.get("outgoing") and
                  e.get("message") == t, 10, m, "own line " + t)
    for x, xm in marks:
        x.wait(lambda e, xm=xm: len([h for h in heard(x, xm) if h["message"] in texts]) >=
               len(texts), 30, xm, "%s hearing %d messages" % (x.name, len(texts)))


def linked(a, b):
    a.wait(lambda e: e.get("type") == "link" and e.get("peer") == b.name and
           e.get("state") == "up", 20, 0, "a link with " + b.name)


@case
def member_away_sees_twenty_in_order_once():
    port, d = world("twenty")
    a, b, c = start("alice", port, d), start("bob", port, d), start("carol", port, d)
    say(a, ["before: everyone is here"], [b, c])
    finish(b)
    texts = ["while bob was away %02d: Xin chào 🙂" % i for i in range(20)]
    say(a, texts, [c])
    finish(a)  # alice's outbox cannot give them to bob: only carol can
    b = start("bob", port, d)
    b.wait(lambda e: len([h for h in heard(b) if h["message"] in texts]) >= 20, 30, 0,
           "the twenty messages")
    ev = b.wait_type("backlog", 10, 0, channel="general")
    time.sleep(2)  # nothing comes twice
    got = [h for h in heard(b) if h["message"] in texts]
    assert [h["message"] for h in got] == texts, [h["message"] for h in got]
    assert all(h["from"] == "alice" for h in got)
    assert ev["count"] == 20 and ev["seq"] == got[0]["seq"], ev
    assert ev["since"] == got[0]["time"], ev
    assert len(b.events(0, "backlog")) == 1, b.events(0, "backlog")
    # stored: a history after a restart has them once, in order
    finish(b)
    b = start("bob", port, d)
    m = b.mark()
    b.cmd("history #general 100")
    h = b.wait_type("history", 10, m)
    own = [x["message"] for x in h["messages"] if x["message"] in texts]
    assert own == texts, own
    finish(b, c)


@case
def a_long_absence_is_paged_and_bounded():
    """250 messages said while bob was away, bob's backlog-messages set to
    150: he is given the last 150, in order, once, over pages of at most
    100."""
    port, d = world("paged")
    a, b, c = start("alice", port, d), start("bob", port, d), start("carol", port, d)
    say(a, ["before the long absence"], [b, c])
    m = b.mark()
    b.cmd("/set backlog-messages 150")
    b.wait_type("setting", 10, m, name="backlog-messages", value="150")
    finish(b)
    texts = ["long absence %03d" % i for i in range(250)]
    say(a, texts, [c])
    finish(a)
    b = start("bob", port, d)
    b.wait(lambda e: len([h for h in heard(b) if h["message"] in texts]) >= 150, 60, 0,
           "150 messages")
    ev = b.wait_type("backlog", 10, 0, channel="general")
    time.sleep(2)
    got = [h["message"] for h in heard(b) if h["message"] in texts]
    assert got == texts[100:], (len(got), got[:3], got[-3:])
    assert ev["count"] == 150, ev
    finish(b, c)


def genuine_row(d, user, text):
    """(id, time, sig) of user's own channel message text, from its database."""
    path = [os.path.join(d, "peer-" + user, f) for f in os.listdir(os.path.join(d, "peer-" + user))
            if f.endswith(".db")][0]
    con = sqlite3.connect(path)
    row = con.execute("SELECT msgid, time, sig FROM messages WHERE text = ? AND outgoing = 1",
                      (text,)).fetchone()
    con.close()
    assert row and row[2], row
    return row


def answer_backlog(s, tr, entries, timeout=20):
    """Reads what bob sends on mallory's link until his backlog request for
    #general, then answers it with entries; returns the request."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = noise_sim.pn.read_frame(s, deadline - time.monotonic())
        if f is None:
            raise AssertionError("bob closed mallory's link")
        o = tr.open(f)
        if o.get("type") in ("chat", "broadcast") and o.get("id"):
            s.sendall(tr.seal({"type": "ack", "ids": [o["id"]]}))
        if o.get("type") == "backlog" and o.get("channel") == "general":
            s.sendall(tr.seal({"type": "backlog_page", "channel": "general",
                               "messages": entries, "next": 0}))
            return o
    raise AssertionError("no backlog request from bob")


@case
def relayed_forgery_refused_and_reported():
    """mallory, a member of #general, answers bob's backlog request with a
    message alice never said (under a signature of hers taken from another
    message) and one alice said with its text altered: neither appears,
    each is reported; alice's genuine message, relayed alike, is taken."""
    port, d = world("forged")
    a, b = start("alice", port, d), start("bob", port, d)
    linked(b, a)  # bob pins alice's key
    say(a, ["the genuine one"], [b])
    finish(b)
    say(a, ["said while bob was away"], [])
    finish(a)
    gid, gtime, gsig = genuine_row(d, "alice", "the genuine one")
    wid, wtime, wsig = genuine_row(d, "alice", "said while bob was away")
    key = noise_sim.pn.keypair()
    tok = login(port, "mallory", PW["mallory"])
    st, _, body = request(port, "POST", "/submit-info",
                          {"username": "mallory", "ip": "127.0.0.1", "port": 1,
                           "channels": ["general"],
                           "pubkey": base64.b64encode(key[1]).decode()},
                          {"Authorization": "Bearer " + tok})
    assert st == 200, (st, body)
    b = start("bob", port, d)
    s, tr = noise_sim.dial(b.port, "mallory", key)
    try:
        m = b.mark()
        forged = {"id": "f" * 32, "from": "alice", "time": "2030-01-01T00:00:00.000000",
                  "message": "alice never said this", "sig": gsig}
        altered = {"id": wid, "from": "alice", "time": wtime,
                   "message": "said while bob was away, and altered", "sig": wsig}
        relayed = {"id": wid, "from": "alice", "time": wtime,
                   "message": "said while bob was away", "sig": wsig}
        req = answer_backlog(s, tr, [forged, altered, relayed])
        assert req["limit"] == 1000, req
        b.wait(lambda e: e.get("type") == "error" and "backlog" in e.get("message", "") and
               len([x for x in b.events(m, "error") if "mallory" in x["message"]]) >= 2,
               20, m, "two errors for the forgeries")
        errs = [x["message"] for x in b.events(m, "error") if "backlog" in x["message"]]
        assert all("alice" in x and "relayed by mallory" in x for x in errs), errs
        b.wait(lambda e: e.get("type") == "broadcast" and
               e.get("message") == "said while bob was away", 20, m, "the genuine relay")
        time.sleep(1)
        shown = [e["message"] for e in heard(b, m)]
        assert shown == ["said while bob was away"], shown
    finally:
        s.close()
    finish(b)


def mallory_online(port):
    key = noise_sim.pn.keypair()
    tok = login(port, "mallory", PW["mallory"])
    st, _, body = request(port, "POST", "/submit-info",
                          {"username": "mallory", "ip": "127.0.0.1", "port": 1,
                           "channels": ["general"],
                           "pubkey": base64.b64encode(key[1]).decode()},
                          {"Authorization": "Bearer " + tok})
    assert st == 200, (st, body)
    return key


@case
def a_member_asking_in_a_loop_is_held_to_a_rate():
    """Each request of ~100 bytes costs a page of up to 192 KB: mallory, a
    member, asks bob 400 times at once; bob answers what is left of the
    burst of 200 and a few more as the bucket refills, and goes on
    serving."""
    port, d = world("loop")
    b = start("bob", port, d)
    key = mallory_online(port)
    s, tr = noise_sim.dial(b.port, "mallory", key)
    try:
        req = {"type": "backlog", "channel": "general", "since": "2000-01-01T00:00:00",
               "after": 0, "limit": 1000}
        # The first makes bob ask the tracker whether mallory is a member.
        s.sendall(tr.seal(req))
        deadline = time.monotonic() + 10
        while tr.open(noise_sim.pn.read_frame(s, 10)).get("type") != "backlog_page":
            assert time.monotonic() < deadline, "no first page"
        s.sendall(b"".join(tr.seal(req) for _ in range(400)))
        pages = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:
                f = noise_sim.pn.read_frame(s, max(0.1, deadline - time.monotonic()))
            except OSError:
                break
            if f is None:
                break
            if tr.open(f).get("type") == "backlog_page":
                pages += 1
        print("  %d of 400 requests answered" % pages)
        assert 195 <= pages <= 230, pages
    finally:
        s.close()
    m = b.mark()
    b.cmd("/sendchannel general still serving")
    b.wait(lambda e: e.get("type") == "broadcast" and e.get("outgoing"), 10, m, "own line")
    finish(b)


if __name__ == "__main__":
    run(setup, teardown)
