#!/usr/bin/env python3
"""Several hychat-trackers sharing their state in one real redis-server:
a token from one is valid on the others, a peer registered through one is
listed by all and may heartbeat to any; kill -9 of a tracker changes
nothing the others answer; a silent peer ages out of every listing within
its TTL though its tracker is dead; Redis down means 503 with
Retry-After, and service again once it is back; a Redis restart from its
AOF keeps the accounts; --migrate-from copies an SQLite tracker's
accounts, keys, memberships, profiles and mailboxes; with a primary, a replica and three
sentinels, kill -9 of the primary is followed within 10 s, 503 meanwhile,
and nothing acknowledged before it is lost."""
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import Proc, binary, case, free_port, request, run  # noqa: E402
from redis_harness import RedisServer, Sentinel  # noqa: E402

TRACKER = binary("hychat-tracker")
TTL = 3
S = {"procs": []}


def start_tracker(url, extra=(), quiet=True):
    port = free_port()
    p = Proc([TRACKER, "--listen", "127.0.0.1:%d" % port, "--store", url,
              "--kdf-cost", "min", "--ttl", str(TTL)] + (["--quiet"] if quiet else []) +
             list(extra), port=port)
    p.port = port
    S["procs"].append(p)
    return p


def api(port, method, path, body=None, token=None):
    hdrs = {"Authorization": "Bearer " + token} if token else {}
    st, h, raw = request(port, method, path, body=body, headers=hdrs)
    return st, h, (json.loads(raw) if raw else None)


def ok(port, method, path, body=None, token=None, status=200):
    st, _, data = api(port, method, path, body, token)
    assert st == status, (port, method, path, st, data)
    return data


def account(port, name):
    ok(port, "POST", "/register", {"username": name, "password": "pw-" + name}, status=201)
    return ok(port, "POST", "/login", {"username": name, "password": "pw-" + name})["token"]


def names(port, token, query=""):
    return [p["username"] for p in ok(port, "GET", "/get-list" + query, token=token)["peers"]]


def setup():
    S["dir"] = tempfile.mkdtemp(prefix="hychat-cluster-test-")
    S["redis"] = RedisServer()


def teardown(_):
    for p in S["procs"]:
        if p.alive():
            p.stop()
    S["redis"].close()
    shutil.rmtree(S["dir"], ignore_errors=True)


def three(db):
    return [start_tracker(S["redis"].url(db)) for _ in range(3)]


@case
def test_a_token_and_a_registration_hold_on_every_tracker():
    ts = three(1)
    a = account(ts[0].port, "alice")
    b = account(ts[1].port, "bob")
    ok(ts[0].port, "POST", "/submit-info",
       {"ip": "127.0.0.1", "port": 9001, "channels": ["general"], "pubkey": "QUxJQ0U="}, a)
    ok(ts[2].port, "POST", "/submit-info", {"ip": "127.0.0.1", "port": 9002,
                                            "channels": ["general"]}, b)
    for t in ts:
        # each tracker takes each token, and lists both peers, keys included
        assert names(t.port, a, "?channel=general") == ["alice", "bob"]
        data = ok(t.port, "GET", "/peers/alice", token=b)
        assert data["online"] and data["pubkey"] == "QUxJQ0U=" and data["port"] == 9001, data
        assert ok(t.port, "GET", "/stats", token=b)["accounts"] == 2
    # a heartbeat to another tracker keeps alice listed past her TTL
    for _ in range(2 * TTL):
        time.sleep(0.5)
        ok(ts[1].port, "POST", "/heartbeat", {}, a)
        ok(ts[0].port, "POST", "/heartbeat", {}, b)
    for t in ts:
        assert names(t.port, b) == ["alice", "bob"]
    # a registration on one is refused as taken on another
    assert api(ts[2].port, "POST", "/register", {"username": "alice", "password": "x"})[0] == 409
    # logging out on one ends the token on all
    ok(ts[1].port, "POST", "/logout", {}, b)
    for t in ts:
        assert api(t.port, "GET", "/stats", token=b)[0] == 401
        assert names(t.port, a) == ["alice"]
    for t in ts:
        t.stop()


@case
def test_a_profile_set_on_one_tracker_is_shown_by_every_tracker():
    ts = three(11)
    a = account(ts[0].port, "pam")
    b = account(ts[1].port, "quin")
    ok(ts[0].port, "POST", "/submit-info", {"ip": "127.0.0.1", "port": 9011}, a)
    got = ok(ts[0].port, "POST", "/profile",
             {"display_name": "Pam B.", "status_line": "on call, Phát"}, a)
    assert got["display_name"] == "Pam B." and got["status_line"] == "on call, Phát", got
    # a change of one field through another tracker keeps the other field
    got = ok(ts[2].port, "POST", "/profile", {"status_line": "back at 5"}, a)
    assert got["display_name"] == "Pam B." and got["status_line"] == "back at 5", got
    for t in ts:
        info = ok(t.port, "GET", "/peers/pam", token=b)
        assert info["display_name"] == "Pam B." and info["status_line"] == "back at 5", info
        pam = [p for p in ok(t.port, "GET", "/get-list", token=b)["peers"]
               if p["username"] == "pam"][0]
        assert pam["display_name"] == "Pam B." and pam["status_line"] == "back at 5", pam
    # cleared on one, gone from all; a tracker started later sees the same
    ok(ts[1].port, "POST", "/profile", {"display_name": "", "status_line": ""}, a)
    ts.append(start_tracker(S["redis"].url(11)))
    for t in ts:
        info = ok(t.port, "GET", "/peers/pam", token=b)
        assert "display_name" not in info and "status_line" not in info, info
    for t in ts:
        t.stop()


@case
def test_nat_state_is_one_for_every_tracker():
    """What reaches a peer behind NAT is registered with its presence: the
    address its /submit-info came from and its IPv6 address are given by
    a tracker it never spoke to; a rendezvous asked of one tracker leaves
    its hint for the peer polling another; a caller's rendezvous budget is
    one for every tracker."""
    a, b = start_tracker(S["redis"].url(14)), start_tracker(S["redis"].url(14))
    tok = {"nora": account(a.port, "nora"), "otto": account(b.port, "otto")}
    ok(a.port, "POST", "/submit-info",
       {"ip": "10.0.0.1", "port": 9001, "ip6": "fd00:1::1"}, tok["nora"])
    ok(b.port, "POST", "/submit-info", {"ip": "10.0.0.2", "port": 9002}, tok["otto"])
    for t in (a, b):
        info = ok(t.port, "GET", "/peers/nora", token=tok["otto"])
        assert info["observed_ip"] == "127.0.0.1" and info["ip6"] == "fd00:1::1", (t.port, info)
        nora = [p for p in ok(t.port, "GET", "/get-list", token=tok["otto"])["peers"]
                if p["username"] == "nora"][0]
        assert nora["observed_ip"] == "127.0.0.1" and nora["ip6"] == "fd00:1::1", nora
    # nora heartbeats to the other tracker: still reachable the same way
    ok(b.port, "POST", "/heartbeat", {}, tok["nora"])
    info = ok(a.port, "GET", "/peers/nora", token=tok["otto"])
    assert info["observed_ip"] == "127.0.0.1" and info["ip6"] == "fd00:1::1", info
    # registering again without ip6, through the other tracker, drops it everywhere
    ok(b.port, "POST", "/submit-info", {"ip": "10.0.0.1", "port": 9001}, tok["nora"])
    assert "ip6" not in ok(a.port, "GET", "/peers/nora", token=tok["otto"])
    # a punch asked of a: otto, polling b, gets nora's observed address
    d = ok(a.port, "POST", "/rendezvous", {"peer": "otto", "via": "punch"}, tok["nora"])
    assert d["ip"] == "127.0.0.1" and d["port"] == 9002, d
    d = ok(b.port, "GET", "/hints", token=tok["otto"])
    assert d["hints"] == [{"type": "punch", "peer": "nora", "ip": "127.0.0.1",
                           "port": 9001}], d
    assert ok(a.port, "GET", "/hints", token=tok["otto"])["hints"] == [], "given once"
    ok(b.port, "POST", "/rendezvous", {"peer": "nora", "via": "dial"}, tok["otto"])
    d = ok(a.port, "GET", "/hints", token=tok["nora"])
    assert d["hints"] == [{"type": "dial", "peer": "otto"}], d
    # one budget: 20 in a burst, then one a second, wherever they are asked
    codes = [api((a, b)[i % 2].port, "POST", "/rendezvous", {"peer": "otto", "via": "dial"},
                 tok["nora"])[0] for i in range(40)]
    assert codes[:15] == [200] * 15 and codes.count(429) >= 15, codes
    assert len(ok(b.port, "GET", "/hints", token=tok["otto"])["hints"]) == 8
    # a logout, through either tracker, drops the hints waiting: they
    # were for the session that ended
    time.sleep(1.1)  # one more rendezvous in nora's budget
    ok(a.port, "POST", "/rendezvous", {"peer": "otto", "via": "dial"}, tok["nora"])
    ok(a.port, "POST", "/logout", {}, tok["otto"])
    tok["otto"] = ok(b.port, "POST", "/login", {"username": "otto", "password": "pw-otto"})["token"]
    ok(b.port, "POST", "/submit-info", {"ip": "10.0.0.2", "port": 9002}, tok["otto"])
    assert ok(b.port, "GET", "/hints", token=tok["otto"])["hints"] == [], "dropped at logout"
    a.stop()
    b.stop()


@case
def test_the_mailbox_rate_of_a_sender_is_one_for_every_tracker():
    ts = [start_tracker(S["redis"].url(12), ["--mailbox-rate", "4"]) for _ in range(3)]
    toks = {n: account(ts[0].port, n) for n in ("rita", "sam", "tess")}

    def deposit(t, sender, to):
        return request(t.port, "POST", "/mailbox/" + to, body=base64.b64encode(b"sealed"),
                       headers={"Authorization": "Bearer " + toks[sender]})

    # four deposits spread over the trackers empty rita's one bucket
    for i in range(4):
        st, _, r = deposit(ts[i % 3], "rita", "sam")
        assert st == 201, (i, st, r)
    for t in ts:
        st, h, r = deposit(t, "rita", "tess")
        assert st == 429 and int(h["retry-after"]) >= 1, (st, h, r)
    # another sender has its own; a refusal for the quota takes nothing
    assert deposit(ts[1], "sam", "rita")[0] == 201
    ts.append(start_tracker(S["redis"].url(12), ["--mailbox-rate", "4",
                                                 "--mailbox-max-messages", "1"]))
    assert deposit(ts[3], "tess", "rita")[0] == 507  # rita holds one already
    for i in range(4):
        assert deposit(ts[i % 3], "tess", "sam")[0] == 201
    st, _, _ = deposit(ts[1], "tess", "sam")
    assert st == 429, st
    for t in ts:
        t.stop()


@case
def test_no_key_holds_every_user_and_listings_merge_the_buckets():
    """Presence, the user set and the mail's expiry are split in buckets
    (hy:online:{B}, ...) so that the layout moves to Redis Cluster: no key
    names every user, and a listing of every peer pages through the
    buckets merged, in name order, nothing twice, nothing left out."""
    db = 13
    ts = three(db)
    users = ["n%02d%s" % (i, "abcdefghij"[i % 10]) for i in range(40)]
    toks = {}
    for i, u in enumerate(users):
        toks[u] = account(ts[i % 3].port, u)
        ok(ts[i % 3].port, "POST", "/submit-info", {"ip": "127.0.0.1", "port": 9700 + i},
           toks[u])
    for i, u in enumerate(users):
        st, _, r = request(ts[i % 3].port, "POST", "/mailbox/" + users[i - 1],
                           body=base64.b64encode(b"m"),
                           headers={"Authorization": "Bearer " + toks[u]})
        assert st == 201, (st, r)
    keys = S["redis"].cmd("KEYS", "*", db=db)
    # presence in 4 buckets (a listing reads each it meets), the rest in 64
    for glob, least in (("hy:online", 3), ("hy:names", 3), ("hy:peer", 3), ("hy:users", 5),
                        ("hy:mail", 5)):
        assert glob not in keys, glob
        buckets = [k for k in keys if k.startswith(glob + ":{")]
        assert len(buckets) >= least, (glob, buckets)
        for k in buckets:
            kind = S["redis"].cmd("TYPE", k, db=db)
            n = {"zset": "ZCARD", "hash": "HLEN", "set": "SCARD"}[kind]
            assert S["redis"].cmd(n, k, db=db) < len(users), k
    for t in ts:
        seen, after = [], None
        while True:
            q = "?limit=7" + ("&after=" + after if after else "")
            data = ok(t.port, "GET", "/get-list" + q, token=toks[users[1]])
            seen += [p["username"] for p in data["peers"]]
            if "next" not in data:
                break
            after = data["next"]
        assert seen == sorted(users), seen
        stats = ok(t.port, "GET", "/stats", token=toks[users[1]])
        assert stats["peers"] == 40 and stats["accounts"] == 40, stats
    for t in ts:
        t.stop()


@case
def test_kill_9_of_a_tracker_changes_nothing_the_others_answer():
    ts = three(2)
    toks = {n: account(ts[i % 3].port, n) for i, n in enumerate(("carol", "dave", "erin"))}
    for i, (n, tok) in enumerate(sorted(toks.items())):
        ok(ts[i].port, "POST", "/submit-info",
           {"ip": "127.0.0.1", "port": 9100 + i, "channels": ["room"]}, tok)
    before = names(ts[1].port, toks["dave"], "?channel=room")
    assert before == ["carol", "dave", "erin"], before
    ts[0].stop(signal.SIGKILL)
    # the others serve on: same listing, same tokens, heartbeats land on them
    for t in ts[1:]:
        for n, tok in toks.items():
            ok(t.port, "POST", "/heartbeat", {}, tok)
        assert names(t.port, toks["carol"], "?channel=room") == before
    for t in ts[1:]:
        t.stop()


@case
def test_a_silent_peer_ages_out_everywhere_though_its_tracker_is_dead():
    ts = three(3)
    f = account(ts[0].port, "frank")
    g = account(ts[1].port, "gina")
    ok(ts[0].port, "POST", "/submit-info", {"ip": "127.0.0.1", "port": 9201}, f)
    ok(ts[1].port, "POST", "/submit-info", {"ip": "127.0.0.1", "port": 9202}, g)
    t0 = time.monotonic()
    ts[0].stop(signal.SIGKILL)  # frank's tracker dies; frank says nothing more
    gone = None
    while time.monotonic() - t0 < TTL + 2:
        ok(ts[1].port, "POST", "/heartbeat", {}, g)
        seen = [names(t.port, g) for t in ts[1:]]
        if all(s == ["gina"] for s in seen):
            gone = time.monotonic() - t0
            break
        time.sleep(0.2)
    assert gone is not None and gone <= TTL + 0.5, gone
    for t in ts[1:]:
        assert ok(t.port, "GET", "/stats", token=g)["peers"] == 1
        t.stop()


def pbucket(name):
    """A name's presence bucket (store_redis_lua.c: redis_pbucket())."""
    tail = name.encode()[-4:]
    return (len(name.encode()) + sum(w * b for w, b in zip((7, 5, 3, 1), tail))) % 4


def token_key(token):
    """The Redis key of a token (store_redis_ops.c: token_ref()): it
    carries its user's name, whose presence bucket tags the key."""
    name = token.split("~", 1)[0]
    digest = hashlib.blake2b(token.encode(), digest_size=16).digest()
    return b"hy:t:{%d}:" % pbucket(name) + base64.urlsafe_b64encode(digest).rstrip(b"=")


def until_in_aof(key, timeout=10.0):
    """Waits until Redis has written key to its AOF. An acknowledged write
    is not there yet, with appendfsync everysec: while a background fsync
    is running (a busy disk), Redis postpones its write(2) for up to 2 s
    and answers the clients meanwhile, so kill -9 then loses it."""
    deadline = time.monotonic() + timeout
    while key not in S["redis"].aof_bytes():
        assert time.monotonic() < deadline, "%r not in the AOF after %.0f s" % (key, timeout)
        time.sleep(0.1)


@case
def test_redis_down_means_503_with_retry_after_then_service_again():
    t = start_tracker(S["redis"].url(4))
    h = account(t.port, "hank")
    # The token must outlive the kill: else a 401 for good, not a 503.
    until_in_aof(token_key(h))
    S["redis"].kill()
    for method, path, body in (("GET", "/stats", None), ("POST", "/heartbeat", {}),
                               ("POST", "/login", {"username": "hank", "password": "pw-hank"})):
        st, hdrs, data = api(t.port, method, path, body, h)
        assert st == 503 and hdrs.get("retry-after") == "1", (path, st, hdrs, data)
        assert data["status"] == "failed", data
    S["redis"].start()
    deadline = time.monotonic() + 10
    while True:
        st = api(t.port, "GET", "/stats", token=h)[0]
        if st == 200:
            break
        assert st == 503, st  # never a wrong answer meanwhile
        assert time.monotonic() < deadline, "no service 10 s after Redis came back"
        time.sleep(0.2)
    assert t.alive()
    t.stop()
    out = t.output()
    assert out.count("unreachable") == 1 and out.count("connected") >= 2, out


def syn_sent_ports(port):
    """The local ports of the connects to 127.0.0.1:port not answered yet."""
    out = subprocess.run(["ss", "-Htn", "state", "syn-sent", "dst", "127.0.0.1:%d" % port],
                         capture_output=True, text=True, timeout=10).stdout
    return {line.split()[-2].rsplit(":", 1)[1] for line in out.splitlines() if line.strip()}


@case
def test_a_hanging_connect_does_not_stretch_the_backoff():
    """A listener whose accept queue is full drops SYNs: each of the
    tracker's connects hangs until its 2 s timeout. The attempts must
    still begin at most the backoff's cap (5 s) apart; waiting the whole
    backoff after each hung attempt, they drifted to 7 s."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", free_port()))
    hole.listen(0)
    filler = socket.create_connection(hole.getsockname())  # the queue is now full
    port = hole.getsockname()[1]
    try:
        t = start_tracker("redis://127.0.0.1:%d" % port)
        seen, starts = set(), []
        end = time.monotonic() + 27
        while time.monotonic() < end:
            for p in syn_sent_ports(port) - seen:
                seen.add(p)
                starts.append(time.monotonic())
            time.sleep(0.1)
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert len(starts) >= 7, starts
        assert max(gaps) < 6.2, ["%.1f" % g for g in gaps]
        assert t.alive()
        t.stop()
    finally:
        filler.close()
        hole.close()


@case
def test_a_stopped_redis_is_found_by_its_silence():
    """SIGSTOP keeps Redis's sockets open but answers nothing: the calls
    waiting on it get 503 within the reply timeout (5 s), not never."""
    t = start_tracker(S["redis"].url(10))
    tok = account(t.port, "nina")
    os.kill(S["redis"].proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        st, hdrs, _ = api(t.port, "GET", "/stats", token=tok)
        waited = time.monotonic() - t0
        assert st == 503 and hdrs.get("retry-after") == "1", st
        assert waited < 8, waited
    finally:
        os.kill(S["redis"].proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while api(t.port, "GET", "/stats", token=tok)[0] != 200:
        assert time.monotonic() < deadline, "no service 10 s after SIGCONT"
        time.sleep(0.2)
    t.stop()
    assert "no answer for 5 s" in t.output()


@case
def test_a_redis_restart_from_its_aof_keeps_the_accounts():
    t = start_tracker(S["redis"].url(5))
    tok = account(t.port, "ivy")
    ok(t.port, "POST", "/add-list", {"channel": "kept"}, tok)
    until_in_aof(b"hy:uc:{ivy}")  # appendfsync everysec: the last second may be lost
    S["redis"].restart()  # kill -9, then the same directory
    deadline = time.monotonic() + 10
    while True:
        st, _, data = api(t.port, "POST", "/login", {"username": "ivy", "password": "pw-ivy"})
        if st == 200:
            break
        assert st == 503 and time.monotonic() < deadline, (st, data)
        time.sleep(0.2)
    tok = data["token"]
    chans = ok(t.port, "GET", "/channels", token=tok)["channels"]
    assert chans == [{"name": "kept", "members": 1}], chans
    t.stop()


@case
def test_migrate_from_sqlite_copies_accounts_keys_memberships_profiles_and_mail():
    db = os.path.join(S["dir"], "old.db")
    port = free_port()
    old = Proc([TRACKER, "--listen", "127.0.0.1:%d" % port, "--db", db, "--quiet",
                "--kdf-cost", "min"], port=port)
    toks = {n: account(port, n) for n in ("jack", "kate", "liam")}
    ok(port, "POST", "/submit-info", {"ip": "127.0.0.1", "port": 9301, "pubkey": "SkFDSw==",
                                      "channels": ["a", "b"]}, toks["jack"])
    ok(port, "POST", "/submit-info", {"ip": "127.0.0.1", "port": 9302,
                                      "channels": ["b"]}, toks["kate"])
    ok(port, "POST", "/add-list", {"channel": "c"}, toks["liam"])
    ok(port, "POST", "/profile", {"display_name": "Jack R.", "status_line": "at sea"},
       toks["jack"])
    mail = []
    for blob in (b"sealed one", b"sealed\x00two\xff"):
        st, _, r = request(port, "POST", "/mailbox/liam", body=base64.b64encode(blob),
                           headers={"Authorization": "Bearer " + toks["kate"]})
        assert st == 201, (st, r)
        mail.append((json.loads(r)["id"], blob))
    old_times = [m["time"] for m in ok(port, "GET", "/mailbox", token=toks["liam"])["messages"]]
    old.stop()
    url = S["redis"].url(6)
    out = subprocess.run([TRACKER, "--migrate-from", "sqlite:" + db, "--store", url],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out
    assert "migrated 3 accounts, 1 keys, 4 memberships (3 channels), 1 profiles, " \
        "2 mailbox messages" in out.stdout, out.stdout
    t = start_tracker(url)
    tok = ok(t.port, "POST", "/login", {"username": "kate", "password": "pw-kate"})["token"]
    chans = ok(t.port, "GET", "/channels", token=tok)["channels"]
    assert chans == [{"name": "a", "members": 1}, {"name": "b", "members": 2},
                     {"name": "c", "members": 1}], chans
    data = ok(t.port, "GET", "/peers/jack?channel=b", token=tok)
    assert data["pubkey"] == "SkFDSw==" and data["member"] and not data["online"], data
    assert ok(t.port, "GET", "/stats", token=tok)["accounts"] == 3
    # the members list the way a listing asks
    assert ok(t.port, "POST", "/add-list", {"channel": "b"}, tok)["members"] == ["jack", "kate"]
    assert data["display_name"] == "Jack R." and data["status_line"] == "at sea", data
    # liam's mailbox: the same ids, times and blobs, counted, and new ids above them
    login = ok(t.port, "POST", "/login", {"username": "liam", "password": "pw-liam"})
    assert login["mail"] == 2, login
    got = ok(t.port, "GET", "/mailbox", token=login["token"])["messages"]
    assert [(m["id"], base64.b64decode(m["blob"])) for m in got] == mail, got
    assert [m["time"] for m in got] == old_times, got
    st, _, r = request(t.port, "POST", "/mailbox/liam", body=base64.b64encode(b"new"),
                       headers={"Authorization": "Bearer " + tok})
    assert st == 201 and json.loads(r)["id"] > mail[-1][0], (st, r)
    assert ok(t.port, "POST", "/mailbox/ack", {"ids": [mail[0][0]]},
              login["token"])["deleted"] == 1
    t.stop()
    # a second run replaces the mailbox the first copied (nothing counted
    # twice), and ids still only grow
    out = subprocess.run([TRACKER, "--migrate-from", "sqlite:" + db, "--store", url],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "2 mailbox messages" in out.stdout, out
    t = start_tracker(url)
    login = ok(t.port, "POST", "/login", {"username": "liam", "password": "pw-liam"})
    assert login["mail"] == 2, login
    st, _, r = request(t.port, "POST", "/mailbox/liam", body=base64.b64encode(b"newer"),
                       headers={"Authorization": "Bearer " + tok})
    assert st == 201 and json.loads(r)["id"] > mail[-1][0] + 1, (st, r)
    t.stop()
    for bad in (["--migrate-from", "sqlite:" + db],
                ["--migrate-from", "sqlite:/nonexistent.db", "--store", url],
                ["--migrate-from", "mysql:x", "--store", url]):
        out = subprocess.run([TRACKER] + bad, capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and out.stderr.strip(), (bad, out)


def wait_for(what, fn, timeout):
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


@case
def test_a_primary_killed_is_followed_through_the_sentinels_and_loses_nothing():
    primary = RedisServer()
    replica = RedisServer(extra=["--replicaof", "127.0.0.1", str(primary.port)])
    sentinels = []
    try:
        sentinels = [Sentinel("hymain", primary.port) for _ in range(3)]
        wait_for("the replica to sync", lambda: "master_link_status:up" in replica.cmd(
            "INFO", "replication"), 15)

        def ready(sn):
            info = sn.cmd("SENTINEL", "MASTER", "hymain")
            fields = dict(zip(info[::2], info[1::2]))
            return fields["num-slaves"] == "1" and fields["num-other-sentinels"] == "2"
        wait_for("the sentinels to know each other and the replica",
                 lambda: all(ready(sn) for sn in sentinels), 30)
        url = "redis-sentinel://" + ",".join("127.0.0.1:%d" % sn.port for sn in sentinels) + \
            "/hymain"
        ts = [start_tracker(url) for _ in range(2)]
        wait_for("the trackers to reach the primary",
                 lambda: all(api(t.port, "POST", "/register",
                                 {"username": "probe%d" % t.port, "password": "x"})[0] == 201
                             for t in ts), 10)
        users = ["u%02d" % i for i in range(12)]
        toks = {}
        for i, u in enumerate(users):
            # each 201 means a replica had the account (WAIT 1)
            toks[u] = account(ts[i % 2].port, u)
            ok(ts[i % 2].port, "POST", "/submit-info",
               {"ip": "127.0.0.1", "port": 9500 + i, "channels": ["ha"],
                "pubkey": "S0VZ%04d" % i}, toks[u])
        t0 = time.monotonic()
        primary.kill()
        saw_503, back = False, None
        while time.monotonic() - t0 < 15:
            codes = [api(t.port, "GET", "/stats", token=toks["u00"])[0] for t in ts]
            assert all(c in (200, 503) for c in codes), codes
            saw_503 |= 503 in codes
            if codes == [200, 200] and saw_503:
                back = time.monotonic() - t0
                break
            time.sleep(0.2)
        assert saw_503 and back is not None and back <= 10, (saw_503, back)
        for t in ts:
            assert t.alive()
            for i, u in enumerate(users):
                data = ok(t.port, "POST", "/login", {"username": u, "password": "pw-" + u})
                info = ok(t.port, "GET", "/peers/%s?channel=ha" % u, token=data["token"])
                assert info["member"] and info["pubkey"] == "S0VZ%04d" % i, info
        print("  failover followed in %.1f s" % back)
        for t in ts:
            t.stop()
    finally:
        for sn in sentinels:
            sn.close()
        replica.close()
        primary.close()


@case
def test_a_peer_fails_over_to_the_next_tracker_without_logging_in_again():
    from peer_harness import start_peer, stop_checked
    ts = [start_tracker(S["redis"].url(8), quiet=False) for _ in range(2)]
    watcher = account(ts[1].port, "watcher")
    ok(ts[0].port, "POST", "/register", {"username": "mia", "password": "pw-mia"}, status=201)
    peer = start_peer("mia", ts[0].port, S["dir"], "pw-mia",
                      extra=["--tracker", "http://127.0.0.1:%d" % ts[1].port])
    try:
        assert "mia" in names(ts[1].port, watcher)
        sessions = ok(ts[1].port, "GET", "/stats", token=watcher)["sessions"]
        time.sleep(TTL / 2 + 0.5)  # one heartbeat, to the first tracker given
        assert "POST /heartbeat" in ts[0].output()
        assert "POST /heartbeat" not in ts[1].output()
        ts[0].stop(signal.SIGKILL)  # the tracker mia uses first
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3 * TTL:
            assert "mia" in names(ts[1].port, watcher), "mia dropped out"
            time.sleep(0.5)
        # her heartbeats went to the other tracker, on the same token
        assert "POST /heartbeat" in ts[1].output()
        assert "POST /login" not in ts[1].output().split("GET /stats")[-1]
        assert ok(ts[1].port, "GET", "/stats", token=watcher)["sessions"] == sessions
        assert peer.alive()
    finally:
        bad = stop_checked([peer])
        ts[1].stop()
    assert not bad, bad


def start_proxy(ports):
    conf = os.path.join(S["dir"], "cluster-%d.conf" % ports[0])
    with open(conf, "w") as f:
        f.write('host "127.0.0.1" default {\n' +
                "".join("    proxy_pass http://127.0.0.1:%d;\n" % p for p in ports) +
                "    dist_policy round-robin;\n    proxy_connect_timeout 1s;\n"
                "    max_fails 1;\n    fail_timeout 5s;\n}\n")
    port = free_port()
    p = Proc([binary("hychat-proxy"), "-c", conf, "--listen", "127.0.0.1:%d" % port], port=port)
    p.port = port
    S["procs"].append(p)
    return p


NOGUARD = ["--login-addr-burst", "0", "--login-pair-burst", "0", "--login-account-burst", "0",
           "--max-hash-jobs-per-addr", "64", "--ttl", "20"]


@case
def test_three_peers_chat_through_the_proxy_while_a_tracker_dies():
    """Three real peers and 500 simulated clients heartbeating, through
    hychat-proxy to three trackers; kill -9 of one mid-conversation: the
    peers keep chatting, nobody logs in again, nobody drops out."""
    from concurrent.futures import ThreadPoolExecutor
    from peer_harness import start_peer, stop_checked
    ts = [start_tracker(S["redis"].url(9), NOGUARD) for _ in range(3)]
    proxy = start_proxy([t.port for t in ts])
    sims = ["sim%03d" % i for i in range(500)]

    with ThreadPoolExecutor(8) as pool:
        toks = list(pool.map(lambda n: account(proxy.port, n), sims))
    people = ("ann", "ben", "cat")
    for n in people:
        ok(proxy.port, "POST", "/register", {"username": n, "password": "pw-" + n}, status=201)
    peers = {n: start_peer(n, proxy.port, S["dir"], "pw-" + n) for n in people}
    stop_beating = [False]
    failures = []

    rounds = []

    def beat(chunk, first):
        for i, tok in zip(range(first, 500, 4), chunk):
            ok(proxy.port, "POST", "/submit-info", {"ip": "127.0.0.1", "port": 20000 + i}, tok)
        while not stop_beating[0]:
            t0 = time.monotonic()
            for tok in chunk:
                st = api(proxy.port, "POST", "/heartbeat", {}, tok)[0]
                if st != 200:
                    failures.append(st)
            rounds.append(time.monotonic() - t0)
            time.sleep(1.0)
    pool = ThreadPoolExecutor(4)
    for i in range(4):
        pool.submit(beat, toks[i::4], i)
    while len(rounds) < 4:
        time.sleep(0.2)
    try:
        def say(a, b, text):
            m = peers[b].mark()
            peers[a].cmd("/send %s %s" % (b, text))
            peers[b].wait(lambda e: e.get("type") == "chat" and e.get("message") == text and
                          not e.get("outgoing"), 15, m, text)
        say("ann", "ben", "before the kill")
        say("cat", "ann", "me too")
        tok = toks[0]
        sessions = ok(proxy.port, "GET", "/stats", token=tok)["sessions"]
        ts[0].stop(signal.SIGKILL)
        for i in range(3):
            say("ben", "cat", "after the kill %d" % i)
            say("cat", "ann", "still here %d" % i)
            time.sleep(1.0)
        time.sleep(21)  # past the TTL: every heartbeat went elsewhere
        for t in ts[1:]:
            listed, after = [], ""
            while True:
                data = ok(t.port, "GET", "/get-list" + ("?after=" + after if after else ""),
                          token=tok)
                listed += [p["username"] for p in data["peers"]]
                if "next" not in data:
                    break
                after = data["next"]
            assert sorted(listed) == sorted(sims + list(people)), (len(listed), failures[:10],
                                                                   len(failures))
        assert ok(proxy.port, "GET", "/stats", token=tok)["sessions"] == sessions
        assert len(failures) < 10, failures[:20]  # those in flight at the kill, at most
        print("  heartbeat rounds of 125 clients: %.1f s at most" % max(rounds))
    finally:
        stop_beating[0] = True
        pool.shutdown()
        bad = stop_checked(peers.values())
        for t in ts[1:]:
            t.stop()
        proxy.stop()
    assert not bad, bad


@case
def test_a_wrong_store_url_is_a_usage_error():
    for bad in ("redis://", "redis://127.0.0.1:0", "redis://127.0.0.1:6379/x", "memcache://x",
                "redis-sentinel://127.0.0.1:26379", "redis-sentinel:///m"):
        out = subprocess.run([TRACKER, "--store", bad, "--listen", "127.0.0.1:%d" % free_port()],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode in (1, 2) and "--store" in out.stderr, (bad, out)


if __name__ == "__main__":
    run(setup, teardown)
