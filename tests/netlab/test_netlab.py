#!/usr/bin/env python3
"""hychat across NATs, in network namespaces (netlab.py): for each
topology, ATTEMPTS times, bob starts afresh and alice's first message
(sent once he is logged in) must reach him within 2 s of his start (5 s
through the relay), over a link whose path in
alice's `link` event is the one expected. Through the relay, a capture on
the internet namespace (where the relay runs) holds the token lines but
no message text. A conntrack flush on both NATs in the middle of a
conversation loses no message and duplicates none. In "dual" (IPv4 as
in "random", IPv6 routed) the link is direct: over IPv6. In "preserving",
with both routers first dropping what goes to the other site, the link is
relayed, then moves to a punched one once the rule is removed, no message
lost or duplicated across the switch. In "random", a file sent over the
relayed link lands with the same hash, the link relayed throughout. In "lossy" ("preserving" with 1%
loss each way on each internet link, and 50 ms each way where the kernel
has netem) a simultaneous open that lost what mattered may fall back to
the relay (its 5 s bound), and must then move to punched.

Needs root: without it (or without ip, iptables, conntrack) it says why
and exits 77, which meson counts as skipped."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import netlab  # noqa: E402

ATTEMPTS = int(os.environ.get("NETLAB_ATTEMPTS", "20"))
TRACKER = "%s:8001" % netlab.INET_SVC
RELAY = "%s:7400" % netlab.INET_SVC
# topology, expected path, first-message bound (s)
PLAN = [("lan", "direct", 2.0), ("public", "direct", 2.0), ("preserving", "punched", 2.0),
        ("random", "relayed", 5.0), ("dual", "direct", 2.0), ("lossy", "punched", 2.0)]
if os.environ.get("NETLAB_ONLY"):
    PLAN = [x for x in PLAN if x[0] in os.environ["NETLAB_ONLY"].split(",")]
PASSWORD = "netlab password"
RELAY_BOUND = 5.0  # the first message through the relay
UPGRADE_BOUND = 10.0  # s to a direct link once possible (tries 2, 6, 14 s after relayed)
SITE_NET = {s: wan + ".0/24" for s, (wan, lan) in netlab.SITES.items()}


def fail(msg):
    print("FAIL " + msg, flush=True)
    raise SystemExit(1)


def wait_listen(lab, role, hostport, timeout=15):
    host, port = hostport.rsplit(":", 1)
    code = ("import socket,time,sys\n"
            "d=time.monotonic()+%d\n"
            "while time.monotonic()<d:\n"
            "  try:\n    socket.create_connection(('%s',%s),0.5).close(); sys.exit(0)\n"
            "  except OSError: time.sleep(0.05)\n"
            "sys.exit(1)\n" % (timeout, host, port))
    if lab.run(role, sys.executable, "-c", code, check=False).returncode != 0:
        fail("nothing listens on %s in %s" % (hostport, role))


class World:
    def __init__(self, lab, tmp):
        from hytest import binary
        from peer_harness import Peer
        self.Peer = Peer
        self.lab = lab
        self.tmp = tmp
        secret = os.path.join(tmp, "relay.secret")
        with open(secret, "w") as f:
            f.write("netlab relay secret " + os.urandom(16).hex() + "\n")
        os.chmod(secret, 0o600)
        db = os.path.join(tmp, "tracker.db")
        for user in ("alice", "bob"):
            subprocess.run([binary("hychat-tracker"), "--db", db, "--kdf-cost", "min",
                            "--add-user", user], input=PASSWORD + "\n", text=True,
                           check=True, capture_output=True)
        self.logs = {}
        self.tracker = self.spawn("inet", "tracker",
                                  [binary("hychat-tracker"), "--listen", TRACKER, "--db", db,
                                   "--quiet", "--relay", RELAY, "--relay-secret", secret])
        self.relay = self.spawn("inet", "relay", [binary("hychat-relay"), "--listen", RELAY,
                                                  "--relay-secret", secret, "-v"])
        wait_listen(lab, "inet", TRACKER)
        wait_listen(lab, "inet", RELAY)

    def spawn(self, role, name, argv):
        log = open(os.path.join(self.tmp, name + ".log"), "wb")
        self.logs[name] = log.name
        p = subprocess.Popen(self.lab.argv(role, *argv), stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.lab.procs.append(p)
        return p

    def peer(self, name, role=None, env=None):
        p = self.Peer(name, 9000, "http://" + TRACKER, os.path.join(self.tmp, "peer-" + name),
                      PASSWORD, extra=["--listen", "0.0.0.0", "--allow-insecure-tracker"]
                      + (["--verbose"] if os.environ.get("NETLAB_VERBOSE") else []),
                      wrap=self.lab.argv(role or name), env=env)
        self.lab.procs.append(p.p)
        p.wait_type("tracker", 20, state="online")
        return p

    def stop(self):
        bad = []
        for name, p in (("tracker", self.tracker), ("relay", self.relay)):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            out = open(self.logs[name], errors="replace").read()
            if p.returncode != 0 or "runtime error" in out or "AddressSanitizer" in out:
                bad.append("%s exited %s:\n%s" % (name, p.returncode, out[-3000:]))
        return bad


def chats(p, since, text):
    return [e for e in p.events(since) if e.get("type") == "chat" and e.get("message") == text
            and not e.get("outgoing")]


def attempts(w, topo, expect, bound):
    """With loss ("lossy"), a simultaneous open can lose the packets that
    mattered and fall back to the relay: that attempt is held to the
    relay's bound, and its link must then move to the expected path
    within UPGRADE_BOUND s (the upgrade)."""
    lossy = bool(netlab.TOPOLOGIES[topo].get("netem"))
    alice = w.peer("alice")
    times = []
    fallbacks = []
    bob = None
    try:
        for i in range(ATTEMPTS):
            # An attempt starts with bob's process: his start, his login,
            # whatever link his start makes, then alice's first message.
            m = alice.mark()
            t0 = time.monotonic()
            bob = w.peer("bob")
            text = "netlab %s attempt %d %s" % (topo, i, os.urandom(4).hex())
            alice.cmd("msg bob " + text)
            bob.wait(lambda e: e.get("type") == "chat" and e.get("message") == text,
                     bound + 5, 0, "the first message")
            took = time.monotonic() - t0
            alice.wait_type("link", 5, m, peer="bob", state="up")
            up = [e for e in alice.events(m) if e.get("type") == "link"
                  and e.get("peer") == "bob" and e.get("state") == "up"][-1]
            limit = bound
            if lossy and up.get("path") == "relayed" and took <= RELAY_BOUND:
                t1 = time.monotonic()
                up = alice.wait_type("link", UPGRADE_BOUND, m, peer="bob", state="up",
                                     path=expect)
                fallbacks.append("attempt %d: relayed at %.2f s, %s %.1f s later"
                                 % (i, took, expect, time.monotonic() - t1))
                limit = RELAY_BOUND
            if up.get("path") != expect:
                fail("%s attempt %d: path %s, expected %s: %s" % (topo, i, up.get("path"),
                                                                  expect, up))
            if expect == "relayed" and up.get("via") != RELAY:
                fail("%s attempt %d: via %s" % (topo, i, up.get("via")))
            if took > limit:
                fail("%s attempt %d: first message after %.2f s (bound %.1f s)"
                     % (topo, i, took, limit))
            times.append(took)
            bad = [] if bob.stop("quit") == 0 else ["bob exited %s" % bob.p.returncode]
            if bad:
                fail("%s: %s\n%s" % (topo, bad, bob.stderr()[-3000:]))
    except BaseException:
        print("alice's stderr:\n" + alice.stderr()[-3000:])
        if bob is not None:
            print("bob's stderr:\n" + bob.stderr()[-3000:])
        print("relay log:\n" + open(w.logs["relay"], errors="replace").read()[-3000:])
        raise
    times.sort()
    print("ok   %-11s %d/%d via %-7s first message %.2f s after bob's start (median), max %.2f s"
          % (topo, len(times), ATTEMPTS, expect, times[len(times) // 2], times[-1]), flush=True)
    for f in fallbacks:
        print("     %-11s %s" % (topo, f), flush=True)
    return alice


def flush_test(w, alice):
    """conntrack -F on both NATs mid-conversation: all arrive, once."""
    bob = w.peer("bob")
    mb = bob.mark()
    ma = alice.mark()
    texts = ["flush %d %s" % (i, os.urandom(3).hex()) for i in range(30)]
    for i, t in enumerate(texts):
        alice.cmd("msg bob " + t)
        time.sleep(0.1)
        if i == 10:
            w.lab.flush_conntrack("a")
            w.lab.flush_conntrack("b")
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if all(chats(bob, mb, t) for t in texts):
            break
        time.sleep(0.2)
    missing = [t for t in texts if not chats(bob, mb, t)]
    dup = [t for t in texts if len(chats(bob, mb, t)) > 1]
    if missing or dup:
        fail("flush: %d missing, %d duplicated; bob's last events: %s"
             % (len(missing), len(dup), bob.events(mb)[-6:]))
    downs = len([e for e in alice.events(ma) if e.get("type") == "link" and
                 e.get("state") == "down"])
    print("ok   flush       30/30 messages once each after conntrack -F on both NATs "
          "(link re-established %d time(s))" % downs, flush=True)
    if bob.stop("quit") != 0:
        fail("bob exited %s" % bob.p.returncode)




FILE_MIB = 6  # three windows; the relay passes 1 MiB/s per user (its default)


def file_test(w, alice):
    """A file from alice to bob over their relayed link: bob accepts, it
    lands with the hash offered (BLAKE2b) and the same bytes (SHA-256
    here), and the link stays relayed from the offer to the end."""
    import hashlib
    src = os.path.join(w.tmp, "relayed.bin")
    block = os.urandom(1 << 20)
    with open(src, "wb") as f:
        for i in range(FILE_MIB):
            f.write(i.to_bytes(4, "big") + block[4:])
    want = hashlib.sha256(open(src, "rb").read()).hexdigest()
    down = os.path.join(w.tmp, "dl-bob")
    bob = w.peer("bob", env={"XDG_DOWNLOAD_DIR": down})
    try:
        ma, mb = alice.mark(), bob.mark()
        text = "netlab file %s" % os.urandom(4).hex()
        alice.cmd("msg bob " + text)  # the link, through the relay
        bob.wait(lambda e: e.get("type") == "chat" and e.get("message") == text, 10, mb,
                 "the message before the file")
        up = [e for e in alice.events(ma) if e.get("type") == "link" and
              e.get("peer") == "bob" and e.get("state") == "up"]
        if not up or up[-1].get("path") != "relayed":
            fail("file: the link is not relayed: %s" % up[-1:])
        ma = alice.mark()
        t0 = time.monotonic()
        alice.cmd("sendfile bob " + src)
        offer = bob.wait_type("file_offer", 30, mb, **{"from": "alice"})
        bob.cmd("accept " + offer["id"])
        done = bob.wait(lambda e: e.get("type") == "transfer" and e.get("id") == offer["id"]
                        and e.get("state") in ("done", "failed", "cancelled"), 120, mb,
                        "the transfer's end")
        took = time.monotonic() - t0
        if done["state"] != "done":
            fail("file: the transfer ended %s: %s" % (done["state"], done.get("error")))
        got = hashlib.sha256(open(done["path"], "rb").read()).hexdigest()
        if got != want or done.get("hash") != offer["hash"]:
            fail("file: %s arrived with another hash (sha256 %s, want %s)"
                 % (done["path"], got, want))
        links = [e for e in alice.events(ma) if e.get("type") == "link" and
                 e.get("peer") == "bob"]
        if links:
            fail("file: the link changed during the transfer: %s" % links)
        print("ok   file        %d MiB over the relayed link in %.1f s (the relay's 1 MiB/s), "
              "same hash" % (FILE_MIB, took), flush=True)
    except BaseException:
        print("alice's stderr:\n" + alice.stderr()[-3000:])
        print("bob's stderr:\n" + bob.stderr()[-3000:])
        raise
    if bob.stop("quit") != 0:
        fail("bob exited %s" % bob.p.returncode)


def upgrade_test(w, alice):
    """Both routers drop what goes to the other site (the relay is
    taken); once a try at a direct link has failed against that, the rule
    is removed: within UPGRADE_BOUND s both ends move to a punched link;
    messages sent both ways every 0.15 s across the switch arrive once
    each."""
    rules = [("a", SITE_NET["b"]), ("b", SITE_NET["a"])]
    for site, other in rules:
        w.lab.run("r" + site, "iptables", "-I", "FORWARD", "1", "-d", other, "-j", "DROP")
    bob = w.peer("bob")
    ma, mb = alice.mark(), bob.mark()
    alice.cmd("msg bob upgrade first")
    bob.wait(lambda e: e.get("type") == "chat" and e.get("message") == "upgrade first", 10, mb,
             "the first message")
    up = alice.wait_type("link", 5, ma, peer="bob", state="up")
    t_up = time.monotonic()
    if up.get("path") != "relayed":
        fail("upgrade: blocked, the path is %s, not relayed: %s" % (up.get("path"), up))
    # Lifted between two tries: once the first (2 s after the relayed
    # link) has failed against the rule. Lifted in the middle of one, a
    # SYN let through late can land on a listener instead of the
    # simultaneous open and hold the ports for the next tries.
    before = alice.stderr().count("closed: handshake timed out")
    deadline = t_up + 5  # at the latest between the tries at 2 and 6 s
    while time.monotonic() < deadline and \
            alice.stderr().count("closed: handshake timed out") <= before:
        time.sleep(0.1)
    for site, other in rules:
        w.lab.run("r" + site, "iptables", "-D", "FORWARD", "-d", other, "-j", "DROP")
    t_lift = time.monotonic()
    sent = {"alice": [], "bob": []}
    switched = None
    i = 0
    while time.monotonic() - t_lift < UPGRADE_BOUND + 5:
        who, to, p = (("alice", "bob", alice), ("bob", "alice", bob))[i % 2]
        text = "upgrade %s %d %s" % (who, i, os.urandom(3).hex())
        p.cmd("msg %s %s" % (to, text))
        sent[who].append(text)
        i += 1
        time.sleep(0.15)
        if switched is None and any(e.get("type") == "link" and e.get("path") == "punched"
                                    for e in alice.events(ma)):
            switched = time.monotonic() - t_lift
        if switched is not None and time.monotonic() - t_lift > switched + 3:
            break
    if switched is None or switched > UPGRADE_BOUND:
        print("alice's stderr:\n" + alice.stderr()[-3000:])
        print("bob's stderr:\n" + bob.stderr()[-2000:])
        fail("upgrade: no punched link within %.0f s of the lift; alice's links: %s"
             % (UPGRADE_BOUND, [e for e in alice.events(ma) if e.get("type") == "link"]))
    bob.wait_type("link", 5, mb, peer="alice", state="up", path="punched")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(chats(bob, mb, t) for t in sent["alice"]) and \
                all(chats(alice, ma, t) for t in sent["bob"]):
            break
        time.sleep(0.2)
    bad = []
    for p, mark, texts in ((bob, mb, sent["alice"]), (alice, ma, sent["bob"])):
        bad += ["%s missing" % t for t in texts if not chats(p, mark, t)]
        bad += ["%s %d times" % (t, len(chats(p, mark, t))) for t in texts
                if len(chats(p, mark, t)) > 1]
    if bad:
        fail("upgrade: %s" % bad[:10])
    downs = [e for e in alice.events(ma) if e.get("type") == "link" and e.get("state") == "down"]
    print("ok   upgrade     relayed, then punched %.1f s after the lift; %d messages both ways "
          "across the switch, once each (%d link down event(s))"
          % (switched, len(sent["alice"]) + len(sent["bob"]), len(downs)), flush=True)
    if bob.stop("quit") != 0:
        fail("bob exited %s" % bob.p.returncode)


def capture_check(cap, texts_prefix=b"netlab random"):
    data = open(cap, "rb").read()
    if b"HYRELAY1" not in data:
        fail("the capture saw no relay traffic (%d bytes)" % len(data))
    if texts_prefix in data or b"flush " in data:
        fail("message text in the capture of the relay's traffic")
    print("ok   capture     %d bytes of the relay's traffic: token lines, no message text"
          % len(data), flush=True)


def main():
    why = netlab.check()
    if why:
        print("netlab: skipped: " + why, flush=True)
        sys.exit(77)
    t_start = time.monotonic()
    for topo, expect, bound in PLAN:
        tmp = tempfile.mkdtemp(prefix="hychat-netlab-")
        lab = netlab.Lab()
        try:
            lab.build(**netlab.TOPOLOGIES[topo])
            if lab.impaired:
                print("     %-11s the internet links: %s" % (topo, lab.impaired), flush=True)
            w = World(lab, tmp)
            cap = None
            tcpdump = None
            if topo == "random" and shutil.which("tcpdump"):
                cap = os.path.join(tmp, "relay.pcap")
                tcpdump = subprocess.Popen(lab.argv("inet", "tcpdump", "-i", "any", "-U", "-s",
                                                    "0", "-Z", "root", "-w", cap, "tcp",
                                                    "port", "7400"),
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                lab.procs.append(tcpdump)
                time.sleep(0.5)
            if topo == "preserving":
                # First, on fresh namespaces: a link of an earlier
                # attempt, closing, would hold the very ports while the
                # rule drops the last ACK (LAST_ACK), and make the
                # simultaneous open fail (EADDRNOTAVAIL) until it ends.
                first = w.peer("alice")
                upgrade_test(w, first)
                if first.stop("quit") != 0:
                    fail("alice exited %s" % first.p.returncode)
            alice = attempts(w, topo, expect, bound)
            if topo == "random":
                file_test(w, alice)
                flush_test(w, alice)
            if alice.stop("quit") != 0:
                fail("alice exited %s:\n%s" % (alice.p.returncode, alice.stderr()[-3000:]))
            if tcpdump is not None:
                time.sleep(0.3)
                tcpdump.terminate()
                tcpdump.wait(5)
                capture_check(cap)
            bad = w.stop()
            if bad:
                fail("\n".join(bad))
        finally:
            lab.down()
            shutil.rmtree(tmp, ignore_errors=True)
    print("netlab: %d topologies in %.0f s" % (len(PLAN), time.monotonic() - t_start))
    print("%d passed, 0 failed" % len(PLAN))


if __name__ == "__main__":
    main()
