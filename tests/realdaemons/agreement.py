#!/usr/bin/python3
"""How far OUR filters agree with fail2ban's own sample logs (read at run time from the installed fail2ban).

For every `# failJSON:` line of fail2ban's samples for sshd, postfix, dovecot and recidive, under each of fail2ban's
`# filterOptions` sets for it, our filter (config/filter.d) runs in the closest mode of ours, with fail2ban 1.0.2's
regex engine, over the file in order. A line agrees when our verdict is the same: no failure where fail2ban's
annotation says match false; one failure for the annotated host where it says match true.

Nothing of fail2ban's samples is stored: they are read from the installed package each time.

Usage: agreement.py CONFIG_DIR [--details FILE]
"""

import json
import os
import sys
import time
from collections import Counter, OrderedDict

os.environ.setdefault("TZ", "UTC")
time.tzset()

from fail2ban.client.fail2banregex import Fail2banRegex, get_opt_parser  # noqa: E402

F2B_LOGS = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs"

# fail2ban's option set (mode) → our mode(s); several means "agrees if any of ours agrees" and is reported as such.
MODE_MAP = {
    "sshd": {"": ["normal"], "normal": ["normal"], "ddos": ["ddos"], "extra": ["extra"],
             "aggressive": ["aggressive"]},
    "postfix": {"": ["normal"], "normal": ["normal"], "auth": ["auth"], "rbl": ["rbl"], "more": ["more"],
                "ddos": ["more"], "errors": ["more"], "aggressive": ["aggressive"]},
    # fail2ban's dovecot filter counts login-process and auth-process lines alike; ours counts one kind per mode.
    "dovecot": {"": ["normal", "verbose"], "normal": ["normal", "verbose"],
                "aggressive": ["aggressive", "verbose-aggressive"]},
    "recidive": {"": [""]},
}


def load(path):
    out, options, pending = [], [{}], None
    with open(path, encoding="utf-8", errors="replace") as f:
        for no, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.startswith("# filterOptions:"):
                opts = json.loads(line.split(":", 1)[1])
                options = opts if isinstance(opts, list) else [opts]
            elif line.startswith("# failJSON:"):
                try:
                    pending = json.loads(line.split(":", 1)[1])
                except ValueError:
                    pending = None
            elif line.startswith("#") or not line.strip():
                continue
            elif pending is not None:
                out.append((options, pending, line, no))
                pending = None
    return out


def engine(filter_path, mode):
    opts, _ = get_opt_parser().parse_args(["--out", "row"])
    fr = Fail2banRegex(opts)
    spec = filter_path + ('[mode="%s"]' % mode if mode else "")
    if not fr.readRegex(spec, "fail"):
        raise SystemExit("cannot read filter %s" % spec)
    return fr


def verdict(ann, ret):
    ret = ret or []
    if ann.get("match"):
        if len(ret) != 1:
            return "missed" if not ret else "counted %d times" % len(ret)
        host = ann.get("host")
        if host is not None and ret[0][1] != host:
            return "other host %s" % ret[0][1]
        return None
    return "matched (fail2ban: no match)" if ret else None


def main():
    conf = sys.argv[1]
    details = sys.argv[sys.argv.index("--details") + 1] if "--details" in sys.argv else None
    detail_lines = []
    print("%-9s %8s %8s %7s   %s" % ("sample", "checks", "agree", "share", "by fail2ban option set -> our mode"))
    grand = Counter()
    for name in ("sshd", "postfix", "dovecot", "recidive"):
        path = os.path.join(F2B_LOGS, name)
        if not os.path.exists(path):
            print("%-9s fail2ban's sample is not installed" % name)
            continue
        entries = load(path)
        filter_path = os.path.join(conf, "filter.d", name + ".conf")
        sets = OrderedDict()
        for options, _, _, _ in entries:
            for o in options:
                key = o.get("mode", "")
                if o.get("logtype") == "journal":
                    key = key + "@journal"
                sets.setdefault(key, None)
        totals, per_set = Counter(), OrderedDict()
        for key in sets:
            mode, _, logtype = key.partition("@")
            ours = MODE_MAP[name].get(mode, ["normal"])
            engines = {m: engine(filter_path, m) for m in ours}
            agree = checks = 0
            for options, ann, line, no in entries:
                if not any(o.get("mode", "") == mode and (o.get("logtype") == "journal") == bool(logtype)
                           for o in options):
                    continue
                results = {m: verdict(ann, engines[m].testRegex(line)[1]) for m in ours}
                checks += 1
                if any(v is None for v in results.values()):
                    agree += 1
                else:
                    why = "; ".join(sorted(set(results.values())))
                    detail_lines.append("%s:%d [%s -> %s] %s: %s\n    %s" % (
                        name, no, mode or "{}", "/".join(ours), why, ann.get("desc", ""), line))
            per_set["%s->%s" % (key or "{}", "/".join(m or "{}" for m in ours))] = (agree, checks)
            totals["agree"] += agree
            totals["checks"] += checks
        share = 100.0 * totals["agree"] / totals["checks"] if totals["checks"] else 0.0
        print("%-9s %8d %8d %6.1f%%   %s" % (name, totals["checks"], totals["agree"], share,
                                             ", ".join("%s %d/%d" % (k, a, c) for k, (a, c) in per_set.items())))
        grand.update(totals)
    if details:
        with open(details, "w") as f:
            f.write("\n".join(detail_lines) + "\n")
        print("disagreements: %d, listed in %s" % (len(detail_lines), details))
    else:
        print("\n".join(detail_lines))


if __name__ == "__main__":
    main()
