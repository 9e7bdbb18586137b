#!/usr/bin/python3
"""Prometheus metrics of a running Portcullis daemon, scraped and parsed with the Prometheus text parser.

The daemon runs with real nftables inside a network namespace this script creates (so its loopback, where
`metrics = 127.0.0.1:PORT` listens, is the namespace's own); failures are appended to its log, an address is banned
by hand and one unbanned, the daemon is restarted to restore its bans, and every scrape is parsed with
python3-prometheus-client's parser (Debian's package) and checked against what happened. Also: metrics are off
without `metrics =` (nothing listens), and the endpoint answers only GET/HEAD /metrics.

Never touches the host's ruleset; the namespace is deleted at the end. Run as root:
    tests/e2e/metrics_e2e.py [--portcullis .build/debug/portcullis]
Ends with one line: `metrics: N passed, M failed`.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PID = os.getpid()
NS = f"pcl-metrics-{PID}"
PORT = 9191
# Documentation addresses only, written into logs and banned inside our own namespace.
ATTACK, MANUAL = "192.0.2.20", "198.51.100.20"

results = []

# Runs in the namespace: one HTTP exchange on loopback, raw, so status lines and headers can be checked.
FETCH = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode())
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.buffer.write(out)
"""


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok or not detail else f": {detail}"))
    return ok


def sh(*cmd, check_rc=True):
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.returncode} {r.stderr}")
    return r


def wait_until(fn, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if fn():
            return True
        time.sleep(step)
    return fn()


class Env:
    def __init__(self, exe):
        self.exe = exe
        self.tmp = tempfile.mkdtemp(prefix="pcl-metrics-")
        self.conf = f"{self.tmp}/conf"
        self.sock = f"{self.tmp}/portcullis.sock"
        self.log = f"{self.tmp}/auth.log"
        self.proc = None

    def setup(self, metrics=True):
        sh("ip", "netns", "add", NS)
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        os.makedirs(f"{self.conf}/filter.d")
        self.write_main(metrics)
        with open(f"{self.conf}/filter.d/demo.conf", "w") as f:
            f.write("[Definition]\nfailregex = ^\\s*\\S+ demo\\[\\d+\\]: authentication failure from <HOST>$\n")
        with open(f"{self.conf}/jail.conf", "w") as f:
            f.write("[DEFAULT]\nmaxretry = 3\nfindtime = 10m\nbantime = 1h\nignoreip = 127.0.0.1/8 ::1\n"
                    "banaction = nftables-multiport\nport = ssh\naction = %(banaction)s[port=\"%(port)s\"]\n\n"
                    f"[demo]\nenabled = true\nfilter = demo\nlogpath = {self.log}\n\n"
                    f"[other]\nenabled = true\nfilter = demo\nlogpath = {self.tmp}/other.log\n")
        open(self.log, "w").close()
        open(f"{self.tmp}/other.log", "w").close()

    def write_main(self, metrics):
        with open(f"{self.conf}/portcullis.conf", "w") as f:
            f.write(f"[Definition]\nloglevel = INFO\nlogtarget = {self.tmp}/portcullis.log\nsocket = {self.sock}\n"
                    f"pidfile = {self.tmp}/portcullis.pid\ndbfile = {self.tmp}/portcullis.sqlite3\n")
            if metrics:
                f.write(f"metrics = 127.0.0.1:{PORT}\n")

    def start(self):
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS, self.exe, "-c", self.conf, "-f", "start"],
                                     stdout=open(f"{self.tmp}/stdout", "a"), stderr=subprocess.STDOUT)
        return wait_until(lambda: self.client("ping").returncode == 0, 15)

    def stop(self):
        self.client("stop")
        self.proc.wait(15)

    def client(self, *words):
        return sh(self.exe, "-s", self.sock, *words, check_rc=False)

    def fail(self, addr, n=1):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(self.log, "a") as f:
            for i in range(n):
                f.write(f"{stamp} server demo[{100 + i}]: authentication failure from {addr}\n")

    def noise(self, n):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(self.log, "a") as f:
            for i in range(n):
                f.write(f"{stamp} server demo[{100 + i}]: session opened for user {i}\n")

    def http(self, request):
        # Bytes, not text mode: the CR LF of the response must reach us as they were sent.
        r = subprocess.run(["ip", "netns", "exec", NS, "/usr/bin/python3", "-c", FETCH, str(PORT),
                            request.encode("unicode_escape").decode()], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        return r.stdout.decode() if r.returncode == 0 else None

    def scrape(self):
        """{(name, jail or None): value} of every sample, after parsing with the Prometheus text parser."""
        raw = self.http("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        if raw is None or "\r\n\r\n" not in raw:
            return None, raw
        head, body = raw.split("\r\n\r\n", 1)
        samples = {}
        families = {}
        for family in text_string_to_metric_families(body):
            families[family.name] = family.type
            for s in family.samples:
                key = (s.name, s.labels.get("jail"), s.labels.get("le"))
                samples[key] = s.value
        return (head, samples, families), raw

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        sh("ip", "netns", "del", NS, check_rc=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--portcullis", default=os.path.join(ROOT, ".build/debug/portcullis"))
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("metrics_e2e.py: run as root")
    if not check("python3-prometheus-client installed (scripts/deps.sh --test)", text_string_to_metric_families):
        print("metrics: 0 passed, 1 failed")
        sys.exit(1)
    env = Env(os.path.abspath(args.portcullis))
    try:
        # Off by default: no metrics line, nothing listens.
        env.setup(metrics=False)
        check("daemon without metrics starts", env.start())
        check("without metrics = nothing listens", env.http("GET /metrics HTTP/1.1\r\n\r\n") is None)
        env.stop()

        env.write_main(metrics=True)
        check("daemon with metrics = 127.0.0.1:PORT starts", env.start())
        scraped, raw = env.scrape()
        if not check("first scrape parses", scraped is not None, repr(raw)[:300]):
            raise RuntimeError("no metrics")
        head, s, families = scraped
        check("200 with the exposition content type",
              head.startswith("HTTP/1.1 200 OK") and "Content-Type: text/plain; version=0.0.4" in head, head)
        expected_types = {
            "portcullis_lines_read": "counter", "portcullis_failures": "counter", "portcullis_bans": "counter",
            "portcullis_unbans": "counter", "portcullis_banned": "gauge", "portcullis_filter_seconds": "counter",
            "portcullis_filter_seconds_per_line": "gauge", "portcullis_nftables_transaction_seconds": "histogram",
            "portcullis_store_errors": "counter", "portcullis_action_queue_drops": "counter",
            "portcullis_restored_bans": "counter", "portcullis_reader_waits": "counter",
        }
        missing = {n: t for n, t in expected_types.items() if families.get(n) != t}
        check("every family is there with its type", not missing, f"missing or mistyped: {missing}")
        check("both jails have series", s.get(("portcullis_bans_total", "demo", None)) == 0
              and s.get(("portcullis_bans_total", "other", None)) == 0)
        setup_txns = s.get(("portcullis_nftables_transaction_seconds_count", None, None), 0)
        check("the set-up transaction was timed", setup_txns >= 1, str(setup_txns))

        env.noise(7)
        env.fail(ATTACK, 3)
        banned = wait_until(lambda: "Banned IP list:\t" + ATTACK in env.client("status", "demo").stdout, 10)
        check("three failures ban the attacker", banned)
        r = env.client("set", "demo", "banip", MANUAL)
        check("banip by hand", r.stdout.strip() == "1", r.stdout + r.stderr)
        (_, s, _), raw = env.scrape()
        check("lines read: the 10 lines appended", s.get(("portcullis_lines_read_total", "demo", None)) == 10,
              str(s.get(("portcullis_lines_read_total", "demo", None))))
        check("failures: 3", s.get(("portcullis_failures_total", "demo", None)) == 3)
        check("bans: 2 (one counted, one by hand)", s.get(("portcullis_bans_total", "demo", None)) == 2)
        check("banned now: 2", s.get(("portcullis_banned", "demo", None)) == 2)
        check("other jail untouched", s.get(("portcullis_lines_read_total", "other", None)) == 0
              and s.get(("portcullis_banned", "other", None)) == 0)
        per_line = s.get(("portcullis_filter_seconds_per_line", "demo", None), -1)
        total = s.get(("portcullis_filter_seconds_total", "demo", None), -1)
        check("filter time measured, per line below 10 ms", total > 0 and 0 < per_line < 0.01,
              f"total {total}, per line {per_line}")
        txns = s.get(("portcullis_nftables_transaction_seconds_count", None, None), 0)
        check("nftables transactions timed: set-up + 2 bans", txns >= setup_txns + 2, f"{setup_txns} -> {txns}")
        inf = s.get(("portcullis_nftables_transaction_seconds_bucket", None, "+Inf"))
        check("histogram +Inf bucket equals the count", inf == txns, f"{inf} vs {txns}")
        check("no store errors, no queue drops", s.get(("portcullis_store_errors_total", None, None)) == 0
              and s.get(("portcullis_action_queue_drops_total", "demo", None)) == 0)

        r = env.client("set", "demo", "unbanip", MANUAL)
        check("unbanip", r.stdout.strip() == "1", r.stdout + r.stderr)
        (_, s, _), _ = env.scrape()
        check("unbans: 1, banned now: 1", s.get(("portcullis_unbans_total", "demo", None)) == 1
              and s.get(("portcullis_banned", "demo", None)) == 1)
        check("counters never go down between scrapes", s.get(("portcullis_bans_total", "demo", None)) == 2)

        # A restart restores the remaining ban from the store.
        env.stop()
        check("daemon restarts", env.start())
        (_, s, _), _ = env.scrape()
        check("restored bans: 1", s.get(("portcullis_restored_bans_total", "demo", None)) == 1,
              str(s.get(("portcullis_restored_bans_total", "demo", None))))
        check("banned after the restart: 1", s.get(("portcullis_banned", "demo", None)) == 1)

        # Only GET/HEAD /metrics.
        check("HEAD /metrics: headers only", (env.http("HEAD /metrics HTTP/1.1\r\n\r\n") or "").endswith("\r\n\r\n"))
        check("POST: 405", (env.http("POST /metrics HTTP/1.1\r\n\r\n") or "").startswith("HTTP/1.1 405"))
        check("other path: 404", (env.http("GET / HTTP/1.1\r\n\r\n") or "").startswith("HTTP/1.1 404"))
        check("still serving after the errors", env.scrape()[0] is not None)

        env.stop()
        check("stop ends the daemon", env.proc.returncode == 0, str(env.proc.returncode))
        check("metrics closed at stop", env.http("GET /metrics HTTP/1.1\r\n\r\n") is None)
    except Exception as e:  # report, never hide
        check("unexpected error", False, repr(e))
    finally:
        env.cleanup()
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"metrics: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
