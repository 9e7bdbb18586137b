#!/usr/bin/python3
"""Turns logs captured from real daemons (capture.sh) into annotated sample logs (samples/logs/<daemon>).

Every kept line is the daemon's own output, unchanged; before it goes a `# failJSON:` annotation in fail2ban's
sample format. The annotation is NOT taken from running a filter: it comes from what we know about the capture.

  - match: our classification of the message (the RULES below: which messages are one failed attempt, in which
    filter modes). Messages no rule names are annotated {"match": false}.
  - host: the attacker's address that occurs in the line (the attacker namespace is the only client that fails;
    the legitimate client's addresses and addresses smuggled into user names are never the host).
  - user: the longest user name the clients really sent (users.txt, written by the capture) found in the line.
  - time: the line's own timestamp, in the convention of fail2ban's sample test (which `portcullis-samples` follows):
    local time in TZ=CET-01CEST-02 with "now" = 2005-08-14T10:00:00Z, so an RFC 3339 time is converted to that zone
    and a date without a year gets the latest year that does not put it after "now" (Nov 30 → 2004).

Lines of the same shape are kept once per timestamp format and address family, so the files stay readable.

Usage: annotate.py DAEMON CAPTURE_DIR... > samples/logs/DAEMON
"""

import calendar
import json
import os
import re
import sys
import time
from collections import OrderedDict

# fail2ban's sample-test convention (see portcullis-samples): this zone, and this "now".
os.environ["TZ"] = "CET-01CEST-02,M3.5.0,M10.5.0"
time.tzset()
TEST_NOW = 1124013600  # 2005-08-14T10:00:00Z

ATTACKERS = ["2001:db8:bad::7", "192.0.2.7"]
LEGIT = ["2001:db8:600d::8", "198.51.100.8"]
MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}

TRADITIONAL = re.compile(r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d+) (?P<t>\d\d:\d\d:\d\d) ")
F2BLOG = re.compile(r"^(?P<d>\d{4}-\d\d-\d\d) (?P<t>\d\d:\d\d:\d\d),\d+ ")
RFC3339 = re.compile(r"^(?P<d>\d{4}-\d\d-\d\d)T(?P<t>\d\d:\d\d:\d\d)(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) ")

SSHD_MODES = ["normal", "ddos", "extra", "aggressive"]
NORMAL = {"normal", "extra", "aggressive"}
DDOS = {"ddos", "aggressive"}

# (program regex, message regex, modes in which the line is one failure, description)
RULES = {
    "sshd": {
        "modes": SSHD_MODES,
        "program": r"sshd(?:-session)?",
        "rules": [
            (r"^Failed password for ", NORMAL, "failed password"),
            (r"^error: PAM: Authentication failure for ", NORMAL, "keyboard-interactive attempt refused by PAM"),
            (r"^error: maximum authentication attempts exceeded ", NORMAL, "the attempt beyond MaxAuthTries"),
            (r"^Failed publickey for ", {"extra", "aggressive"}, "public key refused (LogLevel VERBOSE)"),
            (r"^Connection (?:closed|reset) by [0-9a-f.:]+ port \d+(?: \[preauth\])?$", DDOS,
             "connection dropped before authentication"),
            (r"^banner exchange: ", DDOS, "not an SSH client"),
            (r"^Unable to negotiate with ", DDOS, "no common algorithm"),
            (r"^Failed keyboard-interactive/pam ", set(), "same attempt as its 'error: PAM:' line, counted there"),
            (r"^Invalid user ", set(), "connection names an unknown user; its attempts are counted"),
            (r"^User \S+ from \S+ not allowed because ", set(),
             "connection names a user sshd_config refuses; its attempts are counted"),
            (r"^Postponed ", set(), "keyboard-interactive in progress"),
            (r"^Disconnecting .*Too many authentication failures", set(),
             "same event as 'maximum authentication attempts exceeded', counted there"),
            (r"^Connection closed by (?:authenticating|invalid) user ", set(),
             "end of a connection whose attempts are counted on their own lines"),
            (r"^pam_unix\(sshd:auth\): authentication failure", set(),
             "PAM's line for an attempt sshd reports itself"),
            (r"^PAM \d+ more authentication failures", set(), "PAM's summary of attempts already counted"),
            (r"^Accepted ", set(), "successful login"),
        ],
    },
    "dovecot": {
        "modes": ["normal", "verbose", "aggressive", "verbose-aggressive"],
        # syslog/journal lines carry "dovecot: "; Dovecot's own log_path file has only the process name.
        # PAM's own lines come from the auth process's syslog ident "auth" (kept as negatives).
        "prefix": r"^(?:(?:\S+ )?dovecot: |\S+ (?=auth: pam_))?(?P<msg>[a-z][a-z0-9-]*(?:\([^)]*\))?(?:<[^>]*>)*: .*)$",
        "rules": [
            (r"^[a-z0-9]+-login: (?:Info: )?\S.*\(auth failed, \d+ attempts", {"normal", "aggressive"},
             "login process: a connection whose login attempts failed"),
            (r"^auth: pam_unix\(", set(), "PAM's own line for an attempt Dovecot reports itself"),
            (r"^auth(?:-worker\(\d+\))?: (?:Info: )?(?:conn unix:\S+ \([^()]*\): auth-worker<\d+>: )?"
             r"[a-z0-9-]+\(.*\): (?:Password mismatch|unknown user|"
             r"Username character disallowed|pam_authenticate\(\) failed)",
             {"verbose", "verbose-aggressive"}, "auth process (auth_verbose=yes): one failed attempt"),
            (r"^[a-z0-9]+-login: (?:Info: )?\S.*\((?:no auth attempts|client didn't finish SASL auth)",
             {"aggressive", "verbose-aggressive"}, "login process: a connection that never completed an attempt"),
            (r"^[a-z0-9]+-login: (?:Info: )?Login failed: Plaintext authentication disabled",
             {"verbose", "verbose-aggressive"},
             "login process: a plain-text login refused before reaching the auth process", False),
            (r"^[a-z0-9]+-login: (?:Info: )?Login: ", set(), "successful login"),
        ],
    },
    "recidive": {
        "source": "ban log lines printed by fail2ban-server 1.0.2 (the format's reference) and then by Portcullis "
                  "itself, each run on our config/ over our captured logs by recidive-capture.sh",
        # One mode: the filter has none. An empty option set is fail2ban's default.
        "modes": [""],
        "prefix": r"^(?P<msg>fail2ban\.\w+\s+\[\d+\]: .*)$",
        "rules": [
            (r"NOTICE\s+\[(?!recidive\])[^\]]+\] Ban ", {""}, "a ban by another jail", False),
            (r"\[recidive\] Ban ", set(), "the recidive jail's own ban must not feed it", False),
            (r"Restore Ban ", set(), "a ban restored from the database at start-up is not a new offence", False),
        ],
    },
    "postfix": {
        "modes": ["auth", "normal", "rbl", "more", "aggressive"],
        "program": r"postfix(?:-\w+)?/(?:[\w-]+/)?[\w-]+",
        "rules": [
            (r"^warning: \S+: SASL \S+ authentication failed", {"auth", "aggressive"}, "failed SMTP AUTH attempt"),
            (r"^NOQUEUE: reject: .* blocked using ", {"rbl", "aggressive"}, "client listed by a DNS blocklist",
             False),
            (r"^NOQUEUE: reject: ", {"normal", "more", "aggressive"}, "rejected mail transaction", False),
            (r"^(?:warning: non-SMTP command from|improper command pipelining after)", {"more", "aggressive"},
             "protocol abuse", False),
            (r"^lost connection after AUTH", set(), "end of a connection whose AUTH attempts are counted"),
        ],
    },
}


def parse_time(line, year):
    """Returns (time in the sample convention, format name, rest of the line) or None."""
    m = F2BLOG.match(line)
    if m:
        return "%sT%s" % (m["d"], m["t"]), "fail2ban log", line[m.end():]
    m = RFC3339.match(line)
    if m:
        zone = m.group(0).split(m["t"], 1)[1].strip()
        zone = re.sub(r"^\.\d+", "", zone)
        offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
        epoch = calendar.timegm(time.strptime("%sT%s" % (m["d"], m["t"]), "%Y-%m-%dT%H:%M:%S")) - offset
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch)), "rfc3339", line[m.end():]
    m = TRADITIONAL.match(line)
    if m:
        now = time.localtime(TEST_NOW)
        year = now.tm_year
        if (MONTHS[m["mon"]], int(m["day"])) > (now.tm_mon, now.tm_mday + 1):
            year -= 1
        return "%04d-%02d-%02dT%s" % (year, MONTHS[m["mon"]], int(m["day"]), m["t"]), "traditional", line[m.end():]
    return None


def shape(message):
    s = message
    for a in ATTACKERS + LEGIT:
        s = s.replace(a, "ADDR")
    s = re.sub(r"SHA256:\S+", "FP", s)
    s = re.sub(r"<[A-Za-z0-9+/]{8,}>", "<SESSION>", s)
    s = re.sub(r"\d+", "0", s)
    return s


def main():
    daemon, dirs = sys.argv[1], sys.argv[2:]
    spec = RULES[daemon]
    modes = spec["modes"]
    prog = re.compile(spec["prefix"] if "prefix" in spec else
                      r"^(?:\S+ )?(?:%s)(?:\[\d+\])?: (?P<msg>.*)$" % spec["program"])
    rules = [(re.compile(r[0]), set(r[1]), r[2], r[3] if len(r) > 3 else True) for r in spec["rules"]]
    users = set()
    entries = []  # (vector, line, annotation)
    seen = set()
    for d in dirs:
        try:
            with open(os.path.join(d, "users.txt")) as f:
                users |= {u.rstrip("\n") for u in f if u.strip()}
        except FileNotFoundError:
            pass
    for d in dirs:
        for name in sorted(os.listdir(d)):
            if not name.endswith(".log"):
                continue
            path = os.path.join(d, name)
            year = int(__import__("time").strftime("%Y", __import__("time").gmtime(os.path.getmtime(path))))
            with open(path, encoding="utf-8", errors="replace") as f:
                for raw in f:
                    line = raw.rstrip("\n")
                    parsed = parse_time(line, year)
                    if not parsed:
                        continue
                    when, fmt, rest = parsed
                    m = prog.match(rest)
                    if not m:
                        continue
                    msg = m["msg"]
                    vector, desc, with_user = frozenset(), "not a failed attempt", False
                    for rx, ms, ds, wu in rules:
                        if rx.search(msg):
                            vector, desc, with_user = frozenset(ms), ds, wu
                            break
                    hosts = [a for a in ATTACKERS if a in line]
                    # 192.0.2.7 is not a substring of the IPv6 address and vice versa; take the first found.
                    host = hosts[0] if hosts else None
                    injected = any(a in msg for a in LEGIT) and host is not None
                    family = "v6" if host and ":" in host else ("v4" if host else "none")
                    key = (daemon, desc, shape(msg), fmt, family, injected)
                    if key in seen:
                        continue
                    seen.add(key)
                    ann = OrderedDict()
                    if vector:
                        if host is None:
                            sys.exit("no attacker address in a failure line: %s" % line)
                        ann["time"] = when
                        ann["match"] = True
                        ann["host"] = host
                        found = sorted((u for u in users if u in msg), key=len, reverse=True)
                        if found and with_user:
                            ann["user"] = found[0]
                    else:
                        ann["match"] = False
                    if injected:
                        desc += "; the user name carries another address, which must not be taken"
                    ann["desc"] = "%s (%s)" % (desc, fmt)
                    entries.append((vector, line, ann))
    out = []
    out.append("# %s — %s (see tests/realdaemons/), annotated by" % (daemon, spec.get(
        "source", "lines printed by the real daemon")))
    out.append("# tests/realdaemons/annotate.py. Addresses: attacker 192.0.2.7 / 2001:db8:bad::7, legitimate client")
    out.append("# 198.51.100.8 / 2001:db8:600d::8, server 203.0.113.25 / 2001:db8:25::25. The daemons logged in UTC;")
    out.append("# Annotation times follow fail2ban's sample convention (TZ CET/CEST, now 2005-08-14: yearless Nov 30 is 2004).")
    groups = OrderedDict()
    for vector, line, ann in entries:
        groups.setdefault(vector, []).append((line, ann))
    for vector, items in sorted(groups.items(), key=lambda kv: (-len(kv[0]), sorted(kv[0]))):
        true_modes = [m for m in modes if m in vector]
        false_modes = [m for m in modes if m not in vector]
        for wanted, ms in ((True, true_modes), (False, false_modes)):
            if not ms:
                continue
            out.append("")
            if ms != [""]:
                out.append("# filterOptions: %s" % json.dumps([{"mode": m} for m in ms]))
                out.append("")
            for line, ann in items:
                a = OrderedDict(ann)
                if not wanted:
                    a = OrderedDict([("match", False), ("desc", ann["desc"])])
                out.append("# failJSON: %s" % json.dumps(a))
                out.append(line)
    print("\n".join(out))


if __name__ == "__main__":
    main()
