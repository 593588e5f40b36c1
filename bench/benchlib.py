"""benchlib — shared pieces of the side-by-side benchmarks: a release
build, nginx with a private config, wrk runs parsed into numbers."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("HYCHAT_BENCH_BUILD", os.path.join(ROOT, "build-bench"))


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None and not os.path.exists("/usr/sbin/" + t)]
    if missing:
        sys.exit("bench: missing %s (scripts/deps wrk nginx-light)" % " ".join(missing))


def build():
    """A release build of the project in build-bench/ (no sanitizers)."""
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        subprocess.check_call(["meson", "setup", BUILD, "-Dbuildtype=release", "-Db_lto=true"],
                              cwd=ROOT, stdout=subprocess.DEVNULL)
    subprocess.check_call(["ninja", "-C", BUILD], stdout=subprocess.DEVNULL)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing on port %d" % port)


class Server:
    """A process started by the benchmark, stopped by pid."""

    def __init__(self, args, port, **kw):
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        wait_port(port)

    def rss_kb(self):
        m = re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % self.p.pid).read())
        return int(m.group(1))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log crit;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    {extra}
}}
"""


def nginx(port, server_block, extra_http="", workers=1):
    """Starts Debian's nginx with a private config; returns the Server."""
    tmp = tempfile.mkdtemp(prefix="hychat-bench-nginx-")
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=tmp, extra=extra_http + server_block, workers=workers))
    return Server(["/usr/sbin/nginx", "-c", conf, "-p", tmp], port)


def nginx_version():
    r = subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True, text=True)
    return r.stderr.strip().replace("nginx version: ", "")


def wrk(url, conns=50, seconds=10, threads=1, script=None):
    """Runs wrk; returns (requests/s, p99 ms, non-2xx/3xx answers, socket
    errors: connect + read + write + timeout)."""
    args = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency"]
    if script:
        args += ["-s", script]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    nsock = sum(int(n) for n in re.findall(r"\d+", sock.group(1))) if sock else 0
    return rps, float(p99.group(1)) * scale, (int(errs.group(1)) if errs else 0), nsock


def row(name, rps, p99, errs=0, sock=0):
    print("%-34s %12.0f req/s   p99 %8.2f ms%s%s" % (
        name, rps, p99, ("   non-2xx %d" % errs) if errs else "",
        ("   socket errors %d" % sock) if sock else ""))


def ratio(name, a, b):
    """Prints a/b for two wrk runs, or why there is none: a run with
    non-2xx answers or socket errors measured something else."""
    bad = [r for r in (a, b) if r[2] or r[3]]
    if bad:
        print("ratio %-28s INVALID: a run had non-2xx answers or socket errors" % name)
        return False
    print("ratio %-28s req/s %.2fx   p99 %.2fx" % (name, a[0] / b[0], a[1] / b[1]))
    return True
