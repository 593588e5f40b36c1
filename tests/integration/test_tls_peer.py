#!/usr/bin/env python3
"""hychat, the peer, against a tracker that speaks TLS. A test CA and a
certificate for 127.0.0.1 it signed, and a self-signed one, all ECDSA P-256.
Peers register, log in and chat through the HTTPS tracker trusting the test
CA, and separately trusting nothing but a pinned key; a certificate no CA
vouches for, a name it does not cover, or a key that is not the pinned one
stops the login with an error event that names it; a plain http:// tracker
on another machine is refused before any connection unless allowed; and a
capture of the bytes between a peer and the TLS tracker holds neither the
password nor the token, where the same capture over plain HTTP holds both."""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import binary, case, free_port, run  # noqa: E402
from peer_harness import (Peer, Relay, make_test_certs, start_tls_tracker,  # noqa: E402
                          start_tracker)

S = {}


def setup():
    S["tmp"] = tempfile.mkdtemp(prefix="hychat-tls-peer-test-")
    S["certs"] = make_test_certs(S["tmp"])
    c = S["certs"]
    S["ca_tracker"] = start_tls_tracker(S["tmp"], c["cert"], c["key"])
    S["self_tracker"] = start_tls_tracker(S["tmp"], c["self_cert"], c["self_key"])


def teardown(_):
    for k in ("ca_tracker", "self_tracker"):
        if k in S:
            S[k].stop()
    shutil.rmtree(S["tmp"], ignore_errors=True)


def peer(name, url, extra=(), password=None):
    d = tempfile.mkdtemp(prefix=name + "-", dir=S["tmp"])
    return Peer(name, free_port(), url, d, password, extra)


def register_and_login(p, password):
    """Registers p's account through its tracker (which then logs it in)
    and waits until it is online."""
    since = p.mark()
    p.cmd("register %s %s" % (p.name, password))
    p.wait_type("register_result", 20, since, status="success")
    p.wait_type("login_result", 20, since, status="success")
    return p.wait_type("tracker", 20, since, state="online")


def chat(a, b):
    since = b.mark()
    text = "over https %d" % time.monotonic_ns()
    a.cmd("send %s %s" % (b.name, text))
    ev = b.wait(lambda e: e.get("type") == "chat" and e.get("message") == text, 20, since,
                "the message from " + a.name)
    assert ev["from"] == a.name and ev["encrypted"] is True, ev


def refused(p, password, words):
    """p's login fails, and an error event says why with each of words."""
    since = p.mark()
    p.cmd("login %s %s" % (p.name, password))
    res = p.wait_type("login_result", 20, since)
    assert res["status"] == "failed", res
    err = p.wait_type("error", 10, since)
    for w in words:
        assert w in res["message"], (w, res)
        assert w in err["message"], (w, err)
    return err


@case
def peers_register_log_in_and_chat_through_a_tracker_signed_by_a_test_ca():
    url = S["ca_tracker"].url()
    a = peer("tlsca_a", url, ["--tracker-ca", S["certs"]["ca"]])
    b = peer("tlsca_b", url, ["--tracker-ca", S["certs"]["ca"]])
    try:
        ev = register_and_login(a, "ca pw a")
        assert ev.get("tls") is True, ev
        register_and_login(b, "ca pw b")
        chat(a, b)
        chat(b, a)
    finally:
        a.stop()
        b.stop()


@case
def a_pin_alone_trusts_a_self_signed_tracker():
    url = S["self_tracker"].url()
    pin = ["--tracker-pin", S["certs"]["self_pin"]]
    a = peer("pin_a", url, pin)
    b = peer("pin_b", url, pin)
    try:
        ev = register_and_login(a, "pin pw a")
        assert ev.get("tls") is True, ev
        register_and_login(b, "pin pw b")
        chat(a, b)
    finally:
        a.stop()
        b.stop()


@case
def a_ca_and_the_right_pin_together_are_accepted():
    p = peer("both_ok", S["ca_tracker"].url(),
             ["--tracker-ca", S["certs"]["ca"], "--tracker-pin", S["certs"]["pin"]])
    try:
        register_and_login(p, "both pw")
    finally:
        p.stop()


@case
def a_certificate_no_ca_vouches_for_stops_the_login_with_an_error():
    # The system's CAs, then the test CA: neither signed the self-signed one;
    # nor does its right pin make up for the CA that does not vouch.
    for extra in ([], ["--tracker-ca", S["certs"]["ca"]],
                  ["--tracker-ca", S["certs"]["ca"], "--tracker-pin", S["certs"]["self_pin"]]):
        p = peer("untrusted", S["self_tracker"].url(), extra)
        try:
            err = refused(p, "untrusted pw", ["certificate", "self-signed"])
            assert "not trusted" in err["message"], err
        finally:
            p.stop()


@case
def a_name_the_certificate_does_not_cover_stops_the_login():
    # The certificate is for 127.0.0.1, not for "localhost"; with a CA the
    # name is checked, even when the pin is right.
    for extra in ([], ["--tracker-pin", S["certs"]["pin"]]):
        p = peer("wrongname", S["ca_tracker"].url("localhost"),
                 ["--tracker-ca", S["certs"]["ca"]] + extra)
        try:
            refused(p, "name pw", ["not trusted", "localhost"])
        finally:
            p.stop()


@case
def a_wrong_pin_stops_the_login_with_an_error_naming_the_pin():
    other = S["certs"]["other_pin"]
    cases = [(S["self_tracker"], ["--tracker-pin", other]),
             (S["ca_tracker"], ["--tracker-ca", S["certs"]["ca"], "--tracker-pin", other])]
    for tracker, extra in cases:
        p = peer("wrongpin", tracker.url(), extra)
        try:
            refused(p, "pin pw", ["pin", other])
            # Not retried: a retry would come after 0.5 s (the backoff's start).
            since = p.mark()
            time.sleep(1.5)
            assert not p.events(since, "login_result"), p.events(since)
        finally:
            p.stop()


@case
def a_malformed_pin_or_an_unreadable_ca_file_is_a_start_up_error():
    nowhere = os.path.join(S["tmp"], "no-such-ca.pem")
    for extra, says in ((["--tracker-pin", "sha256//not-base64!"], "not sha256// and the base64"),
                        (["--tracker-pin", "sha1//AAAA"], "not sha256// and the base64"),
                        (["--tracker-pin", "sha256//AAAA"], "not sha256// and the base64"),
                        (["--tracker-ca", nowhere], "--tracker-ca: " + nowhere),
                        (["--tracker-ca", S["certs"]["ca"]], "needs an https:// tracker")):
        url = "http://127.0.0.1:1" if says.startswith("needs") else S["ca_tracker"].url()
        p = peer("badflag", url, extra)
        rc = p.p.wait(10)
        assert rc != 0, (extra, rc)
        assert says in p.stderr(), (extra, p.stderr())
        p.stop()


@case
def a_plain_http_tracker_on_another_machine_is_refused_unless_allowed():
    # 192.0.2.1 is TEST-NET-1: never routed. The refusal comes before any
    # connection: at once, and saying why and how to override it.
    t0 = time.monotonic()
    p = peer("insecure", "http://192.0.2.1:1", password="never sent")
    rc = p.p.wait(10)
    took = time.monotonic() - t0
    err = p.stderr()
    p.stop()
    assert rc != 0, rc
    assert took < 5, took
    assert "--allow-insecure-tracker" in err and "password" in err, err
    assert "192.0.2.1" in err, err
    # Allowed: the peer runs, and says its tracker is plain HTTP off loopback.
    p = peer("insecure2", "http://192.0.2.1:1", ["--allow-insecure-tracker"])
    try:
        ev = p.wait_type("tracker", 10)
        assert ev.get("tls") is False and ev.get("loopback") is False, ev
    finally:
        p.stop()
    # Loopback by name or by address stays fine without the flag.
    for url in ("http://localhost:1", "http://[::1]:1", "http://127.0.0.2:1"):
        p = peer("loop", url)
        try:
            ev = p.wait_type("tracker", 10)
            assert ev.get("tls") is False and ev.get("loopback") is True, (url, ev)
        finally:
            p.stop()


def captured_session(url_of, target_port, extra, name, password):
    """The bytes between a peer and its tracker, both ways, over a session:
    registration, login, a join and a list."""
    relay = Relay(target_port)
    p = peer(name, url_of(relay.port), extra)
    try:
        register_and_login(p, password)
        since = p.mark()
        p.cmd("/join #capture")
        p.wait_type("channel", 20, since, joined=True)
        p.cmd("/list")
        p.wait_type("peer_list", 20, since)
    finally:
        p.stop()
        relay.close()
    return relay.bytes()


@case
def a_capture_of_the_tls_session_holds_neither_password_nor_token():
    pw = "capture-SECRET-pw-4711"
    seen = captured_session(lambda port: "https://127.0.0.1:%d" % port,
                            S["ca_tracker"].port, ["--tracker-ca", S["certs"]["ca"]],
                            "capture_tls", pw)
    assert len(seen) > 1000, len(seen)
    for needle in (pw.encode(), b"Bearer", b"Authorization", b"token", b"capture_tls",
                   b"/login", b"HTTP/1.1"):
        assert needle not in seen, needle
    # The same capture over plain HTTP holds both: the check can see them.
    tmp = tempfile.mkdtemp(prefix="plain-", dir=S["tmp"])
    tracker, tport = start_tracker(tmp)
    try:
        seen = captured_session(lambda port: "http://127.0.0.1:%d" % port, tport, [],
                                "capture_plain", pw)
    finally:
        tracker.stop()
    assert pw.encode() in seen and b"Bearer " in seen and b"\"token\"" in seen


if __name__ == "__main__":
    if not os.path.exists(binary("hychat")):
        sys.exit("build first")
    run(setup, teardown)
