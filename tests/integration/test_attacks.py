#!/usr/bin/env python3
"""The attacks of the security review, run against the real tracker and
peers on 127.0.0.1; each one worked on the code before its fix.

- A plaintext impostor: while bob is offline, someone who says "I am bob"
  in clear got alice's outbox for bob and filed messages under his name.
- Users past the first page of /get-list: with more than 1,000 users
  online, the peer read only the first page, took anyone after it for
  keyless and offline, and a channel message missed the members after it.
- A linked peer posting into a channel it is not a member of."""
import base64
import http.client
import json
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import case, raise_fd_limit, read_for, run  # noqa: E402
from peer_harness import end_suite, register, start_peer, start_tracker  # noqa: E402
import noise_sim  # noqa: E402

S = {}
PW = {"alice": "alice pw", "bob": "bob-s3cret", "mallory": "mallory pw"}
CROWD = 1498  # simulated users; with alice and zzbob, 1,500 online
CHANNEL = 1200  # of them in #big


class Tracker:
    """One kept-alive HTTP connection to the tracker."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None, token=None):
        hdrs = {"Content-Type": "application/json"}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        self.c.request(method, path, json.dumps(body) if body is not None else None, hdrs)
        r = self.c.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else {}

    def online(self, user, password, port, pubkey=None, channels=()):
        """Registers user, logs in and submits its address; returns the token."""
        st, b = self.call("POST", "/register", {"username": user, "password": password})
        assert st in (200, 201, 409), (user, st, b)
        st, b = self.call("POST", "/login", {"username": user, "password": password})
        assert st == 200, (user, st, b)
        info = {"username": user, "ip": "127.0.0.1", "port": port, "channels": list(channels)}
        if pubkey is not None:
            info["pubkey"] = base64.b64encode(pubkey).decode()
        st, b2 = self.call("POST", "/submit-info", info, b["token"])
        assert st == 200, (user, st, b2)
        return b["token"]


def setup():
    raise_fd_limit(8192)
    S["tmp"] = tempfile.mkdtemp(prefix="hychat-attacks-")
    S["tracker"], S["tport"] = start_tracker(
        S["tmp"], extra=["--kdf-cost", "min", "--ttl", "600"])
    for u, p in PW.items():
        register(S["tport"], u, p)
    S["peers"] = []


def teardown(_):
    try:
        if "crowd" in S:
            S["crowd"].stop()
    finally:
        end_suite(S)


def peer(name, password, extra=(), port=None):
    p = start_peer(name, S["tport"], S["tmp"], password, extra=extra, port=port)
    S["peers"].append(p)
    return p


def stop(p):
    assert p.stop("quit") == 0, p.stderr()[-3000:]
    S["peers"].remove(p)


def chat_from(p, sender, text, since, timeout=10, type="chat"):
    return p.wait(lambda e: e.get("type") == type and e.get("from") == sender
                  and e.get("message") == text and not e.get("outgoing"),
                  timeout, since, "%s from %s: %r" % (type, sender, text))


def impostor(port, claimed, wait=4.0):
    """Dials port in the original plaintext protocol as claimed; returns
    every byte the peer sent before it hung up (or wait ran out)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(json.dumps({"type": "handshake", "username": claimed}).encode())
        time.sleep(0.3)
        try:
            s.sendall(json.dumps({"type": "chat", "from": claimed, "channel": "direct",
                                  "message": "forged by the impostor"}).encode())
        except OSError:
            pass
        got = read_for(s, wait)
    finally:
        s.close()
    return got


def alice():
    for p in S["peers"]:
        if p.name == "alice":
            return p
    return peer("alice", PW["alice"], extra=["--allow-plaintext"])


def history(p, conv):
    m = p.mark()
    p.cmd("history %s" % conv)
    return p.wait_type("history", 10, m)["messages"]


@case
def a_plaintext_impostor_of_a_pinned_user_gets_nothing():
    a = peer("alice", PW["alice"], extra=["--allow-plaintext"])
    b = peer("bob", PW["bob"])
    mb = b.mark()
    a.cmd("send bob hello, this pins your key")
    chat_from(b, "alice", "hello, this pins your key", mb)
    bob_port = b.port
    stop(b)
    # alice restarts: bob is pinned in her known_peers, and offline.
    stop(a)
    a = peer("alice", PW["alice"], extra=["--allow-plaintext"], port=a.port)
    ma = a.mark()
    a.cmd("send bob for bob only")
    a.wait(lambda e: e.get("type") == "chat" and e.get("outgoing")
           and e.get("message") == "for bob only", 5, ma, "the message recorded")
    # Someone says "bob" in clear: neither an ack nor the outbox comes back,
    # and what it says is not filed under bob.
    seen = impostor(a.port, "bob")
    assert b"for bob only" not in seen, "the outbox went to the impostor: %r" % seen
    assert b"handshake_ack" not in seen, "the impostor was taken for bob: %r" % seen
    err = a.wait(lambda e: e.get("type") == "error" and "bob" in e.get("message", "")
                 and "plaintext" in e.get("message", ""), 5, ma, "the refusal")
    assert "refused" in err["message"], err
    assert "link with bob refused" in a.stderr(), "no log line names bob"
    texts = [m["message"] for m in history(a, "bob")]
    assert "forged by the impostor" not in texts, texts
    # Again, now that this run has seen bob's key at the tracker.
    ma = a.mark()
    seen = impostor(a.port, "bob")
    assert b"for bob only" not in seen and b"handshake_ack" not in seen, seen
    a.wait(lambda e: e.get("type") == "error" and "bob" in e.get("message", ""),
           5, ma, "the second refusal")
    # The real bob comes back and gets it, encrypted, once.
    b = peer("bob", PW["bob"], port=bob_port)
    ev = chat_from(b, "alice", "for bob only", 0, timeout=20)
    assert ev["encrypted"] is True
    time.sleep(1.0)
    assert len([e for e in b.events() if e.get("message") == "for bob only"]) == 1
    mine = [m for m in history(a, "bob") if m["message"] == "for bob only"]
    assert mine and all(m["encrypted"] for m in mine), mine


def crowd_online():
    """1,498 simulated users online, each with its own key and port; the
    first 1,200 in #big."""
    if "crowd" in S:
        return S["crowd"]
    names = ["u%04d" % i for i in range(CROWD)]
    crowd = noise_sim.Crowd(names)
    t = Tracker(S["tport"])
    t0 = time.monotonic()
    for i, n in enumerate(names):
        t.online(n, "pw " + n, crowd.port(n), crowd.pubkey(n),
                 channels=["big"] if i < CHANNEL else [])
    print("# %d users online in %.1fs" % (CROWD, time.monotonic() - t0), flush=True)
    S["crowd"] = crowd
    return crowd


@case
def a_user_listed_past_the_first_page_links_encrypted():
    crowd_online()
    a = alice()
    register(S["tport"], "zzbob", "zz pw")
    z = peer("zzbob", "zz pw")
    t = Tracker(S["tport"])
    st, body = t.call("POST", "/login", {"username": "mallory", "password": PW["mallory"]})
    st, body = t.call("GET", "/get-list", token=body["token"])
    assert st == 200 and "next" in body and all(
        x["username"] != "zzbob" for x in body["peers"]), "zzbob is on the first page"
    mz = z.mark()
    a.cmd("send zzbob past the first page")
    try:
        ev = chat_from(z, "alice", "past the first page", mz, timeout=20)
    except AssertionError:
        print("alice's stderr:\n" + a.stderr()[-3000:])
        raise
    assert ev["encrypted"] is True
    mz = z.mark()
    z.cmd("send alice and back")
    ev = chat_from(a, "zzbob", "and back", 0, timeout=20)
    assert ev["encrypted"] is True


@case
def a_channel_of_1200_members_reaches_every_one():
    crowd = crowd_online()
    a = alice()
    m = a.mark()
    a.cmd("/join #big")
    a.wait_type("channel", 20, m, channel="big", joined=True)
    t0 = time.monotonic()
    a.cmd("/sendchannel big to all twelve hundred")
    members = ["u%04d" % i for i in range(CHANNEL)]

    def reached():
        return sum(1 for n in members
                   if any(o.get("message") == "to all twelve hundred"
                          for o in crowd.received(n)))
    try:
        noise_sim.wait_until(lambda: reached() == CHANNEL, 120, "all 1,200 members")
    finally:
        print("# %d of %d members reached in %.1fs, %d handshakes, errors: %s"
              % (reached(), CHANNEL, time.monotonic() - t0, crowd.handshakes,
                 crowd.errors[:3]), flush=True)
    outsiders = ["u%04d" % i for i in range(CHANNEL, CROWD)]
    assert not any(crowd.received(n) for n in outsiders), "a non-member got it"
    for n in members:
        assert len([o for o in crowd.received(n)
                    if o.get("message") == "to all twelve hundred"]) == 1, n


@case
def a_linked_peer_cannot_post_into_a_channel_it_is_not_in():
    a = alice()
    m = a.mark()
    a.cmd("/join #test")
    a.wait_type("channel", 10, m, channel="test", joined=True)
    key = noise_sim.pn.keypair()
    t = Tracker(S["tport"])
    token = t.online("mallory", PW["mallory"], 1, key[1])
    s, tr = noise_sim.dial(a.port, "mallory", key)
    try:
        m = a.mark()
        s.sendall(tr.seal({"type": "broadcast", "id": "f" * 32, "from": "mallory",
                           "channel": "test", "message": "posted by a non-member",
                           "time": "2026-12-01T10:00:00.000000"}))
        time.sleep(2.0)
        shown = [e for e in a.events(m) if e.get("message") == "posted by a non-member"]
        assert not shown, "a non-member's message was shown: %r" % shown
        texts = [x["message"] for x in history(a, "#test")]
        assert "posted by a non-member" not in texts, texts
        # Once the tracker lists mallory in #test, the same path takes it in.
        st, b = t.call("POST", "/add-list", {"username": "mallory", "channel": "test"}, token)
        assert st == 200, (st, b)
        m = a.mark()
        s.sendall(tr.seal({"type": "broadcast", "id": "e" * 32, "from": "mallory",
                           "channel": "test", "message": "posted by a member",
                           "time": "2026-12-01T10:00:01.000000"}))
        chat_from(a, "mallory", "posted by a member", m, type="broadcast")
    finally:
        s.close()


@case
def a_throttled_login_is_tried_again_not_given_up():
    """Guesses at alice's password from her own address (a shared NAT, or
    someone on her machine) make the tracker answer her peer's login 429.
    The peer used to take that for a wrong password, forget it and never
    log in; it keeps the password and tries again after Retry-After."""
    d = tempfile.mkdtemp(prefix="throttled-", dir=S["tmp"])
    t, port = start_tracker(d, extra=["--kdf-cost", "min", "--login-pair-burst", "2",
                                      "--login-pair-rate", "10"])
    try:
        register(port, "alice", PW["alice"])
        tr = Tracker(port)
        seen = [tr.call("POST", "/login", {"username": "alice", "password": "guess"})[0]
                for _ in range(4)]
        assert seen[-1] == 429, seen
        p = start_peer("alice", port, d, PW["alice"], ready=False)
        S["peers"].append(p)
        p.wait_type("tracker", 10, state="throttled")
        t0 = time.monotonic()
        p.wait_type("login_result", 20, status="success")
        p.wait_type("tracker", 10, state="online")
        print("  logged in %.1f s after the 429" % (time.monotonic() - t0))
        stop(p)
    finally:
        t.stop()


if __name__ == "__main__":
    run(setup, teardown)
