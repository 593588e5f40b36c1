#!/usr/bin/env python3
"""netlab — a network of Linux network namespaces for hychat's NAT tests.

An "internet" namespace holds the tracker and the relay (203.0.113.1);
each site is a router namespace doing MASQUERADE (port-preserving, or
--random-fully like a symmetric NAT) that drops connections nobody inside
asked for, with hosts on a bridge behind it; a public host hangs off the
internet directly. With ipv6, the sites and the internet have IPv6
too, routed without NAT; with netem, each site's link to the internet
is slowed and made lossy (tc netem, or where the kernel lacks it the
loss alone through iptables' statistic match).

Every namespace is named PREFIX-role, PREFIX unique to the run
(hnl<pid>); Lab.down() deletes exactly those, with whatever they hold
(veth pairs, bridges, rules, conntrack tables), and is run on exit, on
SIGTERM/SIGINT, and on failure. Needs root (CAP_NET_ADMIN and
CAP_SYS_ADMIN), ip(8), iptables(8) and conntrack(8): Lab.check() says
clearly what is missing.

As a script: netlab.py check | up TOPOLOGY (then waits; Ctrl-C tears
down) | down PREFIX (deletes PREFIX-* namespaces left by a killed run).
"""
import atexit
import os
import shutil
import signal
import subprocess
import sys

INET_SVC = "203.0.113.1"  # the tracker and the relay
SITES = {"a": ("198.51.100", "10.1.0"), "b": ("192.0.2", "10.2.0")}  # wan /24, lan /24
PUBLIC_NET = "198.18.0"
# IPv6 (ipv6=True): the lab's own unique-local addresses, routed without
# NAT or filtering, as IPv6 usually is: wan fd00:1:SITE::/64, lan
# fd00:2:SITE::/64, the services fd00:ff::1.
INET_SVC6 = "fd00:ff::1"


def sh(*args, check=True, input=None):
    r = subprocess.run(list(args), input=input, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), (r.stderr or r.stdout).strip()))
    return r


def check():
    """None if the lab can run here, else why not."""
    if os.geteuid() != 0:
        return "netlab needs root (network namespaces, iptables): run it as root"
    for tool in ("ip", "iptables", "conntrack"):
        if shutil.which(tool) is None:
            return "netlab needs %s (scripts/deps installs iproute2 iptables conntrack)" % tool
    probe = "hnlprobe%d" % os.getpid()
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return "netlab cannot create a network namespace: %s" % r.stderr.strip()
    try:
        r = sh("ip", "netns", "exec", probe, "iptables", "-t", "nat", "-L", check=False)
        if r.returncode != 0:
            return "netlab cannot use iptables' nat table: %s" % r.stderr.strip()
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return None


class Lab:
    def __init__(self, prefix=None):
        self.prefix = prefix or "hnl%d" % os.getpid()
        self.names = []
        self.procs = []
        self.impaired = None
        atexit.register(self.down)
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self._on_signal)

    def _on_signal(self, signum, frame):
        self.down()
        sys.exit(128 + signum)

    def ns(self, role):
        return "%s-%s" % (self.prefix, role)

    def ip(self, role, *args):
        return sh("ip", "-n", self.ns(role), *args)

    def run(self, role, *args, check=True):
        return sh("ip", "netns", "exec", self.ns(role), *args, check=check)

    def argv(self, role, *args):
        """A command line that runs args inside role's namespace."""
        return ["ip", "netns", "exec", self.ns(role)] + list(args)

    def add_ns(self, role):
        name = self.ns(role)
        sh("ip", "netns", "add", name)
        self.names.append(name)
        self.ip(role, "link", "set", "lo", "up")
        return name

    def veth(self, a, ifa, b, ifb):
        self.ip(a, "link", "add", ifa, "type", "veth", "peer", "name", ifb, "netns", self.ns(b))
        self.ip(a, "link", "set", ifa, "up")
        self.ip(b, "link", "set", ifb, "up")

    def addr6(self, role, cidr, dev):
        # nodad: usable at once, not "tentative" for a second
        self.ip(role, "-6", "addr", "add", cidr, "dev", dev, "nodad")

    def build(self, hosts, public=(), random_fully=(), ipv6=False, netem=None):
        """hosts: {"alice": "a", ...} site of each host behind a NAT;
        public: hosts on the internet itself; random_fully: sites whose
        NAT picks random ports; ipv6: the sites' hosts and the internet
        have IPv6 too (sites only); netem: tc netem arguments applied to
        both ends of each site's link to the internet ("delay 50ms loss
        1%": each way)."""
        self.add_ns("inet")
        self.ip("inet", "addr", "add", INET_SVC + "/32", "dev", "lo")
        self.run("inet", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        if ipv6:
            self.addr6("inet", INET_SVC6 + "/128", "lo")
            self.run("inet", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        for site in sorted(set(hosts.values())):
            self._site(site, site in random_fully, ipv6)
            if netem:
                self._impair(site, netem)
        n = {}
        for host, site in sorted(hosts.items()):
            wan, lan = SITES[site]
            n[site] = n.get(site, 1) + 1
            self.add_ns(host)
            self.veth("r" + site, "v" + host[:12], host, "eth0")
            self.ip("r" + site, "link", "set", "v" + host[:12], "master", "lan")
            self.ip(host, "addr", "add", "%s.%d/24" % (lan, n[site]), "dev", "eth0")
            self.ip(host, "route", "add", "default", "via", lan + ".1")
            if ipv6:
                self.addr6(host, "fd00:2:%s::%d/64" % (site, n[site]), "eth0")
                self.ip(host, "-6", "route", "add", "default", "via", "fd00:2:%s::1" % site)
        for i, host in enumerate(sorted(public)):
            self.add_ns(host)
            self.veth("inet", "p" + host[:12], host, "eth0")
            self.ip("inet", "addr", "add", "%s.%d/32" % (PUBLIC_NET, 1), "dev", "p" + host[:12])
            self.ip("inet", "route", "add", "%s.%d/32" % (PUBLIC_NET, i + 2), "dev",
                    "p" + host[:12])
            self.ip(host, "addr", "add", "%s.%d/24" % (PUBLIC_NET, i + 2), "dev", "eth0")
            self.ip(host, "route", "add", "default", "via", PUBLIC_NET + ".1")

    def _site(self, site, random_fully, ipv6=False):
        wan, lan = SITES[site]
        r = "r" + site
        self.add_ns(r)
        self.veth("inet", "w" + site, r, "wan")
        if ipv6:
            self.addr6("inet", "fd00:1:%s::1/64" % site, "w" + site)
            self.ip("inet", "-6", "route", "add", "fd00:2:%s::/64" % site, "via",
                    "fd00:1:%s::2" % site)
        self.ip("inet", "addr", "add", wan + ".1/24", "dev", "w" + site)
        self.ip(r, "addr", "add", wan + ".2/24", "dev", "wan")
        self.ip(r, "route", "add", "default", "via", wan + ".1")
        self.ip(r, "link", "add", "lan", "type", "bridge")
        self.ip(r, "addr", "add", lan + ".1/24", "dev", "lan")
        self.ip(r, "link", "set", "lan", "up")
        self.run(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        if ipv6:
            self.addr6(r, "fd00:1:%s::2/64" % site, "wan")
            self.addr6(r, "fd00:2:%s::1/64" % site, "lan")
            self.ip(r, "-6", "route", "add", "default", "via", "fd00:1:%s::1" % site)
            self.run(r, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        masq = ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"]
        if random_fully:
            masq.append("--random-fully")
        self.run(r, *masq)
        # A home router: out freely, in only what answers something sent.
        self.run(r, "iptables", "-P", "FORWARD", "DROP")
        self.run(r, "iptables", "-A", "FORWARD", "-i", "lan", "-j", "ACCEPT")
        self.run(r, "iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate",
                 "ESTABLISHED,RELATED", "-j", "ACCEPT")
        # Silent to the internet: no RST for a port nobody inside opened.
        self.run(r, "iptables", "-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate",
                 "ESTABLISHED,RELATED", "-j", "ACCEPT")
        self.run(r, "iptables", "-A", "INPUT", "-i", "wan", "-j", "DROP")

    def _impair(self, site, netem):
        """netem on both ends of site's link to the internet; where the
        kernel has no netem (sch_netem), the loss alone, with iptables'
        statistic match, on everything crossing the link either way.
        self.impaired says which."""
        ends = (("inet", "w" + site), ("r" + site, "wan"))
        r = self.run("inet", "tc", "qdisc", "add", "dev", "w" + site, "root", "netem",
                     *netem.split(), check=False) if shutil.which("tc") else None
        if r is not None and r.returncode == 0:
            self.run("r" + site, "tc", "qdisc", "add", "dev", "wan", "root", "netem",
                     *netem.split())
            self.impaired = "netem " + netem
            return
        words = netem.split()
        if "loss" not in words:
            raise RuntimeError("no netem here and no loss to apply")
        pct = words[words.index("loss") + 1].rstrip("%")
        for role, dev in ends:
            for chain, way in (("OUTPUT", "-o"), ("FORWARD", "-o")):
                self.run(role, "iptables", "-I", chain, "1", way, dev, "-m", "statistic",
                         "--mode", "random", "--probability", str(float(pct) / 100), "-j",
                         "DROP")
        self.impaired = "loss %s%% each way (iptables: this kernel has no netem)" % pct

    def flush_conntrack(self, site):
        self.run("r" + site, "conntrack", "-F", check=False)

    def down(self):
        for p in self.procs:
            try:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)
            except (OSError, subprocess.SubprocessError):
                pass
        self.procs = []
        for name in reversed(self.names):
            sh("ip", "netns", "del", name, check=False)
        self.names = []


def down_prefix(prefix):
    out = sh("ip", "netns", "list").stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix + "-"):
            sh("ip", "netns", "del", name, check=False)
            print("deleted", name)


TOPOLOGIES = {
    "lan": dict(hosts={"alice": "a", "bob": "a"}),
    "public": dict(hosts={"bob": "a"}, public=("alice",)),
    "preserving": dict(hosts={"alice": "a", "bob": "b"}),
    "random": dict(hosts={"alice": "a", "bob": "b"}, random_fully=("a", "b")),
    # IPv4 as in "random" (only a relay would do), IPv6 routed: direct
    "dual": dict(hosts={"alice": "a", "bob": "b"}, random_fully=("a", "b"), ipv6=True),
    # "preserving" over a slow, lossy internet: 50 ms and 1% each way on
    # each site's link (site to site: 100 ms and about 2% each way)
    "lossy": dict(hosts={"alice": "a", "bob": "b"}, netem="delay 50ms loss 1%"),
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("check", "up", "down"):
        sys.exit("usage: netlab.py check | up %s | down PREFIX" % "|".join(TOPOLOGIES))
    if sys.argv[1] == "down":
        down_prefix(sys.argv[2])
        sys.exit(0)
    why = check()
    if why:
        sys.exit("netlab: " + why)
    if sys.argv[1] == "check":
        print("netlab: ok")
        sys.exit(0)
    lab = Lab()
    lab.build(**TOPOLOGIES[sys.argv[2]])
    print("namespaces:", " ".join(lab.names), flush=True)
    signal.pause()
