#!/usr/bin/python3
"""Many jails on one log file: the daemon catching up a generated auth.log from its beginning with 1 jail (sshd)
and with 20 jails on that same file (sshd and 19 other distinct stock fail2ban filters that Debian's jail.conf points
at auth.log, mail.log, daemon.log or syslog), Portcullis beside fail2ban-server in the same run.

Each server runs in a network namespace of its own (bench/daemon.py's Impl) on a throw-away copy of /etc/fail2ban
(the filters are read there at run time), with maxretry so high that nothing is banned: what is measured is reading
and filtering. Portcullis is started with `--read-existing` (it starts at a file's end otherwise); fail2ban reads
from now − findtime, and findtime covers the whole log. Measured per run, from spawn:
  - catch-up: until every jail has consumed the whole file — the file position in the server's database equals the
    file's size (fail2ban: one row per jail; Portcullis: one row per file, written after the batch's failures are
    counted), polled, no fixed sleeps;
  - CPU seconds of the server process at that moment (utime + stime, /proc/PID/stat);
  - Total failed per jail (`status JAIL`), which must agree between the two servers on the same file.
fail2ban reads the file once per jail and takes minutes on 500k lines × 20 jails, so it runs on the first
--f2b-lines lines (100,000 by default; said in the output); Portcullis runs on that file too (the counts are compared
there) and on the full file. Printed: the figures per run, the ratio 20 jails / 1 jail for both servers (issue 11's
target: within 1.5× for Portcullis on 500k lines), and Portcullis against fail2ban on the same file.

Only namespaces this script creates are touched; they are removed at the end. Run as root:
    bench/jails.py [--lines 500000] [--f2b-lines 100000] [--runs 2]
Env: PORTCULLIS (the binary; default .build/release/portcullis).
"""
import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

from daemon import ROOT, Impl, command, rss_kib, run

# sshd and 19 other distinct filters of fail2ban's jail.conf whose Debian log is a syslog file (auth.log, mail.log,
# daemon.log, syslog): the jails an admin enables beside sshd on a host whose services all log through rsyslog.
OTHERS = ["dropbear", "pam-generic", "webmin-auth", "froxlor-auth", "phpmyadmin-syslog", "drupal-auth", "gssftpd",
          "xinetd-fail", "nagios", "courier-smtp", "courier-auth", "sendmail-auth", "sendmail-reject", "perdition",
          "cyrus-imap", "uwimap-auth", "postfix", "dovecot", "proftpd"]

JAILS = """
[DEFAULT]
ignoreip =
ignoreself = false
bantime = 1h
findtime = 400d
maxretry = 5
logencoding = utf-8
"""

JAIL = """
[{name}]
enabled = true
action =
backend = {{backend}}
logpath = {{log}}
"""

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14–17.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def positions(tmp, name, log):
    """The stored positions of `log`: one per jail for fail2ban, one per file for Portcullis; [] until written."""
    if name == "fail2ban":
        db, query = f"{tmp}/db.sqlite3", "SELECT lastfilepos FROM logs WHERE path = ?"
    else:
        # dbfile, or portcullis.sqlite3 beside it when dbfile is an existing fail2ban database.
        db, query = f"{tmp}/portcullis.sqlite3", "SELECT position FROM log_positions WHERE path = ?"
        if not os.path.exists(db):
            db = f"{tmp}/db.sqlite3"
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            return [r[0] for r in con.execute(query, (log,))]
        finally:
            con.close()
    except sqlite3.Error:
        return []


def one(name, jails, log, timeout):
    """One server with `jails` on `log`: catch-up seconds, CPU seconds, RSS, Total failed per jail."""
    ns = f"pcl-bench-jails-{name[:4]}-{os.getpid()}"
    tmp = tempfile.mkdtemp(prefix=f"pcl-bench-jails-{name}-")
    text = JAILS + "".join(JAIL.format(name=j) for j in jails)
    impl = Impl(name, tmp, ns, jails=text, start_args=["--read-existing"], tree="/etc/fail2ban")
    size = os.path.getsize(log)
    want = len(jails) if name == "fail2ban" else 1
    run("ip", "netns", "add", ns)
    try:
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        impl.prepare(log=log)
        with open(log, "rb") as f:  # from the page cache for both
            while f.read(1 << 20):
                pass
        startup = impl.start()
        pid = impl.server_pid()
        while True:
            pos = positions(tmp, name, log)
            if len(pos) >= want and all(p >= size for p in pos):
                elapsed, cpu = time.monotonic() - impl.t0, cpu_seconds(pid)
                break
            if time.monotonic() - impl.t0 > timeout:
                raise RuntimeError(f"{name}: {len(jails)} jails did not reach the end of {log} in {timeout} s "
                                   f"(positions {pos}, size {size})")
            if impl.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: " + open(f"{tmp}/stdout").read()[-2000:])
            time.sleep(0.01)
        totals = {}
        for j in jails:
            reply = command(impl.sock, ["status", j])
            # [['Filter', [['Currently failed', n], ['Total failed', n], …]], ['Actions', …]]
            totals[j] = dict(dict(reply[1])["Filter"])["Total failed"] if reply and reply[0] == 0 else None
        return {"startup_s": startup, "catchup_s": elapsed, "cpu_s": cpu, "rss_kib": rss_kib(pid), "totals": totals}
    finally:
        impl.stop()
        run("ip", "netns", "del", ns, check=False)
        subprocess.run(["rm", "-rf", tmp])


def best(name, jails, log, runs, timeout):
    """`runs` runs; the least CPU time's run is kept, every run's figures are printed."""
    results = []
    for k in range(runs):
        load = open("/proc/loadavg").read().split()[:3]
        r = one(name, jails, log, timeout)
        print(f"  {name:<10} {len(jails):>2} jails, {lines(log):>7} lines, run {k + 1}: catch-up {r['catchup_s']:7.2f} s,"
              f" CPU {r['cpu_s']:7.2f} s, start-up {r['startup_s'] * 1000:6.0f} ms, RSS {r['rss_kib'] / 1024:6.1f} MiB,"
              f" load {' '.join(load)}", flush=True)
        results.append(r)
    return min(results, key=lambda r: r["cpu_s"])


def lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=500000, help="Portcullis's file (bench/gen-authlog.py)")
    p.add_argument("--f2b-lines", type=int, default=100000, help="fail2ban's file: the first lines of the same log")
    p.add_argument("--runs", type=int, default=2, help="runs per case; the least CPU time counts")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--impl", choices=["portcullis", "both"], default="both")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/jails.py: run as root (it creates network namespaces)")
    missing = [j for j in ["sshd"] + OTHERS if not os.path.exists(f"/etc/fail2ban/filter.d/{j}.conf")]
    if missing:
        sys.exit(f"bench/jails.py: fail2ban's filters missing in /etc/fail2ban/filter.d: {missing} (scripts/deps.sh)")
    work = os.environ.get("TMPDIR", "/tmp") + "/portcullis-bench"
    os.makedirs(work, exist_ok=True)
    big = f"{work}/auth-{args.lines}.log"
    if not (os.path.exists(big) and os.path.getsize(big)):
        run(sys.executable, os.path.join(ROOT, "bench/gen-authlog.py"), str(args.lines), big)
    small = f"{work}/jails-auth-{args.f2b_lines}.log"
    with open(big, "rb") as src, open(small, "wb") as dst:
        for k, line in enumerate(src):
            if k >= args.f2b_lines:
                break
            dst.write(line)
    one_jail, twenty = ["sshd"], ["sshd"] + OTHERS
    print(f"==> {len(twenty)} jails: {', '.join(twenty)}")
    print(f"==> load average {' '.join(open('/proc/loadavg').read().split()[:3])} on {os.cpu_count()} CPU(s); "
          f"binary {os.environ.get('PORTCULLIS', os.path.join(ROOT, '.build/release/portcullis'))}")
    res = {}
    res["p", "big", 1] = best("portcullis", one_jail, big, args.runs, args.timeout)
    res["p", "big", 20] = best("portcullis", twenty, big, args.runs, args.timeout)
    res["p", "small", 1] = best("portcullis", one_jail, small, args.runs, args.timeout)
    res["p", "small", 20] = best("portcullis", twenty, small, args.runs, args.timeout)
    if args.impl == "both":
        print(f"==> fail2ban on the first {args.f2b_lines} lines (it reads the file once per jail: 20 × {args.lines} "
              "lines takes it minutes)")
        res["f", "small", 1] = best("fail2ban", one_jail, small, args.runs, args.timeout)
        res["f", "small", 20] = best("fail2ban", twenty, small, args.runs, args.timeout)

    print(f"\n{'server, file':<32}{'1 jail s':>10}{'20 jails s':>12}{'ratio':>8}{'1 jail CPU':>12}{'20 jails CPU':>14}"
          f"{'ratio':>8}")
    rows = [("portcullis", "p", "big", args.lines), ("portcullis", "p", "small", args.f2b_lines)]
    if args.impl == "both":
        rows.append(("fail2ban", "f", "small", args.f2b_lines))
    for label, impl, f, n in rows:
        a, b = res[impl, f, 1], res[impl, f, 20]
        print(f"{label + ', ' + str(n) + ' lines':<32}{a['catchup_s']:>10.2f}{b['catchup_s']:>12.2f}"
              f"{b['catchup_s'] / a['catchup_s']:>7.2f}x{a['cpu_s']:>12.2f}{b['cpu_s']:>14.2f}"
              f"{b['cpu_s'] / a['cpu_s']:>7.2f}x")
    a, b = res["p", "big", 1], res["p", "big", 20]
    ok = b["cpu_s"] / a["cpu_s"] <= 1.5
    print(f"target (issue 11): Portcullis 20 jails within 1.5x of 1 jail on {args.lines} lines: "
          f"{'met' if ok else 'NOT met'} ({b['cpu_s'] / a['cpu_s']:.2f}x CPU, {b['catchup_s'] / a['catchup_s']:.2f}x "
          "wall clock)")
    if args.impl == "both":
        for n in (1, 20):
            pc, fb = res["p", "small", n], res["f", "small", n]
            print(f"fail2ban / portcullis, {n:>2} jail(s), {args.f2b_lines} lines: "
                  f"{fb['catchup_s'] / pc['catchup_s']:.1f}x wall clock, {fb['cpu_s'] / pc['cpu_s']:.1f}x CPU")
        pt, ft = res["p", "small", 20]["totals"], res["f", "small", 20]["totals"]
        print(f"\n{'jail':<20}{'portcullis':>12}{'fail2ban':>12}   Total failed, {args.f2b_lines} lines")
        for j in twenty:
            print(f"{j:<20}{str(pt[j]):>12}{str(ft[j]):>12}{'' if pt[j] == ft[j] else '   DIFFER'}")
        agree = pt == ft and res["p", "small", 1]["totals"] == res["f", "small", 1]["totals"]
        print(f"counts: {'agree' if agree else 'DIFFER'}")
    print(f"portcullis Total failed on {args.lines} lines, 20 jails: "
          + ", ".join(f"{j} {v}" for j, v in res["p", "big", 20]["totals"].items() if v))


if __name__ == "__main__":
    main()
