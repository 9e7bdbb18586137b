#!/usr/bin/python3
# Test oracle for DateDetector: runs the installed fail2ban 1.0.2's own date detection over lines and prints, per line,
# one JSON value: null (no date) or {"s": start byte, "e": end byte, "t": epoch seconds or null, "n": template name}.
# Usage: date_oracle.py NOW LINES_FILE [DATEPATTERN_FILE] [LOGTIMEZONE]
#   NOW: epoch seconds for fail2ban's MyTime; LINES_FILE: raw lines (split on \n, trailing \r kept);
#   DATEPATTERN_FILE: file holding a filter's `datepattern` value ("-" or absent = defaults).
# Only calls fail2ban's public classes; run with TZ set to the zone under test.
import json
import sys

from fail2ban.server.filter import Filter
from fail2ban.server.mytime import MyTime


def main():
    now = float(sys.argv[1])
    MyTime.setTime(now)
    flt = Filter(None)
    if len(sys.argv) > 3 and sys.argv[3] != "-":
        with open(sys.argv[3], encoding="utf-8") as f:
            flt.setDatePattern(f.read())
    if len(sys.argv) > 4 and sys.argv[4]:
        flt.setLogTimeZone(sys.argv[4])
    dd = flt.dateDetector
    if dd is None:
        print(json.dumps({"none": True}))
        return
    with open(sys.argv[2], "rb") as f:
        data = f.read()
    rows = data.split(b"\n")
    if rows and rows[-1] == b"":
        rows.pop()
    out = []
    for raw in rows:
        line = raw.decode("utf-8", "surrogateescape")
        match, template = dd.matchTime(line)
        if not match:
            out.append("null")
            continue
        start = len(line[: match.start(1)].encode("utf-8", "surrogateescape"))
        end = len(line[: match.end(1)].encode("utf-8", "surrogateescape"))
        try:
            got = dd.getTime(line, (match, template))
            t = got[0] if got else None
        except Exception as e:  # fail2ban raised (unknown zone name, missing day, ...): no usable time
            t = "error: %s" % e
        out.append(json.dumps({"s": start, "e": end, "t": t, "n": template.name}))
    print("\n".join(out))


main()
