#!/usr/bin/python3
"""Durability of the Portcullis daemon on the real kernel, in a network namespace this script creates.

1. SIGKILL invariant. A burst of failures for 5,000 addresses (198.18.0.0/15, maxretry failures each, interleaved
   so every address has failures pending across kills) is appended to the watched log while the daemon is
   SIGKILLed at random points 10 times. Before each restart the daemon's table is deleted, so only the store can
   bring bans back. Right after each restart every address with a logged `Ban` must be in the kernel set; in the
   end all 5,000 are banned, each with exactly one `Ban` line.
2. The store cannot write: its directory is a small tmpfs, made full, then read-only, then locked by another
   process. Each time: bans still reach the kernel, the stored position does not move past the unstored lines,
   one log line says so, `status` (and `--json`) shows the error, and once the store works again everything is
   written; a restart on a flushed ruleset brings every ban back.
3. A damaged database (cut short; garbage) is moved aside with a log line naming both paths, a new one is created
   and the bans still in the kernel are adopted into it.
4. The SIGKILL invariant for a journal jail (backend = systemd, a journal file written by systemd-journal-remote):
   1,500 addresses, 5 kills; the stored cursor must cover every entry's work.
5. The start-up restore of a large store (--restore-bans, 30,000 by default: about 45 s of CPU with the debug build)
   under attack: SIGHUP and new failures while it runs (the daemon lives, reloads after the start, bans them all);
   SIGTERM while it runs (exit 0, socket and table gone, store untouched); SIGKILL at 10, 50 and 80 % of it, then a
   start on a flushed ruleset; `nft flush ruleset` four times while it runs; a reload restoring the jail while the
   socket serves, with `status`, `unbanip` and `banip` meanwhile; a SIGHUP renaming the jail while `reload --restart`
   restores it on a flushed ruleset; `stop` while a reload restores the jail, then a start. After each: the kernel sets, the store's active rows (each address once) and
   `status` hold exactly the expected addresses, and no crash line was logged.

Never touches the host's ruleset; the namespace and the tmpfs are removed at the end. Run as root:
    tests/e2e/durability_e2e.py [--portcullis .build/debug/portcullis] [--seed N]
Ends with one line: `durability: N passed, M failed`.
"""
import argparse
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PID = os.getpid()
NS = f"pcl-dur-{PID}"
JAIL = "dur"
MAXRETRY = 3
BAN_LINE = re.compile(r"\[" + JAIL + r"\] Ban (\S+)$")
results = []
DAEMONS = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f" — {detail}" if detail and not ok else ""), flush=True)
    return ok


def sh(*cmd, check_rc=True, ns=None, input=None):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + tuple(cmd)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, input=input)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r


def wait_until(fn, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def addresses(base, n):
    start = int(ipaddress.IPv4Address(base))
    return [str(ipaddress.IPv4Address(start + i)) for i in range(n)]


class Daemon:
    def __init__(self, exe, tmp, dbdir, journal=None):
        self.exe = exe
        self.tmp = tmp
        self.conf = f"{tmp}/conf"
        self.sock = f"{tmp}/portcullis.sock"
        self.log = f"{tmp}/auth.log"
        self.daemon_log = f"{tmp}/portcullis.log"
        self.db = f"{dbdir}/portcullis.sqlite3"
        self.proc = None
        DAEMONS.append(self)
        os.makedirs(f"{self.conf}/filter.d", exist_ok=True)
        with open(f"{self.conf}/portcullis.conf", "w") as f:
            f.write(f"[Definition]\nloglevel = INFO\nlogtarget = {self.daemon_log}\nsocket = {self.sock}\n"
                    f"pidfile = {tmp}/portcullis.pid\ndbfile = {self.db}\n")
        with open(f"{self.conf}/filter.d/dur.conf", "w") as f:
            f.write("[Definition]\nfailregex = ^\\s*\\S+ dur\\[\\d+\\]: authentication failure from <HOST>$\n"
                    "journalmatch = SYSLOG_IDENTIFIER=dur\n")
        self.journal = journal
        self.write_jails([JAIL])
        open(self.log, "a").close()

    def write_jails(self, jails):
        """jail.conf with `jails` enabled (JAIL reads the log or the journal, any other reads TMP/NAME.log)."""
        with open(f"{self.conf}/jail.conf", "w") as f:
            f.write(f"[DEFAULT]\nmaxretry = {MAXRETRY}\nfindtime = 1h\nbantime = 1d\nignoreself = true\n"
                    "banaction = nftables-multiport\nprotocol = tcp\n"
                    "action = %(banaction)s[port=\"%(port)s\", protocol=\"%(protocol)s\"]\n")
            for jail in jails:
                if jail == JAIL:
                    source = (f"backend = systemd[journalfiles={self.journal}]" if self.journal
                              else f"logpath = {self.log}")
                else:
                    source = f"logpath = {self.tmp}/{jail}.log"
                    open(f"{self.tmp}/{jail}.log", "a").close()
                f.write(f"\n[{jail}]\nenabled = true\nfilter = dur\nport = 22\n{source}\n")

    def start(self):
        self.start_async()
        return self.wait_ready(20)

    def start_async(self):
        """Spawns the daemon and returns at once."""
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS, self.exe, "-c", self.conf, "-f", "start"],
                                     stdout=open(f"{self.tmp}/stdout", "a"), stderr=subprocess.STDOUT)

    def wait_ready(self, timeout):
        """Until the daemon answers `ping` (False when it exited or the time ran out)."""
        return wait_until(lambda: self.proc.poll() is not None or self.client("ping").returncode == 0, timeout, 0.02) \
            and self.proc.poll() is None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=20):
        """`stop` on the socket; returns the exit status (None when it had to be killed)."""
        if self.proc and self.proc.poll() is None:
            self.client("stop")
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode if self.proc else None

    def client(self, *words):
        return sh(self.exe, "-s", self.sock, *words, check_rc=False)

    def delete_table(self):
        sh("nft", "delete", "table", "inet", "portcullis", ns=NS, check_rc=False)

    def kernel_set(self, family="addr", jail=JAIL):
        """The addresses in the jail's IPv4 set (`addr6` for IPv6); empty when the set does not exist."""
        r = sh("nft", "-j", "list", "set", "inet", "portcullis", f"{family}-set-{jail}", ns=NS, check_rc=False)
        if r.returncode != 0:
            return set()
        out = set()
        for item in json.loads(r.stdout).get("nftables", []):
            for e in item.get("set", {}).get("elem", []) or []:
                v = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
                if isinstance(v, str):
                    out.add(v)
        return out

    def kernel_all(self, jail=JAIL):
        return self.kernel_set("addr", jail) | self.kernel_set("addr6", jail)

    def ban_lines(self):
        counts = {}
        try:
            with open(self.daemon_log, errors="replace") as f:
                for line in f:
                    m = BAN_LINE.search(line.rstrip("\n"))
                    if m:
                        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        except FileNotFoundError:
            pass
        return counts

    def log_text(self):
        try:
            with open(self.daemon_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stored_position(self):
        try:
            c = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
            row = c.execute("SELECT position FROM log_positions WHERE path = ?", (self.log,)).fetchone()
            c.close()
            return row[0] if row else None
        except sqlite3.Error as e:
            return f"error {e}"

    def active_bans(self, jail=JAIL):
        return set(self.active_rows(jail))

    def active_rows(self, jail=JAIL):
        """Every active row of the jail (an address twice would be a ban applied twice)."""
        c = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        rows = [r[0] for r in c.execute("SELECT address FROM bans WHERE jail = ? AND active = 1", (jail,))]
        c.close()
        return rows

    def status_list(self, jail=JAIL):
        """The addresses `status JAIL` lists (None when it fails)."""
        r = self.client("status", jail)
        if r.returncode != 0:
            return None
        return r.stdout.rsplit("Banned IP list:", 1)[-1].split()


def failure_lines(addrs, rounds, rng):
    """`rounds` failures per address, round after round (every address has failures pending until the last round),
    shuffled within each round."""
    lines = []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for r in range(rounds):
        order = list(addrs)
        rng.shuffle(order)
        lines += [f"{stamp} server dur[{1000 + r}]: authentication failure from {a}\n" for a in order]
    return lines


def append(path, lines):
    with open(path, "a") as f:
        f.write("".join(lines))


def sigkill_invariant(exe, tmp, rng):
    print("--- SIGKILL at random points of a 5,000-address burst, 10 times, restarting on a flushed ruleset")
    dbdir = f"{tmp}/kill-db"
    os.makedirs(dbdir)
    os.makedirs(f"{tmp}/kill")
    d = Daemon(exe, f"{tmp}/kill", dbdir)
    targets = addresses("198.18.0.0", 5000)
    lines = failure_lines(targets, MAXRETRY, rng)
    check("daemon starts", d.start())
    done = threading.Event()

    def writer():
        chunk = 100
        for i in range(0, len(lines), chunk):
            append(d.log, lines[i:i + chunk])
            time.sleep(0.05)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    violations = []
    for k in range(10):
        time.sleep(rng.uniform(0.05, 0.9))
        d.kill()
        logged = set(d.ban_lines())
        d.delete_table()
        if not d.start():
            check(f"restart {k + 1} answers ping", False)
            break
        kernel = d.kernel_set()
        missing = logged - kernel
        if missing:
            violations.append((k + 1, len(missing), sorted(missing)[:5]))
        print(f"     kill {k + 1} ({os.path.getsize(d.log) * 100 // (len(''.join(lines)))}% of the burst written): "
              f"{len(logged)} addresses with a Ban line, all in the kernel after restart: "
              f"{not missing}", flush=True)
    t.join()
    check("every address with a logged Ban is in the kernel right after each restart", not violations,
          f"{violations}")
    complete = wait_until(lambda: len(d.kernel_set() & set(targets)) == len(targets), 90, 0.25)
    # The store (and the Ban lines, written right after each commit) may trail the kernel: wait until the stored
    # position reaches the end of the log, i.e. every line's work is durable.
    durable = wait_until(lambda: d.stored_position() == os.path.getsize(d.log), 90, 0.25)
    check("the stored position reaches the end of the log", durable,
          f"{d.stored_position()} of {os.path.getsize(d.log)}")
    kernel = d.kernel_set() & set(targets)
    counts = d.ban_lines()
    twice = {a: n for a, n in counts.items() if n != 1}
    never = [a for a in targets if a not in counts]
    print(f"     banned {len(kernel)}/{len(targets)}; Ban lines: {sum(counts.values())}; "
          f"addresses with more than one: {len(twice)}; without one: {len(never)}")
    check("in the end all 5,000 are in the kernel set", complete, f"{len(kernel)}/{len(targets)}")
    check("every address has exactly one Ban line (none banned twice)", not twice and not never,
          f"twice: {list(twice.items())[:5]} never: {never[:5]}")
    d.stop()


JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"


def journal_append(path, addrs, first_monotonic):
    """Appends one `dur` failure entry per address to the journal file at `path` (systemd-journal-remote)."""
    now = int(time.time() * 1e6)
    text = "".join(
        f"__REALTIME_TIMESTAMP={now + i}\n__MONOTONIC_TIMESTAMP={first_monotonic + i}\n"
        f"_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=server\nSYSLOG_IDENTIFIER=dur\n_PID={1000 + i % 50}\n"
        f"MESSAGE=authentication failure from {a}\n\n" for i, a in enumerate(addrs))
    subprocess.run([JOURNAL_REMOTE, f"--output={path}", "-"], input=text.encode(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def journal_sigkill_invariant(exe, tmp, rng):
    print("--- SIGKILL at random points of a 1,500-address journal burst, 5 times, restarting on a flushed ruleset")
    if not check("systemd-journal-remote installed (scripts/deps.sh --test)", os.path.exists(JOURNAL_REMOTE)):
        return
    base = f"{tmp}/journal"
    os.makedirs(base)
    journal = f"{base}/dur.journal"
    targets = addresses("198.18.64.0", 1500)
    order = []
    for r in range(MAXRETRY):
        round_ = list(targets)
        rng.shuffle(round_)
        order += round_
    journal_append(journal, ["192.0.2.200"], 1)  # the file exists before the daemon starts
    d = Daemon(exe, base, base, journal=journal)
    check("journal: daemon starts", d.start())
    done = threading.Event()
    written = [0]

    def writer():
        chunk = 100
        for i in range(0, len(order), chunk):
            journal_append(journal, order[i:i + chunk], 10 + i)
            written[0] = i + chunk
            time.sleep(0.05)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    violations = []
    for k in range(5):
        # Spread over the burst: each kill once a further fifth of it is written, at a random moment after that.
        wait_until(lambda: written[0] >= len(order) * k // 5, 60, 0.02)
        time.sleep(rng.uniform(0.05, 0.6))
        d.kill()
        logged = set(d.ban_lines())
        d.delete_table()
        if not d.start():
            check(f"journal: restart {k + 1} answers ping", False)
            break
        missing = logged - d.kernel_set()
        if missing:
            violations.append((k + 1, len(missing), sorted(missing)[:5]))
        print(f"     kill {k + 1} ({written[0] * 100 // len(order)}% of the burst written): {len(logged)} addresses "
              f"with a Ban line, all in the kernel after restart: {not missing}", flush=True)
    t.join()
    check("journal: every address with a logged Ban is in the kernel right after each restart", not violations,
          f"{violations}")
    complete = wait_until(lambda: len(d.kernel_set() & set(targets)) == len(targets), 60, 0.25)
    kernel = d.kernel_set() & set(targets)
    wait_until(lambda: len(d.ban_lines()) >= len(targets), 10, 0.25)
    counts = d.ban_lines()
    twice = {a: n for a, n in counts.items() if n != 1}
    never = [a for a in targets if a not in counts]
    print(f"     banned {len(kernel)}/{len(targets)}; Ban lines: {sum(counts.values())}; "
          f"addresses with more than one: {len(twice)}; without one: {len(never)}")
    check("journal: in the end all 1,500 are in the kernel set", complete, f"{len(kernel)}/{len(targets)}")
    check("journal: every address has exactly one Ban line (none banned twice)", not twice and not never,
          f"twice: {list(twice.items())[:5]} never: {never[:5]}")
    d.stop()


def store_failures(exe, tmp, rng):
    print("--- the store cannot write: full disk, locked by another process")
    dbdir = f"{tmp}/store-db"
    os.makedirs(dbdir)
    sh("mount", "-t", "tmpfs", "-o", "size=4m", f"pcl-dur-{PID}", dbdir)
    try:
        os.makedirs(f"{tmp}/store")
        d = Daemon(exe, f"{tmp}/store", dbdir)
        check("daemon starts with its database on a 4 MiB tmpfs", d.start())
        append(d.log, failure_lines(["192.0.2.1"], MAXRETRY, rng))
        wait_until(lambda: "192.0.2.1" in d.kernel_set(), 5)
        wait_until(lambda: d.stored_position() == os.path.getsize(d.log), 5)
        everything = {"192.0.2.1"}

        def scenario(name, break_store, repair, first):
            targets = addresses(first, 300)
            everything.update(targets)
            before = os.path.getsize(d.log)
            log_before = len(d.log_text())
            break_store()
            append(d.log, failure_lines(targets, MAXRETRY, rng))
            in_kernel = wait_until(lambda: set(targets) <= d.kernel_set(), 15, 0.1)
            check(f"{name}: all 300 bans reach the kernel", in_kernel,
                  f"{len(set(targets) & d.kernel_set())}/300")
            wait_until(lambda: "cannot write the database" in d.log_text()[log_before:], 10)
            time.sleep(2.5)  # several retries happen meanwhile: still one line
            errors = [l for l in d.log_text()[log_before:].splitlines() if "cannot write the database" in l]
            check(f"{name}: one clear log line", len(errors) == 1, f"{len(errors)} lines: {errors[:3]}")
            if errors:
                print(f"     {errors[0][errors[0].find('cannot'):][:200]}")
            st = d.client("status")
            js = d.client("--json", "status")
            check(f"{name}: status shows the store error", "Database error" in st.stdout, st.stdout + st.stderr)
            check(f"{name}: status --json shows it", "Database error" in js.stdout, js.stdout + js.stderr)
            pos = d.stored_position()
            check(f"{name}: the stored position stays before the unstored lines",
                  isinstance(pos, int) and pos <= before, f"stored {pos}, lines start at {before}")
            repair()
            caught = wait_until(lambda: d.stored_position() == os.path.getsize(d.log), 40, 0.2)
            check(f"{name}: caught up when the store works again (position at the end)", caught,
                  f"stored {d.stored_position()} of {os.path.getsize(d.log)}")
            stored = d.active_bans()
            check(f"{name}: all 300 bans in the store", set(targets) <= stored, f"{len(set(targets) & stored)}/300")
            st = d.client("status")
            check(f"{name}: status clear again", st.returncode == 0 and "Database error" not in st.stdout, st.stdout)
            check(f"{name}: recovery logged", "is writable again" in d.log_text()[log_before:])

        filler = f"{dbdir}/filler"

        def fill():
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass

        scenario("full disk", fill, lambda: os.unlink(filler), "198.19.0.0")
        holder = {}

        def lock():
            holder["c"] = sqlite3.connect(d.db, timeout=5, isolation_level=None)
            holder["c"].execute("BEGIN EXCLUSIVE")

        def unlock():
            holder["c"].execute("ROLLBACK")
            holder["c"].close()

        scenario("locked by another process", lock, unlock, "198.19.8.0")

        d.kill()
        d.delete_table()
        check("restart on a flushed ruleset", d.start())
        kernel = d.kernel_set()
        check("every ban made while the store failed is back in the kernel", everything <= kernel,
              f"{len(everything & kernel)}/{len(everything)}")
        print(f"     restored {len(everything & kernel)}/{len(everything)}")
        d.stop()
    finally:
        sh("umount", dbdir, check_rc=False)


def damaged_database(exe, tmp, rng):
    print("--- a damaged database is moved aside, a new one created, the kernel's bans adopted")
    for kind in ("truncated", "garbage"):
        base = f"{tmp}/damaged-{kind}"
        os.makedirs(base)
        d = Daemon(exe, base, base)
        check(f"{kind}: daemon starts", d.start())
        targets = addresses("203.0.113.10" if kind == "truncated" else "203.0.113.60", 40)
        append(d.log, failure_lines(targets, MAXRETRY, rng))
        wait_until(lambda: set(targets) <= d.kernel_set(), 10)
        wait_until(lambda: set(targets) <= d.active_bans(), 10)
        d.kill()
        c = sqlite3.connect(d.db)  # move the committed bans from the WAL into the file, then damage the file
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(d.db + suffix):
                os.unlink(d.db + suffix)
        size = os.path.getsize(d.db)
        print(f"     {kind}: database of {size} bytes")
        if kind == "truncated":
            with open(d.db, "r+b") as f:
                f.truncate(max(512, size // 3))
        else:
            with open(d.db, "wb") as f:
                f.write(bytes(rng.randrange(256) for _ in range(size or 8192)))
        log_before = len(d.log_text())
        check(f"{kind}: daemon starts on the damaged database", d.start())
        text = d.log_text()[log_before:]
        moved = [l for l in text.splitlines() if "moved it to" in l]
        check(f"{kind}: one log line names both paths", len(moved) == 1 and d.db in moved[0]
              and f"{d.db}.corrupt-" in moved[0], text[-800:])
        aside = [n for n in os.listdir(base) if ".corrupt-" in n and not n.endswith(("-wal", "-shm"))]
        check(f"{kind}: the damaged file is kept aside", len(aside) == 1, f"{os.listdir(base)}")
        adopted = wait_until(lambda: set(targets) <= d.active_bans(), 10)
        check(f"{kind}: the kernel's bans are adopted into the new database", adopted,
              f"{len(set(targets) & d.active_bans())}/{len(targets)}")
        st = d.client("status", JAIL).stdout
        check(f"{kind}: status lists the adopted bans", all(a in st for a in targets), st[-300:])
        d.kill()
        d.delete_table()
        check(f"{kind}: restart on a flushed ruleset restores them from the new database", d.start()
              and set(targets) <= d.kernel_set())
        d.stop()


def v6(i):
    """The i-th address of 2001:db8:0:7e57::/64 (documentation range), as nft prints it."""
    return str(ipaddress.IPv6Address((0x20010DB8 << 96) | (0x7E57 << 64) | i))


def fill_store(d, n):
    """n active bans of JAIL (IPv6) written into the daemon's database as a daemon that logged them leaves it."""
    now = time.time()
    c = sqlite3.connect(d.db)
    c.execute("BEGIN")
    c.executemany(
        "INSERT INTO bans (jail, address, time_of_ban, ban_time, ban_count, failures, matches, active) "
        "VALUES (?, ?, ?, 86400, 1, 3, '[]', 1)", ((JAIL, v6(i), now - 60) for i in range(n)))
    c.execute("UPDATE ban_log SET logged_upto = (SELECT MAX(id) FROM bans)")
    c.commit()
    c.close()
    return {v6(i) for i in range(n)}


CRASH = re.compile(r"fatal error|crash|panic|Illegal instruction|Segmentation fault|Trace/breakpoint|"
                   r"ended unexpectedly|Assertion failed", re.IGNORECASE)


def crash_lines(d):
    try:
        with open(f"{d.tmp}/stdout", errors="replace") as f:
            out = f.read()
    except FileNotFoundError:
        out = ""
    return [l for l in (d.log_text() + out).splitlines() if CRASH.search(l)]


def same_everywhere(d, expected, name, jail=JAIL):
    """The kernel sets, the store's active rows (each once) and `status` hold exactly `expected`; nothing crashed."""
    kernel = d.kernel_all(jail)
    rows = d.active_rows(jail)
    listed = d.status_list(jail)
    check(f"{name}: the kernel holds exactly the {len(expected):,} bans", kernel == expected,
          f"{len(kernel):,} in the kernel; missing {sorted(expected - kernel)[:3]}, extra {sorted(kernel - expected)[:3]}")
    check(f"{name}: the store holds each of them once", len(rows) == len(expected) and set(rows) == expected,
          f"{len(rows):,} rows, {len(set(rows)):,} distinct; missing {sorted(expected - set(rows))[:3]}, "
          f"extra {sorted(set(rows) - expected)[:3]}")
    check(f"{name}: status lists exactly them", listed is not None and len(listed) == len(expected)
          and set(listed) == expected, f"{None if listed is None else len(listed)} listed")
    lines = crash_lines(d)
    check(f"{name}: no crash or fatal line", not lines, f"{lines[:3]}")


def wait_started(d, before, timeout=30):
    """Until this start's `Starting Portcullis` line (its signal handling is in place from then on)."""
    return wait_until(lambda: "Starting Portcullis" in d.log_text()[before:], timeout, 0.005)


def restore_attacks(exe, tmp, rng, n):
    print(f"--- the start-up restore of {n:,} bans under signals, commands, kills and reloads")
    base = f"{tmp}/restore"
    os.makedirs(base)
    d = Daemon(exe, base, base)
    d.write_jails([JAIL])
    check("restore: daemon starts (schema)", d.start())
    d.stop()
    stored = fill_store(d, n)

    # 1. SIGHUP during the restore (the reload it asks for runs once the start is over), and failures of new
    # addresses appended meanwhile (read from the stored position afterwards, every one banned).
    d.delete_table()
    before = len(d.log_text())
    t0 = time.monotonic()
    d.start_async()
    wait_started(d, before)
    time.sleep(0.2)
    d.proc.send_signal(signal.SIGUSR1)  # reopen the log file: also deadly before it was trapped
    d.proc.send_signal(signal.SIGHUP)
    newcomers = addresses("198.18.200.0", 60)
    append(d.log, failure_lines(newcomers, MAXRETRY, rng))
    ready = d.wait_ready(300)
    check("SIGUSR1 and SIGHUP during the restore: the daemon lives on and serves", ready,
          f"exit status {d.proc.poll()} (-1: ended by SIGHUP, -10: by SIGUSR1)")
    if not ready:  # the rest still runs, on a start without the signal
        d.kill()
        t0 = time.monotonic()
        d.start_async()
        d.wait_ready(300)
    took = time.monotonic() - t0
    print(f"     start with {n:,} bans: spawn -> ping {took:.1f} s")
    check("SIGHUP during the restore: it reloads once the start is over",
          wait_until(lambda: "Reloading configuration" in d.log_text()[before:], 30))
    check("failures appended during the restore are all banned",
          wait_until(lambda: set(newcomers) <= d.kernel_set() and set(newcomers) <= d.active_bans(), 60, 0.2),
          f"{len(set(newcomers) & d.kernel_set())}/{len(newcomers)}")
    expected = stored | set(newcomers)
    same_everywhere(d, expected, "SIGHUP and failures during the restore")
    rc = d.stop(120)
    check("stop right after: exit 0, socket removed", rc == 0 and not os.path.exists(d.sock), f"exit {rc}")

    # 2. SIGTERM while the restore runs: a clean exit (0, socket and table gone), the store untouched.
    d.delete_table()
    before = len(d.log_text())
    d.start_async()
    wait_started(d, before)
    time.sleep(took * 0.4)
    d.proc.send_signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(120)
    except subprocess.TimeoutExpired:
        rc = "still running after 120 s"
        d.kill()
    gone = sh("nft", "list", "table", "inet", "portcullis", ns=NS, check_rc=False).returncode != 0
    check("SIGTERM during the restore: exit 0, socket and table removed", rc == 0 and gone
          and not os.path.exists(d.sock), f"exit {rc}, table gone {gone}, socket {os.path.exists(d.sock)}")
    check("SIGTERM during the restore: the store keeps every ban", d.active_rows() and
          sorted(d.active_rows()) == sorted(expected))

    # 3. SIGKILL at several points of the restore; each time the next start finds a flushed ruleset.
    for k, fraction in enumerate((0.1, 0.5, 0.8)):
        d.delete_table()
        before = len(d.log_text())
        d.start_async()
        wait_started(d, before)
        time.sleep(took * fraction)
        d.kill()
    d.delete_table()
    check("restart after 3 SIGKILLs during the restore", d.start_async() or d.wait_ready(300))
    same_everywhere(d, expected, "after SIGKILLs during the restore")
    d.stop(120)

    # 4. Another process flushes the ruleset while the restore runs (nftables.service at boot, say): the table
    # comes back with every ban once the restore is over.
    d.delete_table()
    before = len(d.log_text())
    d.start_async()
    wait_started(d, before)
    for _ in range(4):  # at about 20, 40, 60 and 80 % of the restore
        time.sleep(took * 0.2)
        sh("nft", "flush", "ruleset", ns=NS)
    check("ruleset flushed during the restore: the daemon serves", d.wait_ready(300))
    check("ruleset flushed during the restore: every ban is back in the kernel within 10 s",
          wait_until(lambda: d.kernel_all() == expected, 10, 0.5), f"{len(d.kernel_all()):,}")
    same_everywhere(d, expected, "ruleset flushed during the restore")

    # 5. A reload that restores the jail's bans while the socket serves: `status`, `unbanip`, `banip` meanwhile;
    # then a SIGHUP renaming the jail while a reload --restart restores it on a flushed ruleset.
    d.write_jails(["other"])
    check("reload removing the jail", d.client("reload").returncode == 0)
    check("its sets are gone, its bans stay in the store", not d.kernel_all() and d.active_bans() == expected)
    d.write_jails(["other", JAIL])
    before = len(d.log_text())
    replies = {}
    reloading = threading.Thread(target=lambda: replies.setdefault("reload", d.client("reload")))
    reloading.start()
    wait_until(lambda: "Reloading configuration" in d.log_text()[before:], 30, 0.005)
    time.sleep(0.1)
    lifted, added = v6(7), "203.0.113.77"
    st = d.client("status", JAIL)
    unban = d.client("set", JAIL, "unbanip", lifted)
    ban = d.client("set", JAIL, "banip", added)
    reloading.join()
    check("reload re-adding the jail answers OK", replies["reload"].returncode == 0, replies["reload"].stderr)
    check("status, unbanip and banip during its restore answer", st.returncode == 0 and unban.returncode == 0
          and ban.returncode == 0, f"{st.stderr} {unban.stdout}{unban.stderr} {ban.stdout}{ban.stderr}")
    expected = (expected - {lifted}) | {added}
    wait_until(lambda: lifted not in d.active_bans() and added in d.active_bans(), 10)
    same_everywhere(d, expected, "reload restoring the jail, with unbanip and banip meanwhile")
    before = len(d.log_text())
    d.write_jails(["other", JAIL])
    d.delete_table()  # and a flushed ruleset: the reload puts the table back with every ban
    reloading = threading.Thread(target=lambda: replies.__setitem__("reload", d.client("reload", "--restart", JAIL)))
    reloading.start()
    wait_until(lambda: "Reloading configuration" in d.log_text()[before:], 30, 0.005)
    time.sleep(0.1)
    d.write_jails(["other", "renamed"])
    d.proc.send_signal(signal.SIGHUP)
    reloading.join()
    # The reload is over when the sources follow the new jail (status shows the new jails a little before).
    renamed = wait_until(lambda: "renamed.log" in d.log_text()[before:], 120, 0.1) and \
        d.status_list("renamed") is not None and d.status_list(JAIL) is None
    check("SIGHUP renaming the jail during a restore: the old jail goes, the new one runs", renamed,
          d.client("status").stdout)
    check("the renamed-away jail's sets are gone, its bans stay in the store",
          not d.kernel_all() and d.active_bans() == expected, f"{len(d.kernel_all())} left in the kernel")

    # 6. `stop` while a reload restores the jail (brought back): a clean exit; the next start restores every ban.
    d.write_jails(["other", JAIL])
    before = len(d.log_text())
    reloading = threading.Thread(target=lambda: replies.__setitem__("reload", d.client("reload")))
    reloading.start()
    wait_until(lambda: "Reloading configuration" in d.log_text()[before:], 30, 0.005)
    time.sleep(0.1)
    stop = d.client("stop")
    reloading.join()
    try:
        rc = d.proc.wait(120)
    except subprocess.TimeoutExpired:
        rc = "still running after 120 s"
        d.kill()
    check("stop during a reload's restore: exit 0, socket removed", rc == 0 and not os.path.exists(d.sock),
          f"exit {rc}; stop replied {stop.returncode} {stop.stdout.strip()}{stop.stderr.strip()}")
    d.delete_table()
    check("start after it", d.start_async() or d.wait_ready(300))
    same_everywhere(d, expected, "start after a stop during a reload's restore")
    rc = d.stop(120)
    check("stop: exit 0, socket removed", rc == 0 and not os.path.exists(d.sock), f"exit {rc}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--portcullis", default=os.path.join(ROOT, ".build/debug/portcullis"))
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--only", choices=["kill", "store", "damaged", "journal", "restore"])
    p.add_argument("--restore-bans", type=int, default=30_000, help="bans in the store for the restore attacks")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("durability_e2e.py: run as root")
    exe = os.path.abspath(args.portcullis)
    print(f"seed {args.seed}")
    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="pcl-dur-")
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "set", "lo", "up", ns=NS)
        if args.only in (None, "kill"):
            sigkill_invariant(exe, tmp, rng)
        if args.only in (None, "store"):
            store_failures(exe, tmp, rng)
        if args.only in (None, "damaged"):
            damaged_database(exe, tmp, rng)
        if args.only in (None, "journal"):
            journal_sigkill_invariant(exe, tmp, rng)
        if args.only in (None, "restore"):
            started = time.monotonic()
            restore_attacks(exe, tmp, rng, args.restore_bans)
            print(f"     restore attacks took {time.monotonic() - started:.0f} s")
    except Exception as e:  # report, never hide
        check("unexpected error", False, repr(e))
    finally:
        for d in DAEMONS:
            d.kill()  # only the processes this script started, by their Popen handle
        sh("ip", "netns", "del", NS, check_rc=False)
        if os.environ.get("E2E_KEEP"):
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"durability: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
