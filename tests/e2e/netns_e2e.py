#!/usr/bin/python3
"""End-to-end test of the Portcullis daemon on real kernel nftables, inside network namespaces it creates.

A defended namespace and an attacker namespace are joined by a veth pair; a TCP listener runs in the defended one,
and so does `portcullis -f start`. Failing lines for the attacker are appended to the watched log; the attacker's
next TCP connection must be refused while another address still connects. Also: unbanip, SIGKILL + restart,
rotation mid-attack, a flushed ruleset, IPv6, and the real fail2ban-client against Portcullis's socket.

Never touches the host's ruleset; both namespaces are deleted at the end. Run as root:
    tests/e2e/netns_e2e.py [--portcullis .build/debug/portcullis]
Ends with one line: `e2e: N passed, M failed`.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PID = os.getpid()
D = f"pcl-e2e-d-{PID}"
A = f"pcl-e2e-a-{PID}"
# Documentation ranges only, inside our own namespaces.
SERVER4, ATTACK4, LEGIT4, ROTATE4, JOURNAL4 = "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"
SERVER6, ATTACK6, LEGIT6 = "2001:db8:e2e::1", "2001:db8:e2e::2", "2001:db8:e2e::3"
# Only ever written into logs, one failure at a time (never banned): lines whose counting marks how far the reader got.
MARK4 = "192.0.2.6"
PORT = 22
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f" — {detail}" if detail and not ok else ""), flush=True)
    return ok


def sh(*cmd, check_rc=True, ns=None, capture=True):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + tuple(cmd)
    r = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE, text=True)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r


CONNECT = r"""
import socket, sys
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(1.5)
s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
    data = s.recv(16)
    print("ok" if data.startswith(b"hello") else "nodata")
except ConnectionRefusedError:
    print("refused")
except (socket.timeout, TimeoutError):
    print("timeout")
except OSError as e:
    print("error", e)
"""

LISTEN = r"""
import socket, sys, threading
def serve(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, int(sys.argv[1])))
    s.listen(64)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(b"hello\n")
        finally:
            c.close()
t4 = threading.Thread(target=serve, args=(socket.AF_INET, "0.0.0.0"), daemon=True)
t6 = threading.Thread(target=serve, args=(socket.AF_INET6, "::"), daemon=True)
t4.start(); t6.start(); t4.join()
"""


def connect(src, dst=None):
    dst = dst or (SERVER6 if ":" in src else SERVER4)
    return sh("/usr/bin/python3", "-c", CONNECT, src, dst, str(PORT), ns=A, check_rc=False).stdout.strip()


def wait_until(fn, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


class Env:
    def __init__(self, exe):
        self.exe = exe
        self.tmp = tempfile.mkdtemp(prefix="pcl-e2e-")
        self.conf = f"{self.tmp}/conf"
        self.sock = f"{self.tmp}/portcullis.sock"
        self.log = f"{self.tmp}/auth.log"
        self.journal = f"{self.tmp}/e2e.journal"
        self.monotonic = 1000
        self.proc = None
        self.listener = None

    def setup(self):
        sh("ip", "netns", "add", D)
        sh("ip", "netns", "add", A)
        sh("ip", "link", "add", f"vd{PID % 100000}", "type", "veth", "peer", "name", f"va{PID % 100000}")
        sh("ip", "link", "set", f"vd{PID % 100000}", "netns", D)
        sh("ip", "link", "set", f"va{PID % 100000}", "netns", A)
        sh("ip", "addr", "add", f"{SERVER4}/24", "dev", f"vd{PID % 100000}", ns=D)
        sh("ip", "-6", "addr", "add", f"{SERVER6}/64", "dev", f"vd{PID % 100000}", "nodad", ns=D)
        for a in (ATTACK4, LEGIT4, ROTATE4, JOURNAL4):
            sh("ip", "addr", "add", f"{a}/24", "dev", f"va{PID % 100000}", ns=A)
        for a in (ATTACK6, LEGIT6):
            sh("ip", "-6", "addr", "add", f"{a}/64", "dev", f"va{PID % 100000}", "nodad", ns=A)
        for ns, dev in ((D, f"vd{PID % 100000}"), (A, f"va{PID % 100000}")):
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("ip", "link", "set", dev, "up", ns=ns)
        self.listener = subprocess.Popen(["ip", "netns", "exec", D, "/usr/bin/python3", "-c", LISTEN, str(PORT)])
        os.makedirs(f"{self.conf}/filter.d")
        with open(f"{self.conf}/portcullis.conf", "w") as f:
            f.write(f"[Definition]\nloglevel = INFO\nlogtarget = {self.tmp}/portcullis.log\nsocket = {self.sock}\n"
                    f"pidfile = {self.tmp}/portcullis.pid\ndbfile = {self.tmp}/portcullis.sqlite3\n")
        with open(f"{self.conf}/filter.d/e2e.conf", "w") as f:
            f.write("[Definition]\nfailregex = ^\\s*\\S+ \\S+\\[\\d+\\]: authentication failure for .* from <HOST>$\n"
                    "journalmatch = SYSLOG_IDENTIFIER=e2e\n")
        with open(f"{self.conf}/jail.conf", "w") as f:
            f.write("[DEFAULT]\nmaxretry = 3\nfindtime = 10m\nbantime = 1h\nignoreself = true\nignoreip = 127.0.0.1/8 ::1\n"
                    "banaction = nftables-multiport\nprotocol = tcp\nport = 0:65535\n"
                    "action = %(banaction)s[port=\"%(port)s\", protocol=\"%(protocol)s\"]\n\n"
                    f"[e2e]\nenabled = true\nfilter = e2e\nport = ssh\nlogpath = {self.log}\n\n"
                    f"[e2ej]\nenabled = true\nfilter = e2e\nport = ssh\nbackend = systemd[journalfiles={self.journal}]\n")
        if os.path.exists(JOURNAL_REMOTE):
            self.journal_append([("e2e", "server started")])
        open(self.log, "w").close()
        wait_until(lambda: connect(LEGIT4) == "ok", 5)

    def start(self):
        self.proc = subprocess.Popen(["ip", "netns", "exec", D, self.exe, "-c", self.conf, "-f", "start"],
                                     stdout=open(f"{self.tmp}/stdout", "a"), stderr=subprocess.STDOUT)
        ok = wait_until(lambda: self.client("ping").returncode == 0, 15, 0.05)
        return ok

    def client(self, *words):
        return sh(self.exe, "-s", self.sock, *words, check_rc=False)

    def fail(self, addr, n=1, path=None):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(path or self.log, "a") as f:
            for i in range(n):
                f.write(f"{stamp} server e2e[{1000 + i}]: authentication failure for root from {addr}\n")

    def journal_append(self, entries):
        """Appends entries to a real journal file with systemd-journal-remote (export format on stdin)."""
        text = ""
        for ident, message in entries:
            self.monotonic += 1
            text += (f"__REALTIME_TIMESTAMP={int(time.time() * 1e6)}\n__MONOTONIC_TIMESTAMP={self.monotonic}\n"
                     f"_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=server\nSYSLOG_IDENTIFIER={ident}\n"
                     f"_PID={4000 + self.monotonic}\nMESSAGE={message}\n\n")
        subprocess.run([JOURNAL_REMOTE, f"--output={self.journal}", "-"], input=text.encode(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def counters(self, jail):
        """(Total failed, banned addresses) from `status JAIL`, or None when the daemon does not answer."""
        r = self.client("status", jail)
        if r.returncode != 0:
            return None
        total = re.search(r"Total failed:\s*(\d+)", r.stdout)
        banned = re.search(r"Banned IP list:\s*(.*)", r.stdout)
        if not total:
            return None
        return int(total.group(1)), set((banned.group(1) if banned else "").split())

    def total_failed(self, jail):
        c = self.counters(jail)
        return c[0] if c else -1

    def consumed(self, jail, expected, timeout=10.0):
        """Waits until the jail has counted exactly `expected` failures in total (the reader has consumed the lines
        and the coordinator has recorded them; a ban they cause is decided in the same step). Returns the total
        seen: more than `expected` (double counting) returns at once."""
        end = time.monotonic() + timeout
        while True:
            total = self.total_failed(jail)
            if total >= expected or time.monotonic() >= end:
                return total
            time.sleep(0.02)

    def not_banned(self, jail, addr):
        """True when neither the jail's status nor the kernel set holds `addr` (call after `consumed`)."""
        c = self.counters(jail)
        return c is not None and addr not in c[1] and not self.in_set(addr)

    def in_set(self, addr):
        out = sh("nft", "list", "table", "inet", "portcullis", ns=D, check_rc=False).stdout
        return addr in out

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.listener:
            self.listener.kill()
            self.listener.wait()
        for ns in (D, A):
            sh("ip", "netns", "del", ns, check_rc=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--portcullis", default=os.path.join(ROOT, ".build/debug/portcullis"))
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("netns_e2e.py: run as root")
    env = Env(os.path.abspath(args.portcullis))
    try:
        env.setup()
        check("listener reachable before any ban", connect(ATTACK4) == "ok")
        check("daemon starts and answers ping", env.start())

        base = env.total_failed("e2e")
        env.fail(ATTACK4, 2)
        seen = env.consumed("e2e", base + 2)
        check("two failures are counted, exactly", seen == base + 2, f"total failed {base} -> {seen}")
        check("two failures: not banned yet", env.not_banned("e2e", ATTACK4) and connect(ATTACK4) == "ok",
              f"status {env.counters('e2e')}")
        t0 = time.monotonic()
        env.fail(ATTACK4, 1)
        check("third failure bans in the kernel set", wait_until(lambda: env.in_set(ATTACK4), 5, 0.005),
              "address not in inet portcullis")
        print(f"     (ban visible in the set {1000 * (time.monotonic() - t0):.1f} ms after the append)")
        check("attacker's next connection is refused", connect(ATTACK4) == "refused", connect(ATTACK4))
        check("another address still connects", connect(LEGIT4) == "ok")

        st = env.client("status", "e2e").stdout
        check("status lists the banned address", "Banned IP list:\t" + ATTACK4 in st, st)
        if check("fail2ban-client installed (scripts/deps.sh)", shutil.which("fail2ban-client")):
            real = sh("fail2ban-client", "-s", env.sock, "status", "e2e", check_rc=False)
            check("real fail2ban-client prints the same status", real.returncode == 0 and real.stdout == st,
                  f"{real.stdout!r} vs {st!r} {real.stderr}")
            pong = sh("fail2ban-client", "-s", env.sock, "ping", check_rc=False).stdout.strip()
            check("real fail2ban-client ping", pong == "Server replied: pong", pong)

        r = env.client("set", "e2e", "unbanip", ATTACK4)
        check("unbanip answers 1", r.stdout.strip() == "1", r.stdout + r.stderr)
        check("unbanned address connects again", wait_until(lambda: connect(ATTACK4) == "ok", 3))

        r = env.client("set", "e2e", "banip", ATTACK6)
        check("banip of an IPv6 address", r.stdout.strip() == "1", r.stdout + r.stderr)
        check("IPv6 attacker refused", connect(ATTACK6) == "refused")
        check("IPv6 legit address connects", connect(LEGIT6) == "ok")

        env.fail(ATTACK4, 3)
        wait_until(lambda: env.in_set(ATTACK4), 5)
        env.proc.send_signal(signal.SIGKILL)
        env.proc.wait()
        check("after SIGKILL the kernel still refuses the attacker", connect(ATTACK4) == "refused")
        # Delete the table the killed daemon left, so that only a restore from the store can bring the bans back.
        sh("nft", "delete", "table", "inet", "portcullis", ns=D)
        check("table deleted: the attacker connects while no daemon runs", connect(ATTACK4) == "ok")
        check("daemon restarts", env.start())
        st = env.client("status", "e2e").stdout
        check("restart keeps the ban (status)", ATTACK4 in st and ATTACK6 in st, st)
        check("restart restores the ban in the kernel (IPv4)",
              wait_until(lambda: env.in_set(ATTACK4), 5) and connect(ATTACK4) == "refused")
        check("restart restores the ban in the kernel (IPv6)", env.in_set(ATTACK6) and connect(ATTACK6) == "refused")

        # Rotation mid-attack (maxretry 3): one failure before, one written late to the rotated file (the logger
        # still had it open), then only marker lines in the new file. Counted once each, that is 2 for ROTATE4: a
        # re-read of either file counts more and bans early. The third failure, in the new file, must then ban.
        base = env.total_failed("e2e")
        env.fail(ROTATE4, 1)
        check("rotation: the failure before the rotation is counted", env.consumed("e2e", base + 1) == base + 1)
        os.rename(env.log, env.log + ".1")
        env.fail(ROTATE4, 1, path=env.log + ".1")
        open(env.log, "w").close()
        env.fail(MARK4, 1)
        seen = env.consumed("e2e", base + 3)
        check("rotation: the late line in the rotated file and the new file's first line are counted once",
              seen == base + 3, f"total failed {base} -> {seen}")
        # One more marker through the new file: the reader is past everything before it; nothing was read twice.
        env.fail(MARK4, 1)
        seen = env.consumed("e2e", base + 4)
        check("rotation: no line counted twice, not banned at 2 failures",
              seen == base + 4 and env.not_banned("e2e", ROTATE4),
              f"total failed {base} -> {seen}, status {env.counters('e2e')}")
        env.fail(ROTATE4, 1)
        check("rotation mid-attack keeps counting: the third failure bans", wait_until(lambda: env.in_set(ROTATE4), 5))
        check("rotation: five lines counted in all", env.consumed("e2e", base + 5) == base + 5,
              f"total failed {env.total_failed('e2e')}")

        if os.path.exists(JOURNAL_REMOTE):
            # Three entries the failregex matches but journalmatch (SYSLOG_IDENTIFIER=e2e) excludes, then two it
            # includes: once both of those are counted, the reader is past the three.
            base = env.total_failed("e2ej")
            env.journal_append([("other", f"authentication failure for root from {JOURNAL4}")] * 3
                               + [("e2e", f"authentication failure for root from {JOURNAL4}")] * 2)
            seen = env.consumed("e2ej", base + 2)
            check("journal: entries outside journalmatch do not count", seen == base + 2
                  and env.not_banned("e2ej", JOURNAL4), f"total failed {base} -> {seen}, status {env.counters('e2ej')}")
            env.journal_append([("e2e", f"authentication failure for root from {JOURNAL4}")])
            check("journal (backend = systemd): the attacker is banned", wait_until(lambda: env.in_set(JOURNAL4), 5))
            check("journal-banned attacker refused", connect(JOURNAL4) == "refused")
        else:
            check("systemd-journal-remote installed (scripts/deps.sh --test)", False)

        sh("nft", "flush", "ruleset", ns=D)
        t0 = time.monotonic()
        back = wait_until(lambda: env.in_set(ATTACK4) and env.in_set(ROTATE4), 5, 0.02)
        check("flushed ruleset: table and bans come back", back)
        print(f"     (restored {1000 * (time.monotonic() - t0):.0f} ms after the flush)")
        check("attacker refused again after restore", connect(ATTACK4) == "refused")

        # Someone else empties a set or deletes single bans: back within a second, with a log line.
        sh("nft", "flush", "set", "inet", "portcullis", "addr-set-e2e", ns=D)
        t0 = time.monotonic()
        back = wait_until(lambda: env.in_set(ATTACK4) and env.in_set(ROTATE4), 1.0, 0.01)
        check("flushed set: its bans are back within 1 s", back)
        print(f"     (set refilled {1000 * (time.monotonic() - t0):.0f} ms after the flush)")
        check("attacker refused after the set flush", connect(ATTACK4) == "refused")
        sh("nft", "delete", "element", "inet", "portcullis", "addr6-set-e2e", "{ " + ATTACK6 + " }", ns=D)
        check("deleted IPv6 element is back within 1 s", wait_until(lambda: env.in_set(ATTACK6), 1.0, 0.01))
        with open(f"{env.tmp}/portcullis.log") as f:
            text = f.read()
        check("the refill is logged with the addresses", "active bans were deleted from the kernel" in text
              and ATTACK6 in text.split("active bans were deleted from the kernel")[-1])

        def burst(first, count):
            """count distinct addresses of 198.18.0.0/15, three failures each, in one write."""
            addrs = [f"198.18.{(first + i) // 250}.{(first + i) % 250 + 1}" for i in range(count)]
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            with open(env.log, "a") as f:
                f.write("".join(f"{stamp} server e2e[7]: authentication failure for root from {a}\n"
                                for _ in range(3) for a in addrs))
            return addrs

        def ban_lines():
            counts = {}
            with open(f"{env.tmp}/portcullis.log") as f:
                for line in f:
                    if "] Ban " in line and "Restore" not in line:
                        a = line.rstrip("\n").rsplit(" ", 1)[-1]
                        counts[a] = counts.get(a, 0) + 1
            return counts

        def set_listing():
            return sh("nft", "list", "set", "inet", "portcullis", "addr-set-e2e", ns=D, check_rc=False).stdout

        # Reload (socket and SIGHUP) during a burst: no crash, every attacker banned exactly once.
        addrs = burst(0, 400)
        for i in range(3):
            env.client("reload")
            env.proc.send_signal(signal.SIGHUP)
            env.client("reload", "e2e")
        banned = wait_until(lambda: all(a in set_listing() for a in addrs), 20, 0.1)
        check("reload during a burst: the daemon runs", env.proc.poll() is None and env.client("ping").returncode == 0)
        check("reload during a burst: all 400 attackers banned", banned,
              f"{sum(1 for a in addrs if a in set_listing())} of 400")
        counts = ban_lines()
        check("reload during a burst: each banned once", all(counts.get(a) == 1 for a in addrs),
              str({a: counts.get(a) for a in addrs if counts.get(a) != 1}))

        # Stop during a burst: what was read before the stop is banned (and stored), nothing twice.
        addrs = burst(400, 400)
        env.client("stop")
        env.proc.wait(30)
        check("stop during a burst: the daemon exits cleanly", env.proc.returncode == 0, str(env.proc.returncode))
        check("daemon restarts after the burst", env.start())
        wait_until(lambda: all(a in set_listing() for a in addrs), 20, 0.1)
        listing = set_listing()
        counts = ban_lines()
        check("stop during a burst: all 400 attackers banned after the restart",
              all(a in listing for a in addrs), f"{sum(1 for a in addrs if a in listing)} of 400")
        check("stop during a burst: each banned once", all(counts.get(a) == 1 for a in addrs),
              str({a: counts.get(a) for a in addrs if counts.get(a) != 1}))

        r = env.client("stop")
        env.proc.wait(15)
        check("stop ends the daemon", env.proc.returncode is not None)
        check("table removed at stop", not sh("nft", "list", "tables", ns=D).stdout.count("portcullis"))
    except Exception as e:  # report, never hide
        check("unexpected error", False, repr(e))
    finally:
        if os.environ.get("E2E_KEEP"): print("kept", env.tmp); env.tmp = "/nonexistent"
        env.cleanup()
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"e2e: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
