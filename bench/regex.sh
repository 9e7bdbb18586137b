#!/usr/bin/env bash
# Benchmark: `portcullis regex` against `fail2ban-regex` with fail2ban's sshd filter on a generated
# 500,000-line Debian auth.log (about a quarter sshd failures from many IPv4/IPv6 addresses).
# Prints lines/s for each, the ratio, and whether matched/ignored/missed counts agree.
# Usage: bench/regex.sh [LINES]   (env PORTCULLIS: the binary, default a release build made here; targets, issue 11: >= 1,200,000 lines per CPU-second and >= 60x fail2ban-regex)
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-500000}
WORK=${TMPDIR:-/tmp}/portcullis-bench
mkdir -p "$WORK"
LOG="$WORK/auth-$LINES.log"
[[ -s "$LOG" ]] || python3 bench/gen-authlog.py "$LINES" "$LOG"
echo "==> log: $LOG ($(wc -l <"$LOG") lines, $(du -h "$LOG" | cut -f1))"

if [[ -n "${PORTCULLIS:-}" ]]; then
    BIN=$PORTCULLIS
else
    echo "==> swift build -c release --product portcullis"
    swift build -c release --product portcullis 2>&1 | tail -1
    BIN=$(swift build -c release --show-bin-path)/portcullis
fi
echo "==> binary: $BIN"

counts() { grep -E '^Lines: ' "$1" | sed -E 's/^Lines: //'; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
# Runs a command with stdout to $1, and prints "real user+sys" seconds (bash's time, no extra tools).
timed() {
    local out=$1; shift
    local TIMEFORMAT='%R %U %S'
    { time "$@" >"$out" 2>/dev/null; } 2>&1 | awk '{ printf "%s %.3f\n", $1, $2 + $3 }'
}

# Warm the page cache so both read from memory.
cat "$LOG" >/dev/null
echo "==> load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPU(s) (wall-clock figures suffer when it exceeds the CPUs)"

read -r p_real p_cpu < <(timed "$WORK/portcullis.out" "$BIN" regex --conf /etc/fail2ban "$LOG" sshd)
read -r f_real f_cpu < <(timed "$WORK/fail2ban.out" fail2ban-regex -c /etc/fail2ban "$LOG" sshd)

p_rate=$(calc "$LINES / $p_real"); p_cpu_rate=$(calc "$LINES / $p_cpu")
f_rate=$(calc "$LINES / $f_real"); f_cpu_rate=$(calc "$LINES / $f_cpu")
p_counts=$(counts "$WORK/portcullis.out")
f_counts=$(counts "$WORK/fail2ban.out")

printf '%-17s %8s %14s %9s %16s   %s\n' "" "wall s" "lines/s" "CPU s" "lines/CPU-s" "counts"
printf '%-17s %8.2f %14.0f %9.2f %16.0f   %s\n' "portcullis regex" "$p_real" "$p_rate" "$p_cpu" "$p_cpu_rate" "$p_counts"
printf '%-17s %8.2f %14.0f %9.2f %16.0f   %s\n' "fail2ban-regex" "$f_real" "$f_rate" "$f_cpu" "$f_cpu_rate" "$f_counts"
printf 'ratio            : %.1fx wall clock, %.1fx CPU time\n' "$(calc "$p_rate / $f_rate")" "$(calc "$p_cpu_rate / $f_cpu_rate")"
if [[ "$p_counts" == "$f_counts" ]]; then
    echo "counts           : agree"
else
    echo "counts           : DIFFER"
fi
if awk "BEGIN { exit !($p_cpu_rate >= 1200000) }"; then
    echo "target           : met (>= 1,200,000 lines/CPU-s)"
else
    echo "target           : NOT met (< 1,200,000 lines/CPU-s)"
fi
if awk "BEGIN { exit !($p_cpu_rate / $f_cpu_rate >= 60) }"; then
    echo "ratio target     : met (>= 60x fail2ban-regex, CPU time)"
else
    echo "ratio target     : NOT met (< 60x fail2ban-regex, CPU time)"
fi
