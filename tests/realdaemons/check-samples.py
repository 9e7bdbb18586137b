#!/usr/bin/python3
"""Checks our annotated sample logs against our filters, using the installed fail2ban as the regex engine.

This is the stand-in for `portcullis-samples --conf config --logs samples/logs` until that harness exists; it runs
fail2ban (as a tool, on our files only) and applies the `# failJSON:` / `# filterOptions:` conventions:

  - `# filterOptions: [{...}, ...]` sets the filter options (e.g. {"mode": "ddos"}) for the lines after it; every
    annotated line is checked under each of them;
  - `# failJSON: {"match": true, "host": H, "time": T, "user": U}`: the next line must give exactly one failure,
    for address H (and user U, time T, when given);
  - `# failJSON: {"match": false}`: the next line must give no failure.

Usage: check-samples.py CONFIG_DIR SAMPLES_DIR [NAME...]   (NAME defaults to every file in SAMPLES_DIR)
Prints one line per problem and a summary "N passed, N failed"; exits 1 on any failure.
"""

import json
import os
import sys
import time

# fail2ban's sample-test convention, as portcullis-samples follows it: this zone and this "now".
os.environ["TZ"] = "CET-01CEST-02,M3.5.0,M10.5.0"
time.tzset()

from fail2ban.client.fail2banregex import Fail2banRegex, get_opt_parser  # noqa: E402
from fail2ban.server.mytime import MyTime  # noqa: E402

MyTime.setTime(1124013600)  # 2005-08-14T10:00:00Z


def load(path):
    """Returns [(options, annotation, line, lineno)]."""
    out, options, pending = [], [{}], None
    with open(path, encoding="utf-8") as f:
        for no, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.startswith("# filterOptions:"):
                opts = json.loads(line.split(":", 1)[1])
                options = opts if isinstance(opts, list) else [opts]
            elif line.startswith("# failJSON:"):
                pending = (json.loads(line.split(":", 1)[1]), no)
            elif line.startswith("#") or not line.strip():
                continue
            else:
                if pending is None:
                    raise SystemExit("%s:%d: log line without a failJSON annotation" % (path, no))
                out.append((options, pending[0], line, no))
                pending = None
    return out


def engine(filter_path, options):
    opts, _ = get_opt_parser().parse_args(["--out", "row"])
    fr = Fail2banRegex(opts)
    spec = filter_path
    if options:
        spec += "[" + ", ".join('%s="%s"' % (k, v) for k, v in options.items()) + "]"
    if not fr.readRegex(spec, "fail"):
        raise SystemExit("cannot read filter %s" % spec)
    return fr


def main():
    conf, samples = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or sorted(n for n in os.listdir(samples) if not n.startswith("."))
    passed = failed = 0
    for name in names:
        entries = load(os.path.join(samples, name))
        filter_path = os.path.join(conf, "filter.d", name + ".conf")
        variants = []
        for options, _, _, _ in entries:
            for o in options:
                if o not in variants:
                    variants.append(o)
        for variant in variants:
            fr = engine(filter_path, variant)
            for options, ann, line, no in entries:
                if variant not in options:
                    continue
                _, ret, _ = fr.testRegex(line)
                ret = ret or []
                problem = None
                if ann.get("match"):
                    if len(ret) != 1:
                        problem = "expected one failure, got %d" % len(ret)
                    else:
                        r = ret[0]
                        ip, when, data = r[1], r[2], r[3]
                        if ip != ann["host"]:
                            problem = "host %s, expected %s" % (ip, ann["host"])
                        elif "user" in ann and data.get("user") != ann["user"]:
                            problem = "user %r, expected %r" % (data.get("user"), ann["user"])
                        elif "time" in ann:
                            got = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(int(when)))
                            if got != ann["time"][:19]:
                                problem = "time %s, expected %s" % (got, ann["time"])
                elif ret:
                    problem = "expected no failure, got %s" % ", ".join(str(r[1]) for r in ret)
                if problem:
                    failed += 1
                    print("FAIL %s:%d %s: %s\n     %s" % (name, no, json.dumps(variant), problem, line))
                else:
                    passed += 1
        print("%s: %d annotated lines checked under %d option set(s)" % (name, len(entries), len(variants)))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
