#!/usr/bin/env python3
"""Writes a realistic Debian 12 /var/log/auth.log (rsyslog, RFC 3339 high-precision timestamps).

About a quarter of the lines are sshd failures from many IPv4 and IPv6 addresses (Failed password,
Invalid user, Connection closed by authenticating user ... [preauth], maximum authentication attempts
exceeded, PAM authentication failure); the rest is the noise a real server logs: accepted logins,
pam_unix sessions, CRON, Received disconnect / Disconnected from user, sudo, systemd-logind.

Usage: gen-authlog.py LINES OUT [SEED]. Deterministic for a given seed.
"""
import datetime
import random
import sys


def main():
    total = int(sys.argv[1])
    out_path = sys.argv[2]
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 20261130)

    # Attackers: many addresses, a handful of them very busy (as in real scans).
    # Documentation and benchmarking ranges only (198.18.0.0/15, RFC 2544; 203.0.113.0/24, RFC 5737).
    v4 = ["198.%d.%d.%d" % (rng.choice([18, 19]), rng.randrange(256), rng.randrange(1, 255)) for _ in range(5900)]
    v4 += ["203.0.113.%d" % rng.randrange(1, 255) for _ in range(100)]
    v6 = ["2001:db8:%x:%x::%x" % (rng.randrange(0x10000), rng.randrange(0x10000), rng.randrange(1, 0x10000))
          for _ in range(1500)]
    attackers = v4 + v6
    busy = attackers[:40]
    users_bad = ["root", "admin", "test", "user", "ubuntu", "oracle", "postgres", "git", "ftpuser", "guest",
                 "pi", "support", "deploy", "minecraft", "hadoop", "ubnt", "steam", "jenkins", "sa", "odoo"]
    staff = [("deploy", 1000), ("alice", 1001), ("bob", 1002), ("backup", 1003)]
    staff_hosts = ["198.51.100.20", "198.51.100.21", "2001:db8:100::25", "192.0.2.25"]
    commands = ["/usr/bin/systemctl reload nginx", "/usr/bin/apt-get update", "/usr/bin/journalctl -u ssh -n 50",
                "/usr/sbin/nft list ruleset", "/usr/bin/tail -n 100 /var/log/syslog"]

    t = datetime.datetime(2026, 11, 1, 0, 0, 0, tzinfo=datetime.timezone.utc)
    host = "web01"
    pid = [3000]
    session = [100]
    lines = []

    def stamp():
        return t.isoformat(timespec="microseconds")

    def emit(prog, msg, with_pid=True):
        if with_pid:
            p = 601 if prog == "systemd-logind" else pid[0]
            lines.append("%s %s %s[%d]: %s" % (stamp(), host, prog, p, msg))
        else:
            lines.append("%s %s %s: %s" % (stamp(), host, prog, msg))

    def tick(lo=0.001, hi=2.0):
        nonlocal t
        t += datetime.timedelta(seconds=rng.uniform(lo, hi))

    def new_pid():
        pid[0] += rng.randrange(1, 40)
        if pid[0] > 4000000:
            pid[0] = 3000

    def attack():
        ip = rng.choice(busy) if rng.random() < 0.3 else rng.choice(attackers)
        port = rng.randrange(1024, 65535)
        user = rng.choice(users_bad)
        new_pid()
        kind = rng.random()
        if kind < 0.35:
            emit("sshd", "Invalid user %s from %s port %d" % (user, ip, port))
            tick()
            emit("sshd", "pam_unix(sshd:auth): check pass; user unknown")
            emit("sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s" % ip)
            tick()
            emit("sshd", "Failed password for invalid user %s from %s port %d ssh2" % (user, ip, port))
            tick()
            if rng.random() < 0.5:
                emit("sshd", "Received disconnect from %s port %d:11: Bye Bye [preauth]" % (ip, port))
                emit("sshd", "Disconnected from invalid user %s %s port %d [preauth]" % (user, ip, port))
            else:
                emit("sshd", "Connection closed by invalid user %s %s port %d [preauth]" % (user, ip, port))
        elif kind < 0.75:
            n = rng.randrange(1, 4)
            for _ in range(n):
                emit("sshd", "Failed password for root from %s port %d ssh2" % (ip, port))
                tick()
            emit("sshd", "Connection closed by authenticating user root %s port %d [preauth]" % (ip, port))
        elif kind < 0.9:
            for _ in range(6):
                emit("sshd", "Failed password for %s from %s port %d ssh2" % (user, ip, port))
                tick(0.5, 3)
            emit("sshd", "error: maximum authentication attempts exceeded for %s from %s port %d ssh2 [preauth]"
                 % (user, ip, port))
            emit("sshd", "Disconnecting authenticating user %s %s port %d: Too many authentication failures [preauth]"
                 % (user, ip, port))
        else:
            emit("sshd", "Connection closed by %s port %d [preauth]" % (ip, port))

    def login():
        user, uid = rng.choice(staff)
        ip = rng.choice(staff_hosts)
        port = rng.randrange(1024, 65535)
        new_pid()
        sid = session[0] = session[0] + 1
        method = "publickey" if rng.random() < 0.8 else "password"
        extra = ": ED25519 SHA256:3mQm9h6dEN0r0N0Bq1mYhV0i3cOqg3bYkP8oL2xw1sM" if method == "publickey" else ""
        emit("sshd", "Accepted %s for %s from %s port %d ssh2%s" % (method, user, ip, port, extra))
        emit("sshd", "pam_unix(sshd:session): session opened for user %s(uid=%d) by (uid=0)" % (user, uid))
        emit("systemd-logind", "New session %d of user %s." % (sid, user), True)
        tick(1, 30)
        if rng.random() < 0.5:
            emit("sudo", "  %s : TTY=pts/0 ; PWD=/home/%s ; USER=root ; COMMAND=%s" % (user, user, rng.choice(commands)),
                 False)
            emit("sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by %s(uid=%d)" % (user, uid), False)
            tick(0.01, 2)
            emit("sudo", "pam_unix(sudo:session): session closed for user root", False)
        tick(1, 60)
        emit("sshd", "Received disconnect from %s port %d:11: disconnected by user" % (ip, port))
        emit("sshd", "Disconnected from user %s %s port %d" % (user, ip, port))
        emit("sshd", "pam_unix(sshd:session): session closed for user %s" % user)
        emit("systemd-logind", "Session %d logged out. Waiting for processes to exit." % sid)
        emit("systemd-logind", "Removed session %d." % sid)

    def cron():
        new_pid()
        emit("CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
        emit("CRON", "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)")
        tick(0.05, 1)
        emit("CRON", "pam_unix(cron:session): session closed for user root")

    while len(lines) < total:
        r = rng.random()
        tick(0.01, 4)
        if r < 0.40:
            attack()
        elif r < 0.62:
            login()
        else:
            cron()

    with open(out_path, "w") as f:
        f.write("\n".join(lines[:total]))
        f.write("\n")


if __name__ == "__main__":
    main()
