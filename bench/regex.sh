#!/usr/bin/env bash
# Benchmark: `portcullis regex` against `fail2ban-regex` with fail2ban's sshd filter on a generated
# 500,000-line Debian auth.log (about a quarter sshd failures from many IPv4/IPv6 addresses).
# Prints lines/s for each, the ratio, and whether matched/ignored/missed counts agree.
# Usage: bench/regex.sh [LINES]   (target: >= 1,000,000 lines/s for portcullis)
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-500000}
WORK=${TMPDIR:-/tmp}/portcullis-bench
mkdir -p "$WORK"
LOG="$WORK/auth-$LINES.log"
[[ -s "$LOG" ]] || python3 bench/gen-authlog.py "$LINES" "$LOG"
echo "==> log: $LOG ($(wc -l <"$LOG") lines, $(du -h "$LOG" | cut -f1))"

echo "==> swift build -c release --product portcullis"
swift build -c release --product portcullis 2>&1 | tail -1
BIN=$(swift build -c release --show-bin-path)/portcullis

now() { date +%s.%N; }
counts() { grep -E '^Lines: ' "$1" | sed -E 's/^Lines: //'; }

# Warm the page cache so both read from memory.
cat "$LOG" >/dev/null

t0=$(now)
"$BIN" regex --conf /etc/fail2ban "$LOG" sshd >"$WORK/portcullis.out"
t1=$(now)
fail2ban-regex -c /etc/fail2ban "$LOG" sshd >"$WORK/fail2ban.out"
t2=$(now)

calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
p_secs=$(calc "$t1 - $t0")
f_secs=$(calc "$t2 - $t1")
p_rate=$(calc "$LINES / $p_secs")
f_rate=$(calc "$LINES / $f_secs")
p_counts=$(counts "$WORK/portcullis.out")
f_counts=$(counts "$WORK/fail2ban.out")

printf 'portcullis regex : %8.2f s  %12.0f lines/s   (%s)\n' "$p_secs" "$p_rate" "$p_counts"
printf 'fail2ban-regex   : %8.2f s  %12.0f lines/s   (%s)\n' "$f_secs" "$f_rate" "$f_counts"
printf 'ratio            : %8.1fx\n' "$(calc "$p_rate / $f_rate")"
if [[ "$p_counts" == "$f_counts" ]]; then
    echo "counts           : agree"
else
    echo "counts           : DIFFER"
fi
if awk "BEGIN { exit !($p_rate >= 1000000) }"; then
    echo "target           : met (>= 1,000,000 lines/s)"
else
    echo "target           : NOT met (< 1,000,000 lines/s)"
fi
