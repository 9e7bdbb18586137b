#!/usr/bin/python3
"""Fleet sharing on the real thing: Debian's PostgreSQL (a cluster of our own: initdb in a temp dir, own port and
unix-socket directory, run as the postgres user, removed afterwards) and three Portcullis daemons, each in its own
network namespace (pcl-fleet-PID-a/b/c) with its own nftables table:

  A trusts B, C;  B trusts A, C;  C trusts A only;  escalate-after = 2 on all.

Checks: a ban on A is in B's and C's kernel sets (p50/p99 over 100 bans, from `banip` on A to the `Fleet Ban` line
of the slower of B and C); PostgreSQL stopped during 500 bans on A and started again: B and C end with all 500, each
applied once, and the table holds each once; a peer not in the trust list is ignored; ignoreip wins over a peer;
an address banned by 2 hosts is banned on every port; a NOTIFY payload that is not ours and a row altered by hand
give one log line each and no crash. Documentation addresses only (198.18.0.0/15, 203.0.113.0/24, 198.51.100.0/24).
Last line: `fleet: N passed, M failed`. Run as root:  tests/fleet/fleet_test.py --portcullis .build/debug/portcullis
"""
import argparse, glob, json, os, re, shutil, sqlite3, subprocess, sys, tempfile, time

PID = os.getpid()
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f" — {detail}" if detail and not ok else ""), flush=True)


def sh(*cmd, check_rc=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.returncode}: {r.stderr.strip()}")
    return r


def wait_until(fn, timeout, step=0.02):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found: install Debian's postgresql (scripts/deps.sh --test)")
    return found[-1]


class Postgres:
    def __init__(self, tmp):
        self.dir = f"{tmp}/pg"
        self.sock = f"{tmp}/pgsock"
        self.port = str(20000 + PID % 20000)
        os.makedirs(self.dir)
        os.makedirs(self.sock)
        shutil.chown(self.dir, "postgres", "postgres")
        shutil.chown(self.sock, "postgres", "postgres")
        os.chmod(tmp, 0o755)
        sh("runuser", "-u", "postgres", "--", pg_bin("initdb"), "-D", self.dir, "-A", "trust", "-U", "postgres")
        self.start()
        sh("runuser", "-u", "postgres", "--", pg_bin("createdb"), "-h", self.sock, "-p", self.port, "portcullis")

    def start(self):
        sh("runuser", "-u", "postgres", "--", pg_bin("pg_ctl"), "-D", self.dir, "-w", "-l", f"{self.dir}/log",
           "-o", f"-p {self.port} -k {self.sock} -c listen_addresses=''", "start")

    def stop(self):
        sh("runuser", "-u", "postgres", "--", pg_bin("pg_ctl"), "-D", self.dir, "-w", "-m", "fast", "stop",
           check_rc=False)

    def url(self):
        return f"postgresql://postgres@/portcullis?host={self.sock}&port={self.port}"

    def psql(self, sql):
        return sh("runuser", "-u", "postgres", "--", "psql", "-h", self.sock, "-p", self.port, "-d", "portcullis",
                  "-At", "-c", sql).stdout.strip()


class Daemon:
    def __init__(self, exe, tmp, name, trust, pg, ignore="", fleet=True):
        self.exe, self.name = exe, name
        self.ns = f"pcl-fleet-{PID}-{name}"
        self.dir = f"{tmp}/{name}"
        self.conf = f"{self.dir}/conf"
        self.sock = f"{self.dir}/portcullis.sock"
        self.logfile = f"{self.dir}/portcullis.log"
        self.db = f"{self.dir}/portcullis.sqlite3"
        os.makedirs(f"{self.conf}/filter.d")
        with open(f"{self.conf}/portcullis.conf", "w") as f:
            f.write(f"[Definition]\nloglevel = INFO\nlogtarget = {self.logfile}\nsocket = {self.sock}\n"
                    f"pidfile = {self.dir}/portcullis.pid\ndbfile = {self.db}\n\n")
            if fleet:
                f.write(f"[fleet]\nurl = {pg.url()}\nname = {name}\njails = demo\ntrust = {trust}\nescalate-after = 2\n")
        with open(f"{self.conf}/filter.d/demo.conf", "w") as f:
            f.write("[Definition]\nfailregex = ^auth failure from <HOST>$\n")
        with open(f"{self.conf}/jail.conf", "w") as f:
            f.write("[DEFAULT]\nbanaction = nftables-multiport\nport = 22\nbantime = 1h\nignoreself = false\n"
                    "action = %(banaction)s[port=\"%(port)s\", protocol=\"tcp\"]\n"
                    f"[demo]\nenabled = true\nfilter = demo\nlogpath = {self.dir}/auth.log\nignoreip = {ignore}\n")
        open(f"{self.dir}/auth.log", "w").close()
        sh("ip", "netns", "add", self.ns)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, self.exe, "-c", self.conf, "-f", "start"],
                                     stdout=open(f"{self.dir}/stdout", "a"), stderr=subprocess.STDOUT)
        return wait_until(lambda: self.client("ping").returncode == 0, 20, 0.05)

    def client(self, *words):
        return sh(self.exe, "-s", self.sock, *words, check_rc=False)

    def log(self):
        try:
            with open(self.logfile) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def set_elements(self, set_name):
        r = sh("ip", "netns", "exec", self.ns, "nft", "-j", "list", "set", "inet", "portcullis", set_name,
               check_rc=False)
        if r.returncode != 0:
            return set()
        out = set()
        for item in json.loads(r.stdout)["nftables"]:
            for e in item.get("set", {}).get("elem", []):
                v = e["elem"]["val"] if isinstance(e, dict) else e
                if isinstance(v, str):
                    out.add(v)
        return out

    def memory(self):
        """(VmRSS, Pss, Private) in kB of the daemon process."""
        def field(path, key):
            with open(path) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
            return 0
        rollup = f"/proc/{self.proc.pid}/smaps_rollup"
        private = field(rollup, "Private_Clean") + field(rollup, "Private_Dirty")
        return field(f"/proc/{self.proc.pid}/status", "VmRSS"), field(rollup, "Pss"), private

    def fleet_set(self):
        return self.set_elements("fleet-set-demo")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.client("stop")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def remove(self):
        sh("ip", "netns", "del", self.ns, check_rc=False)


LINE_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


def line_times(log, needle):
    """Epoch times of the log lines containing `needle`."""
    out = []
    for line in log.splitlines():
        if needle in line:
            m = LINE_TIME.match(line)
            if m:
                out.append(time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000)
    return out


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--portcullis", required=True)
    ap.add_argument("--latency-bans", type=int, default=100)
    ap.add_argument("--outage-bans", type=int, default=500)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("fleet: needs root (network namespaces, PostgreSQL as the postgres user)")
        print("fleet: 0 passed, 1 failed")
        return 1
    exe = os.path.abspath(args.portcullis)
    tmp = tempfile.mkdtemp(prefix=f"pcl-fleet-{PID}-")
    pg = None
    daemons = []
    try:
        pg = Postgres(tmp)
        a = Daemon(exe, tmp, "a", "b c", pg)
        b = Daemon(exe, tmp, "b", "a c", pg, ignore="198.51.100.77")
        c = Daemon(exe, tmp, "c", "a", pg)
        daemons = [a, b, c]
        for d in daemons:
            check(f"daemon {d.name} starts with [fleet]", d.start(), d.log()[-2000:])
        wait_until(lambda: all("fleet: connected" in d.log() for d in daemons), 10)
        check("all three connected to PostgreSQL", all("fleet: connected" in d.log() for d in daemons))

        # The client's cost: the same daemon and jail without [fleet], both idle for 3 s.
        z = Daemon(exe, tmp, "z", "", pg, fleet=False)
        daemons.append(z)
        check("a daemon without [fleet] starts", z.start(), z.log()[-2000:])
        time.sleep(3)
        (ra, pa, qa), (rz, pz, qz) = a.memory(), z.memory()
        print(f"FIGURE idle memory with [fleet] (connected) vs without: VmRSS {ra} vs {rz} kB ({ra - rz:+d}), "
              f"Pss {pa} vs {pz} kB ({pa - pz:+d}), private {qa} vs {qz} kB ({qa - qz:+d}); "
              f"binary {os.path.getsize(exe)} bytes", flush=True)
        check("the daemon without [fleet] starts no fleet service", "fleet: " not in z.log() and "Fleet " not in z.log(),
              z.log()[-500:])
        z.stop()
        z.remove()
        daemons.remove(z)

        # 1. Propagation latency over N bans, one at a time.
        latencies = []
        from_ban = []
        addrs = [f"198.18.1.{i}" for i in range(1, args.latency_bans + 1)]
        for addr in addrs:
            t0 = time.time()
            a.client("set", "demo", "banip", addr)
            needle = f"Fleet Ban {addr} (from a)"
            wait_until(lambda: needle in b.log() and needle in c.log(), 10, 0.002)
            tb = line_times(b.log(), needle)
            tc = line_times(c.log(), needle)
            ta = line_times(a.log(), f"[demo] Ban {addr}")
            if tb and tc:
                latencies.append(max(tb[0], tc[0]) - t0)
                if ta:
                    from_ban.append(max(tb[0], tc[0]) - ta[0])
        check(f"{len(addrs)} bans on A reached B's and C's logs", len(latencies) == len(addrs), f"{len(latencies)}")
        want = set(addrs)
        check("every ban is in B's and C's kernel fleet sets",
              wait_until(lambda: want <= b.fleet_set() and want <= c.fleet_set(), 10))
        check("A's own bans stay in its own set, not in its fleet set",
              want <= a.set_elements("addr-set-demo") and not (want & a.fleet_set()))
        if latencies:
            # From the start of the `portcullis set … banip` command on A (its process start included).
            print(f"FIGURE propagation A -> B,C over {len(latencies)} bans: p50 {pct(latencies, 50) * 1000:.1f} ms, "
                  f"p99 {pct(latencies, 99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms", flush=True)
        if from_ban:
            print(f"FIGURE propagation from A's Ban line to the slower of B,C (log stamps, ms resolution): "
                  f"p50 {pct(from_ban, 50) * 1000:.0f} ms, p99 {pct(from_ban, 99) * 1000:.0f} ms", flush=True)
        status = b.client("status", "demo").stdout
        check("status on B shows the fleet bans and their origin", "Fleet ban list:" in status and "198.18.1.1 (a)" in status,
              status[-500:])

        # 2. PostgreSQL down during N bans on A.
        pg.stop()
        outage = [f"198.19.{i // 250}.{i % 250 + 1}" for i in range(args.outage_bans)]
        t0 = time.time()
        for i in range(0, len(outage), 100):
            r = a.client("set", "demo", "banip", *outage[i:i + 100])
            if r.returncode != 0:
                print(r.stdout, r.stderr)
        local = a.set_elements("addr-set-demo")
        check(f"with PostgreSQL down, A banned all {len(outage)} locally", set(outage) <= local)
        held = sqlite3.connect(a.db).execute("SELECT COUNT(*) FROM fleet_outbox").fetchone()[0]
        check("A keeps them in its outbox meanwhile", held == len(outage), f"{held}")
        check("A logged that PostgreSQL is unreachable", "PostgreSQL unreachable or refused" in a.log() or
              "lost PostgreSQL" in a.log())
        time.sleep(1)
        pg.start()
        t1 = time.time()
        done = wait_until(lambda: set(outage) <= b.fleet_set() and set(outage) <= c.fleet_set(), 60, 0.05)
        t2 = time.time()
        check(f"after PostgreSQL is back, B and C have all {len(outage)}", done,
              f"B {len(set(outage) & b.fleet_set())}, C {len(set(outage) & c.fleet_set())}")
        if done:
            print(f"FIGURE catch-up of {len(outage)} bans after PostgreSQL restart: {t2 - t1:.2f} s "
                  f"(outage bans issued in {t1 - t0:.2f} s incl. 1 s pause)", flush=True)
        for d in (b, c):
            log = d.log()
            twice = [x for x in outage if log.count(f"Fleet Ban {x} (from a)") != 1]
            check(f"{d.name} applied each of the {len(outage)} exactly once", not twice, f"{twice[:5]}")
        rows = pg.psql("SELECT COUNT(*), COUNT(DISTINCT address) FROM portcullis_fleet WHERE host = 'a' AND address LIKE '198.19.%'")
        check("the table holds each outage ban once", rows == f"{len(outage)}|{len(outage)}", rows)
        check("A's outbox is empty again",
              wait_until(lambda: sqlite3.connect(a.db).execute("SELECT COUNT(*) FROM fleet_outbox").fetchone()[0] == 0, 10))

        # 3. Trust: C does not trust B.
        b.client("set", "demo", "banip", "203.0.113.50")
        check("a ban on B reaches A (A trusts B)", wait_until(lambda: "203.0.113.50" in a.fleet_set(), 10))
        check("C ignores B (not in its trust list)",
              wait_until(lambda: "ignored ban of 203.0.113.50 from b, not in trust" in c.log(), 5)
              and "203.0.113.50" not in c.fleet_set())

        # 4. ignoreip wins over a peer's ban.
        a.client("set", "demo", "banip", "198.51.100.77")
        check("B does not apply a peer's ban of an address in its ignoreip",
              wait_until(lambda: "ban of 198.51.100.77 from a not applied: covered by ignoreip" in b.log(), 10)
              and "198.51.100.77" not in b.fleet_set())
        check("C applies it", wait_until(lambda: "198.51.100.77" in c.fleet_set(), 10))

        # 5. Escalation: banned by 2 hosts (A and C) -> every port on B.
        a.client("set", "demo", "banip", "203.0.113.60")
        c.client("set", "demo", "banip", "203.0.113.60")
        check("an address banned by 2 hosts is banned on every port on B",
              wait_until(lambda: "203.0.113.60" in b.set_elements("addr-set-fleet-escalated"), 10),
              b.log()[-1500:])
        check("escalation is logged with the hosts", "Fleet escalation: 203.0.113.60 is banned by 2 hosts (a, c)" in b.log())

        # 6. Bad input: a NOTIFY that is not ours, a row altered by hand.
        pg.psql("NOTIFY portcullis_fleet, 'hello from someone else'")
        pg.psql("INSERT INTO portcullis_fleet (host, seq, jail, address, kind, at) VALUES ('a', -1, 'demo', 'not-an-address', 'ban', 1)")
        check("a NOTIFY payload that is not ours gives one clear line",
              wait_until(lambda: "ignored a notification on portcullis_fleet that is not Portcullis's" in c.log(), 5))
        check("a row altered by hand gives one clear line",
              wait_until(lambda: "is not a ban Portcullis wrote (altered by hand?); skipped" in c.log(), 5))
        check("all daemons still answer", all(d.client("ping").returncode == 0 for d in daemons))
        # A local unban is exact: A's own set only; the peers' fleet sets follow A's unban.
        a.client("set", "demo", "unbanip", "198.18.1.1")
        check("A's unban reaches B", wait_until(lambda: "198.18.1.1" not in b.fleet_set(), 10))
        check("B's own set was never touched by fleet bans", "198.18.1.2" not in b.set_elements("addr-set-demo"))
    except Exception as e:
        check("fleet run", False, repr(e))
    finally:
        for d in daemons:
            d.stop()
            d.remove()
        if pg:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(results)
    print(f"fleet: {passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
