#!/usr/bin/python3
"""Bounds of the daemon under attack scale, measured on the real daemon in a throw-away network namespace:

  1. memory: N distinct failing addresses (default 1,000,000; one failure each, maxretry 3, so none is banned),
     once with the `maxtracked` cap (default 200,000, the built-in default) and once without (`maxtracked = 0`):
     VmRSS / VmHWM of the daemon, `Currently failed`, the time to read them all, and the one warning line;
  2. restore: M active bans (default 1,000,000) in the database restored at start: spawn → first `ping` answer,
     and the daemon's own split of the restore (database read and state, one nftables transaction, log lines);
  3. status: `status JAIL` with S bans (default 100,000) through Portcullis's client and, when installed, the real
     fail2ban-client (fail2ban's pickle protocol): wall time, and that every banned address is listed.

fail2ban itself is not run at these sizes: its restore runs one `nft` process per ban (bench/firewall.sh measures
that cost per ban), hours for 1,000,000. Addresses are from 2001:db8::/32 (documentation range). Run as root:
    bench/bounds.py [--addresses 1000000] [--bans 1000000] [--status-bans 100000] [--cap 200000]
    bench/bounds.py --check     # behaviour only (the cap holds, one warning, all listed), 100k, no timing verdicts
"""
import argparse
import ipaddress
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PID = os.getpid()
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f" — {detail}" if detail and not ok else ""), flush=True)


def sh(*cmd, check_rc=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r


def address(i):
    return str(ipaddress.IPv6Address((0x20010DB8 << 96) | i))  # canonical, as nft prints it


def status_of(proc_pid):
    out = {}
    with open(f"/proc/{proc_pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def mib(kb_text):
    return int(kb_text.split()[0]) / 1024


class Daemon:
    def __init__(self, exe, name, maxtracked=None):
        self.exe = exe
        self.ns = f"pcl-bounds-{name}-{PID}"
        self.tmp = tempfile.mkdtemp(prefix=f"pcl-bounds-{name}-")
        self.conf = f"{self.tmp}/conf"
        self.sock = f"{self.tmp}/portcullis.sock"
        self.log = f"{self.tmp}/auth.log"
        self.db = f"{self.tmp}/portcullis.sqlite3"
        self.daemon_log = f"{self.tmp}/portcullis.log"
        self.proc = None
        os.makedirs(f"{self.conf}/filter.d")
        with open(f"{self.conf}/portcullis.conf", "w") as f:
            f.write(f"[Definition]\nloglevel = INFO\nlogtarget = {self.daemon_log}\nsocket = {self.sock}\n"
                    f"pidfile = {self.tmp}/portcullis.pid\ndbfile = {self.db}\n")
        with open(f"{self.conf}/filter.d/bench.conf", "w") as f:
            f.write("[Definition]\nfailregex = ^\\s*bench\\[\\d+\\]: authentication failure from <HOST>$\n")
        cap = "" if maxtracked is None else f"maxtracked = {maxtracked}\n"
        with open(f"{self.conf}/jail.conf", "w") as f:
            f.write("[DEFAULT]\nmaxretry = 3\nfindtime = 1d\nbantime = 1d\nignoreself = false\n"
                    "banaction = nftables-multiport\nport = 0:65535\n"
                    "action = %(banaction)s[port=\"%(port)s\", protocol=\"tcp\"]\n" + cap +
                    f"\n[bench]\nenabled = true\nfilter = bench\nlogpath = {self.log}\n")
        open(self.log, "w").close()
        sh("ip", "netns", "add", self.ns)

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, self.exe, "-c", self.conf, "-f", "start"],
                                     stdout=subprocess.DEVNULL, stderr=open(f"{self.tmp}/stderr", "w"))
        while time.monotonic() - t0 < 600:
            if self.client("ping").returncode == 0:
                return time.monotonic() - t0
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {open(self.tmp + '/stderr').read()[-2000:]}")
            time.sleep(0.01)
        raise RuntimeError("daemon did not answer ping within 600 s")

    def client(self, *words):
        return sh(self.exe, "-s", self.sock, *words, check_rc=False)

    def pid(self):
        with open(f"{self.tmp}/portcullis.pid") as f:
            return int(f.read().strip())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.client("stop")
            try:
                self.proc.wait(600)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        sh("ip", "netns", "del", self.ns, check_rc=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def counter(self, name):
        st = self.client("status", "bench").stdout
        m = re.search(name + r":\s*(\d+)", st)
        return int(m.group(1)) if m else -1


def memory(exe, n, cap):
    label = f"maxtracked = {cap}" if cap else "maxtracked = 0 (no limit)"
    d = Daemon(exe, "mem", maxtracked=cap)
    try:
        d.start()
        idle = status_of(d.pid())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        t0 = time.monotonic()
        with open(d.log, "a") as f:
            chunk = []
            for i in range(n):
                chunk.append(f"{stamp} bench[7]: authentication failure from {address(i)}\n")
                if len(chunk) == 10000:
                    f.write("".join(chunk))
                    chunk = []
            f.write("".join(chunk))
        last, last_change = -1, time.monotonic()
        while (seen := d.counter("Total failed")) < n:
            if seen != last:
                last, last_change = seen, time.monotonic()
            elif time.monotonic() - last_change > 60:
                raise RuntimeError(f"no progress for 60 s: {seen} of {n} failures counted")
            time.sleep(0.5)
        took = time.monotonic() - t0
        after = status_of(d.pid())
        tracked = d.counter("Currently failed")
        with open(d.daemon_log) as f:
            warnings = sum(1 for line in f if "(maxtracked)" in line)
        print(f"memory, {n:,} distinct failing addresses, {label}: tracked {tracked:,}; "
              f"VmRSS {mib(idle['VmRSS']):.1f} MiB idle -> {mib(after['VmRSS']):.1f} MiB, VmHWM {mib(after['VmHWM']):.1f} MiB; "
              f"read and counted in {took:.1f} s")
        if cap:
            check(f"{label}: at most {cap:,} addresses tracked", 0 < tracked <= cap, str(tracked))
            check(f"{label}: one warning line when dropping starts", warnings == 1, str(warnings))
        else:
            check(f"{label}: every address tracked", tracked == n, str(tracked))
        return mib(after["VmHWM"]), mib(idle["VmRSS"]), tracked
    finally:
        d.stop()
        d.cleanup()


def fill_store(d, m):
    """Creates the database with the daemon (schema), then inserts m active bans of jail `bench`."""
    d.start()
    d.stop()
    now = time.time()
    db = sqlite3.connect(d.db)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO bans (jail, address, time_of_ban, ban_time, ban_count, failures, matches, active) "
        "VALUES ('bench', ?, ?, 86400, 1, 3, '[]', 1)", ((address(i), now - 60) for i in range(m)))
    # As a daemon that logged its Ban lines leaves it (else every ban is logged as a late `Ban`, not `Restore Ban`).
    db.execute("UPDATE ban_log SET logged_upto = (SELECT MAX(id) FROM bans)")
    db.commit()
    db.close()


def nft_floor(ns, m):
    """Seconds one `nft -f` takes to add m elements with timeouts to a new set, in a fresh namespace: what the
    kernel and libnftables need for the restore's nftables part, whoever asks."""
    sh("ip", "netns", "del", ns)
    sh("ip", "netns", "add", ns)
    path = f"/tmp/pcl-bounds-floor-{PID}.nft"
    with open(path, "w") as f:
        f.write("table inet floor {\n set s {\n type ipv6_addr\n flags timeout\n }\n}\n")
        f.write("add element inet floor s { ")
        f.write(", ".join(f"{address(i)} timeout 86340s" for i in range(m)))
        f.write(" }\n")
    try:
        t0 = time.monotonic()
        sh("ip", "netns", "exec", ns, "nft", "-f", path)
        return time.monotonic() - t0
    finally:
        os.unlink(path)


def restore(exe, m):
    d = Daemon(exe, "restore")
    try:
        fill_store(d, m)
        sh("ip", "netns", "del", d.ns)
        sh("ip", "netns", "add", d.ns)  # a fresh kernel: nothing survives from the schema run
        took = d.start()
        with open(d.daemon_log) as f:
            lines = [line for line in f if "Restored " in line and " bans in " in line]
        split = lines[-1].split("]: ", 1)[-1].strip() if lines else "(no restore line)"
        print(f"restore, {m:,} active bans: spawn -> ping {took:.2f} s; daemon: {split}")
        check(f"restore: all {m:,} bans restored", f"Restored {m} bans" in split, split)
        probe = sh("ip", "netns", "exec", d.ns, "nft", "get", "element", "inet", "portcullis", "addr6-set-bench",
                   "{ " + address(m - 1) + " }", check_rc=False)
        check("restore: the last ban is in the kernel set", address(m - 1) in probe.stdout, probe.stderr)
        d.stop()
        floor = nft_floor(d.ns, m)
        print(f"restore, {m:,} active bans: kernel floor `nft -f` of the same {m:,} elements into an empty set "
              f"{floor:.2f} s; Portcullis spawn -> ping {took:.2f} s = {took / floor:.1f}x the floor")
        return took, split
    finally:
        d.stop()
        d.cleanup()


def status(exe, s):
    d = Daemon(exe, "status")
    try:
        fill_store(d, s)
        d.start()
        t0 = time.monotonic()
        r = d.client("status", "bench")
        own = time.monotonic() - t0
        listed = r.stdout.rsplit("Banned IP list:", 1)[-1].split()
        print(f"status with {s:,} bans: portcullis client {own:.3f} s, {len(listed):,} addresses listed")
        check(f"status lists all {s:,} bans", len(listed) == s, f"{len(listed)}")
        if shutil.which("fail2ban-client"):
            t0 = time.monotonic()
            r = sh("fail2ban-client", "-s", d.sock, "status", "bench", check_rc=False)
            real = time.monotonic() - t0
            listed = r.stdout.rsplit("Banned IP list:", 1)[-1].split()
            print(f"status with {s:,} bans: real fail2ban-client {real:.3f} s (python start included), "
                  f"{len(listed):,} listed")
            check("fail2ban-client lists them all", len(listed) == s, r.stderr[-300:])
        return own
    finally:
        d.stop()
        d.cleanup()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--portcullis", help="binary (default: a release build, built now)")
    p.add_argument("--addresses", type=int, default=1_000_000)
    p.add_argument("--bans", type=int, default=1_000_000)
    p.add_argument("--status-bans", type=int, default=100_000)
    p.add_argument("--cap", type=int, default=200_000)
    p.add_argument("--check", action="store_true", help="behaviour only, 100k addresses, cap 10k, no timing verdicts")
    p.add_argument("--skip", default="", help="comma list of memory,restore,status to leave out")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bounds.py: run as root (network namespaces)")
    if args.check:
        args.addresses, args.bans, args.status_bans, args.cap = 100_000, 20_000, 20_000, 10_000
    exe = args.portcullis
    if not exe:
        subprocess.run(["nice", "swift", "build", "-c", "release", "--product", "portcullis"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        exe = sh("swift", "build", "-c", "release", "--show-bin-path", cwd=ROOT).stdout.strip() + "/portcullis"
    exe = os.path.abspath(exe)
    skip = set(args.skip.split(","))
    try:
        if "memory" not in skip:
            capped = memory(exe, args.addresses, args.cap)
            if not args.check:
                free = memory(exe, args.addresses, 0)
                per = (free[0] - free[1]) * 1024 * 1024 / max(1, free[2])
                print(f"memory: about {per:.0f} bytes per tracked address (peak above idle / tracked, no cap); "
                      f"cap {args.cap:,} -> peak {capped[0]:.1f} MiB vs {free[0]:.1f} MiB without")
        if "restore" not in skip:
            restore(exe, args.bans)
        if "status" not in skip:
            status(exe, args.status_bans)
    except Exception as e:  # report, never hide
        check("unexpected error", False, repr(e))
    failed = results.count(False)
    print(f"bounds: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
