#!/usr/bin/python3
"""Daemon benchmarks: Portcullis beside fail2ban, each in its own network namespace, measured in the same run.

Measures, per implementation:
  - start-up: spawn → first answer to `ping` on the control socket (fail2ban's pickle protocol, spoken here);
  - ban latency: append of the line that crosses maxretry → the address appears in the kernel set
    (seen through `nft monitor` inside the namespace), p50 / p99 / max over --bans addresses;
  - burst: --burst distinct addresses written at once → the last one in the kernel set;
  - RSS (VmRSS of the server process) idle with the jails sshd, postfix[mode=auth], recidive, after the burst,
    and 35 s later (settled).

Only namespaces this script creates are touched; they are removed at the end. Run as root:
    bench/daemon.py --impl both --bans 100 --burst 10000
"""
import argparse
import os
import pickle
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
END = b"<F2B_END_COMMAND>"


def run(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def ping(sock_path, timeout=0.5):
    """One `ping` in fail2ban's wire protocol; True when answered."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(pickle.dumps(["ping"], 2) + END)
        data = b""
        while not data.endswith(END):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        return data.endswith(END)
    except OSError:
        return False


def command(sock_path, words, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(pickle.dumps(list(words), 2) + END)
    data = b""
    while not data.endswith(END):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return pickle.loads(data[: -len(END)]) if data.endswith(END) else None


def rss_kib(pid):
    try:
        total = 0
        for p in [pid] + children(pid):
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total
    except OSError:
        return None


def memory(pid):
    """Where the server's pages go, KiB: smaps_rollup's Rss, Pss, private and shared (clean + dirty), and per mapping
    class from smaps (the executable, [heap], anonymous, [stack], each shared library) its Rss, Pss and private."""
    def field(line):
        return int(line.split()[1])
    try:
        total = {"rss": 0, "pss": 0, "private": 0, "shared": 0}
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key = line.split(":")[0]
                if key == "Rss":
                    total["rss"] = field(line)
                elif key == "Pss":
                    total["pss"] = field(line)
                elif key.startswith("Private_"):
                    total["private"] += field(line)
                elif key.startswith("Shared_"):
                    total["shared"] += field(line)
        exe = os.path.realpath(f"/proc/{pid}/exe")
        by = {}
        name = None
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split()
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    path = head[5] if len(head) > 5 else ""
                    name = ("binary" if path == exe else path if path.startswith("[") else
                            os.path.basename(path).split(".so")[0] if ".so" in path else "anonymous" if not path
                            else "other files")
                    by.setdefault(name, {"rss": 0, "pss": 0, "private": 0})
                elif head[0] == "Rss:":
                    by[name]["rss"] += int(head[1])
                elif head[0] == "Pss:":
                    by[name]["pss"] += int(head[1])
                elif head[0].startswith("Private_"):
                    by[name]["private"] += int(head[1])
        total["by"] = by
        return total
    except OSError:
        return None


def memory_text(m):
    """Two lines: the totals, then the mapping classes by private KiB (libraries summed, the largest named)."""
    if not m:
        return "n/a"
    by = m["by"]
    libs = {k: v for k, v in by.items() if k not in ("binary", "anonymous", "other files") and not k.startswith("[")}
    parts = [f"{k} rss {v['rss']} pss {v['pss']} private {v['private']}" for k, v in sorted(
        ((k, v) for k, v in by.items() if k not in libs), key=lambda kv: -kv[1]["rss"])]
    lib_sum = {key: sum(v[key] for v in libs.values()) for key in ("rss", "pss", "private")}
    top = sorted(libs.items(), key=lambda kv: -kv[1]["rss"])[:6]
    parts.append(f"{len(libs)} libraries rss {lib_sum['rss']} pss {lib_sum['pss']} private {lib_sum['private']} "
                 "(largest rss/private: " + ", ".join(f"{k} {v['rss']}/{v['private']}" for k, v in top) + ")")
    return (f"RSS {m['rss']} KiB = private {m['private']} + shared {m['shared']}; PSS {m['pss']} KiB\n    by mapping, "
            "KiB: " + "; ".join(parts))


def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                for c in f.read().split():
                    out.append(int(c))
                    out += children(int(c))
    except OSError:
        pass
    return sorted(set(out))


def syslog_stamp(t):
    return time.strftime("%b %e %H:%M:%S", time.localtime(t))


def fail_line(addr, t, n):
    return f"{syslog_stamp(t)} bench sshd[{4000 + n % 50000}]: Failed password for invalid user admin{n % 97} from {addr} port {40000 + n % 20000} ssh2\n"


def address(i, base=10):
    """Address number i (1…65535) of a benchmarking range (RFC 2544): 198.18.0.0/16 for base 10 (the ban-latency
    addresses), 198.19.0.0/16 for base 11 (the burst). Distinct for distinct i."""
    if not 0 < i < 65536:
        raise ValueError("at most 65,535 addresses per range")
    n = (198 << 24) | ((18 if base == 10 else 19) << 16) | i
    return socket.inet_ntoa(n.to_bytes(4, "big"))


class Monitor(threading.Thread):
    """Reads `nft monitor` inside the namespace and timestamps every added set element."""

    ELEMENT = re.compile(r"add element .*?\{ (.*) \}")

    def __init__(self, ns):
        super().__init__(daemon=True)
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "nft", "monitor", "elements"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.seen = {}
        self.cond = threading.Condition()

    def run(self):
        for line in self.proc.stdout:
            now = time.monotonic()
            m = self.ELEMENT.search(line)
            if not m:
                continue
            with self.cond:
                for item in m.group(1).split(","):
                    addr = item.strip().split(" ")[0]
                    self.seen.setdefault(addr, now)
                self.cond.notify_all()

    def wait_for(self, addrs, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                missing = [a for a in addrs if a not in self.seen]
                if not missing:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()


JAILS = """
[DEFAULT]
ignoreip =
ignoreself = false
bantime = 1h
findtime = 1h
maxretry = 3
banaction = nftables-multiport
banaction_allports = nftables-allports
backend = {backend}

[sshd]
enabled = true
port = ssh
logpath = {tmp}/auth.log

[postfix-sasl]
enabled = true
filter = postfix[mode=auth]
port = smtp,465,submission,imap,imaps,pop3,pop3s
logpath = {tmp}/mail.log

[recidive]
enabled = true
logpath = {tmp}/server.log
banaction = %(banaction_allports)s
bantime = 1w
findtime = 1d
"""


class Impl:
    """One server in a namespace on a throw-away copy of a tree (fail2ban: /etc/fail2ban; Portcullis: the project's
    config/, or /etc/fail2ban when `tree` says so): `jails` is jail.local's text, formatted with {tmp}, {backend} and
    the keyword arguments of `prepare`; `start_args` go after portcullis's `start`."""

    def __init__(self, name, tmp, ns, jails=JAILS, start_args=(), tree=None):
        self.name, self.tmp, self.ns, self.tree = name, tmp, ns, tree
        self.jails, self.start_args = jails, list(start_args)
        self.sock = f"{tmp}/server.sock"
        self.proc = None
        self.t0 = None

    def prepare(self, **fields):
        for f in ("auth.log", "mail.log", "server.log"):
            open(f"{self.tmp}/{f}", "w").close()
        conf = f"{self.tmp}/conf"
        backend = "pyinotify" if self.name == "fail2ban" else "auto"
        if self.name == "fail2ban" or self.tree == "/etc/fail2ban":
            shutil.copytree("/etc/fail2ban", conf)  # a throw-away copy in /tmp, not part of the project
            main = "fail2ban.local"
        else:
            shutil.copytree(os.path.join(ROOT, "config"), conf)
            main = "portcullis.local"
        for d in ("jail.d",):
            os.makedirs(f"{conf}/{d}", exist_ok=True)
            for f in os.listdir(f"{conf}/{d}"):
                os.remove(f"{conf}/{d}/{f}")
        with open(f"{conf}/jail.local", "w") as f:
            f.write(self.jails.format(tmp=self.tmp, backend=backend, **fields))
        with open(f"{conf}/{main}", "w") as f:
            f.write(f"[Definition]\nlogtarget = {self.tmp}/server.log\nloglevel = INFO\nsocket = {self.sock}\n"
                    f"pidfile = {self.tmp}/server.pid\ndbfile = {self.tmp}/db.sqlite3\n")
        self.conf = conf

    def start(self):
        if self.name == "fail2ban":
            cmd = ["fail2ban-server", "-f", "-x", "-c", self.conf, "-s", self.sock, "-p", f"{self.tmp}/server.pid"]
        else:
            exe = os.environ.get("PORTCULLIS", os.path.join(ROOT, ".build/release/portcullis"))
            cmd = [exe, "-c", self.conf, "-s", self.sock, "-p", f"{self.tmp}/server.pid", "-f", "start"]
            cmd += self.start_args
        t0 = self.t0 = time.monotonic()
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns] + cmd,
                                     stdout=open(f"{self.tmp}/stdout", "w"), stderr=subprocess.STDOUT)
        while time.monotonic() - t0 < 30:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: " + open(f"{self.tmp}/stdout").read()[-2000:])
            if ping(self.sock, 0.2):
                return time.monotonic() - t0
            time.sleep(0.002)
        raise RuntimeError(f"{self.name} did not answer ping within 30 s")

    def server_pid(self):
        # `ip netns exec` execs the server in place, so the child PID is the server's.
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                command(self.sock, ["stop"], timeout=10)
            except OSError:
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def bench(name, args):
    ns = f"pcl-bench-{name[:4]}-{os.getpid()}"
    tmp = tempfile.mkdtemp(prefix=f"pcl-bench-{name}-")
    run("ip", "netns", "add", ns)
    impl = Impl(name, tmp, ns)
    mon = None
    result = {"impl": name}
    try:
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        impl.prepare()
        result["startup_s"] = impl.start()
        time.sleep(2)
        result["rss_idle_kib"] = rss_kib(impl.server_pid())
        result["memory_idle"] = memory(impl.server_pid())
        mon = Monitor(ns)
        mon.start()
        time.sleep(0.3)
        auth = open(f"{tmp}/auth.log", "a", buffering=1)
        lat = []
        for i in range(args.bans):
            a = address(i + 1, 10)
            now = time.time()
            auth.write(fail_line(a, now, 3 * i) + fail_line(a, now, 3 * i + 1))
            auth.flush()
            time.sleep(0.005)
            t0 = time.monotonic()
            auth.write(fail_line(a, time.time(), 3 * i + 2))
            auth.flush()
            if not mon.wait_for([a], 10):
                lat.append(float("inf"))
                continue
            lat.append(mon.seen[a] - t0)
            time.sleep(0.01)
        lat.sort()
        finite = [x for x in lat if x != float("inf")]
        result["bans"] = len(finite)
        result["latency_p50_ms"] = 1000 * statistics.median(finite) if finite else None
        result["latency_p99_ms"] = 1000 * finite[min(len(finite) - 1, int(0.99 * len(finite)))] if finite else None
        result["latency_max_ms"] = 1000 * finite[-1] if finite else None
        if args.burst:
            addrs = [address(i + 1, 11) for i in range(args.burst)]
            now = time.time()
            text = "".join(fail_line(a, now, k) for a in addrs for k in range(3))
            t0 = time.monotonic()
            auth.write(text)
            auth.flush()
            ok = mon.wait_for(addrs, args.burst_timeout)
            t1 = max(mon.seen.get(a, time.monotonic()) for a in addrs)
            result["burst_s"] = (t1 - t0) if ok else None
            result["burst_banned"] = sum(1 for a in addrs if a in mon.seen)
            time.sleep(1)
            result["rss_after_burst_kib"] = rss_kib(impl.server_pid())
            result["memory_after_burst"] = memory(impl.server_pid())
            # Settled: Portcullis gives freed heap back every 30 s (malloc_trim); fail2ban has no such step.
            time.sleep(35)
            result["rss_settled_kib"] = rss_kib(impl.server_pid())
    finally:
        if mon:
            mon.stop()
        impl.stop()
        run("ip", "netns", "del", ns, check=False)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def nft_floor(addrs):
    """The kernel's floor for a burst: one `nft -f` adding the same addresses (with a timeout, as bans are) to a
    fresh set, timed as a command (`ip netns exec` + nft start-up included), in a namespace of its own."""
    ns = f"pcl-bench-nft-{os.getpid()}"
    fd, path = tempfile.mkstemp(prefix="pcl-bench-nft-", suffix=".nft")
    v4 = [a for a in addrs if ":" not in a]
    v6 = [a for a in addrs if ":" in a]
    with os.fdopen(fd, "w") as f:
        f.write("table inet pcl_floor {\n set s4 { type ipv4_addr; flags timeout; }\n"
                " set s6 { type ipv6_addr; flags timeout; }\n}\n")
        if v4:
            f.write("add element inet pcl_floor s4 { " + ", ".join(f"{a} timeout 600s" for a in v4) + " }\n")
        if v6:
            f.write("add element inet pcl_floor s6 { " + ", ".join(f"{a} timeout 600s" for a in v6) + " }\n")
    run("ip", "netns", "add", ns)
    try:
        t0 = time.monotonic()
        run("ip", "netns", "exec", ns, "nft", "-f", path)
        return time.monotonic() - t0
    finally:
        run("ip", "netns", "del", ns, check=False)
        os.remove(path)


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}{unit}" if v < 10 else f"{v:.1f}{unit}"
    return f"{v}{unit}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", choices=["fail2ban", "portcullis", "both"], default="both")
    p.add_argument("--bans", type=int, default=100)
    p.add_argument("--burst", type=int, default=10000)
    p.add_argument("--burst-timeout", type=float, default=400)
    p.add_argument("--keep", action="store_true", help="keep temp dirs")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/daemon.py: run as root (it creates network namespaces)")
    impls = ["portcullis", "fail2ban"] if args.impl == "both" else [args.impl]
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    results = [bench(i, args) for i in impls]
    print(f"load average {load} at the start, {' '.join(open('/proc/loadavg').read().split()[:3])} at the end, on "
          f"{os.cpu_count()} CPU(s); portcullis {os.environ.get('PORTCULLIS', os.path.join(ROOT, '.build/release/portcullis'))}")
    floor = nft_floor([address(i + 1, 11) for i in range(args.burst)]) if args.burst else None
    keys = [("startup_s", " s"), ("rss_idle_kib", " KiB"), ("bans", ""), ("latency_p50_ms", " ms"),
            ("latency_p99_ms", " ms"), ("latency_max_ms", " ms"), ("burst_s", " s"), ("burst_banned", ""),
            ("rss_after_burst_kib", " KiB"), ("rss_settled_kib", " KiB")]
    print(f"{'metric':<22}" + "".join(f"{r['impl']:>16}" for r in results) + ("    ratio" if len(results) == 2 else ""))
    for k, unit in keys:
        row = f"{k:<22}" + "".join(f"{fmt(r.get(k), unit):>16}" for r in results)
        if len(results) == 2 and all(isinstance(r.get(k), (int, float)) and r.get(k) for r in results) and k not in ("bans", "burst_banned"):
            row += f"    {results[1][k] / results[0][k]:.1f}x"
        print(row)
    for r in results:
        for k in ("memory_idle", "memory_after_burst"):
            if k in r:
                print(f"{r['impl']} {k[7:].replace('_', ' ')}: {memory_text(r[k])}")
    if floor is not None:
        print(f"{'nft -f floor':<22}{fmt(floor, ' s'):>16}   (one nft -f of the same {args.burst} elements, same run)")
        for r in results:
            if r.get("burst_s"):
                print(f"{'burst / floor':<22}{r['burst_s'] / floor:>15.1f}x   ({r['impl']}; issue-11 target <= 5x)")


if __name__ == "__main__":
    main()
