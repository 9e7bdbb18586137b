#!/usr/bin/env bash
# Date detection benchmark: Portcullis DateDetector (release build) and, for comparison, fail2ban 1.0.2's own
# DateDetector on the same kind of line (syslog, default templates).
# Usage: bench/dates.sh [LINES=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-1000000}
swift build -c release --product portcullis-date-bench >/dev/null
BIN="$(swift build -c release --show-bin-path)/portcullis-date-bench"
echo "== Portcullis DateDetector ($LINES lines per case)"
"$BIN" "$LINES"
if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import fail2ban' 2>/dev/null; then
    echo "== fail2ban 1.0.2 DateDetector (matchTime + getTime), syslog lines, 100000 lines"
    TZ=CET-01CEST-02,M3.5.0,M10.5.0 /usr/bin/python3 - <<'PY'
import time
from fail2ban.server.datedetector import DateDetector
from fail2ban.server.mytime import MyTime
MyTime.setTime(1124013600)
d = DateDetector(); d.addDefaultTemplate()
lines = ["Aug 14 %02d:%02d:%02d srv sshd[%d]: Failed password for root from 192.0.2.%d port 22 ssh2"
         % (i // 3600 % 12, i // 60 % 60, i % 60, 1000 + i % 5000, i % 250) for i in range(100000)]
t = time.perf_counter()
for l in lines:
    m = d.matchTime(l)
    d.getTime(l, m)
e = time.perf_counter() - t
print("syslog (defaults): %d lines/s, %d ns/line" % (len(lines) / e, e / len(lines) * 1e9))
PY
fi
# Allocations per line: count malloc calls with and without the matching passes (needs perf with uprobes; root).
if command -v perf >/dev/null && [[ $(id -u) == 0 ]]; then
    LIBC=$(ldd "$BIN" | awk '/libc.so.6/{print $3}')
    if perf probe -q -x "$LIBC" malloc 2>/dev/null; then
        trap 'perf probe -q -d probe_libc:malloc 2>/dev/null || true' EXIT
        echo "== malloc calls per line while matching (100000 syslog lines, 5 passes)"
        count() { PCL_BENCH_PASSES=$1 perf stat -e probe_libc:malloc -x, "$BIN" 100000 "syslog (defaults)" 2>&1 | tail -1 | cut -d, -f1; }
        without=$(count 0); with=$(count 5)
        awk -v a="$without" -v b="$with" 'BEGIN { printf "mallocs: %d without matching, %d with; per line: %.6f\n", a, b, (b - a) / 500000 }'
    fi
fi
