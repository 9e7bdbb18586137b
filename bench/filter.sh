#!/usr/bin/env bash
# Filter engine throughput (release build): a fail2ban filter over a synthetic auth.log (¾ non-failures).
# Usage: bench/filter.sh [FILTER=sshd] [LINES=2000000]          e.g. bench/filter.sh 'sshd[mode=aggressive]'
# Prints lines/s (wall and CPU time), then, when valgrind is installed, heap allocations per missed line and per
# failure line (difference between a 1,000- and a 3,000-line run of the same kind of lines).
set -euo pipefail
cd "$(dirname "$0")/.."
FILTER=${1:-sshd}; LINES=${2:-2000000}
swift build -c release --product portcullis-filter-bench >/dev/null
BIN="$(swift build -c release --show-bin-path)/portcullis-filter-bench"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FILTER_BENCH_WRITE="$TMP/auth.log" "$BIN" --filter "$FILTER" --lines "$LINES"

if command -v valgrind >/dev/null; then
    allocs() { valgrind "$BIN" --filter "$FILTER" --file "$1" 2>&1 | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,; }
    for kind in missed failure; do
        if [[ $kind == missed ]]; then pattern='CRON|systemd|sudo|kernel'; else pattern='Failed password|Invalid user'; fi
        grep -m 1000 -E "$pattern" "$TMP/auth.log" > "$TMP/1k.log"
        grep -m 3000 -E "$pattern" "$TMP/auth.log" > "$TMP/3k.log"
        a=$(allocs "$TMP/1k.log"); b=$(allocs "$TMP/3k.log")
        awk -v a="$a" -v b="$b" -v k="$kind" 'BEGIN { printf "heap allocations per %s line: %.2f\n", k, (b - a) / 2000 }'
    done
fi
