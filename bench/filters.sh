#!/usr/bin/env bash
# Per-filter throughput table: every stock fail2ban filter that has a sample log in fail2ban's test files, run by
# `portcullis regex` and by `fail2ban-regex` in the same run on that sample repeated to LINES lines (the file is
# made at run time in a temporary directory, never kept). Prints, per filter, lines per CPU-second for both, the
# ratio, and whether the `Lines:` summaries agree; then the smallest ratio and the filters below MIN_RATIO.
# Usage: bench/filters.sh [LINES=100000] [FILTER…]      (default: every filter with a sample log)
# Env: PORTCULLIS (binary; default: release build), CONF (/etc/fail2ban), LOGS (fail2ban's sample logs),
#      MIN_RATIO (20), BASELINE (an earlier portcullis binary: its lines/s are printed too, and whether the
#      current one is slower), REPEAT (3: portcullis and the baseline run that many times, the least CPU time
#      counts — a run of a tenth of a second is noisy on a busy machine). fail2ban-regex takes a few seconds per filter at 100k lines: the whole table takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-100000}
shift || true
CONF=${CONF:-/etc/fail2ban}
LOGS=${LOGS:-/usr/lib/python3/dist-packages/fail2ban/tests/files/logs}
MIN_RATIO=${MIN_RATIO:-20}
command -v fail2ban-regex >/dev/null || { echo "filters.sh: fail2ban-regex not installed (scripts/deps.sh)"; exit 2; }
if [[ -z "${PORTCULLIS:-}" ]]; then
    swift build -c release --product portcullis 2>&1 | tail -1
    PORTCULLIS=$(swift build -c release --show-bin-path)/portcullis
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

names=("$@")
if ((${#names[@]} == 0)); then
    for log in "$LOGS"/*; do
        name=$(basename "$log")
        [[ -f "$CONF/filter.d/$name.conf" ]] && names+=("$name")
    done
fi

calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
# CPU seconds (user + sys) of a command, its stdout to $1.
cpu() {
    local out=$1; shift
    local TIMEFORMAT='%U %S'
    { time "$@" >"$out" 2>/dev/null; } 2>&1 | awk '{ printf "%.3f\n", $1 + $2 }'
}
counts() { grep -E '^Lines: ' "$1" | sed -E 's/^Lines: //'; }
REPEAT=${REPEAT:-3}
# The least CPU time of REPEAT runs.
best() {
    local out=$1; shift
    local b="" t
    for ((k = 0; k < REPEAT; k++)); do
        t=$(cpu "$out" "$@") || true
        if [[ -z "$b" ]] || awk "BEGIN { exit !($t < $b) }"; then b=$t; fi
    done
    echo "$b"
}

echo "==> $LINES lines per filter; load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPU(s)"
BASELINE=${BASELINE:-}
printf '%-24s %14s %14s %8s %14s   %s\n' filter "portcullis l/s" "fail2ban l/s" ratio "baseline l/s" counts
worst=""; worst_ratio=1e18; below=(); differ=(); slower=()
for name in "${names[@]}"; do
    sample="$LOGS/$name"
    [[ -s "$sample" ]] || { printf '%-24s no sample log\n' "$name"; continue; }
    n=$(wc -l <"$sample")
    ((n > 0)) || continue
    log="$WORK/$name.log"
    awk -v r=$(((LINES + n - 1) / n)) '{ a[NR] = $0 } END { for (i = 0; i < r; i++) for (j = 1; j <= NR; j++) print a[j] }' \
        "$sample" >"$log"
    lines=$(wc -l <"$log")
    cat "$log" >/dev/null
    p_cpu=$(best "$WORK/p.out" "$PORTCULLIS" regex --conf "$CONF" "$log" "$name") || true
    f_cpu=$(cpu "$WORK/f.out" fail2ban-regex -c "$CONF" "$log" "$name") || true
    b_rate=-
    if [[ -n "$BASELINE" ]]; then
        b_cpu=$(best "$WORK/b.out" "$BASELINE" regex --conf "$CONF" "$log" "$name") || true
        b_rate=$(calc "$lines / ($b_cpu > 0.001 ? $b_cpu : 0.001)")
    fi
    p_counts=$(counts "$WORK/p.out" || true)
    f_counts=$(counts "$WORK/f.out" || true)
    if [[ -z "$p_counts" || -z "$f_counts" ]]; then
        printf '%-24s failed (portcullis: %s; fail2ban-regex: %s)\n' "$name" "${p_counts:-no summary}" "${f_counts:-no summary}"
        differ+=("$name"); continue
    fi
    # A run too short to time (0.000 s) counts as one millisecond.
    p_rate=$(calc "$lines / ($p_cpu > 0.001 ? $p_cpu : 0.001)")
    f_rate=$(calc "$lines / ($f_cpu > 0.001 ? $f_cpu : 0.001)")
    ratio=$(calc "$p_rate / $f_rate")
    agree=agree
    [[ "$p_counts" == "$f_counts" ]] || { agree="DIFFER ($p_counts vs $f_counts)"; differ+=("$name"); }
    if [[ "$b_rate" != - ]]; then
        # Slower than the baseline by more than the noise of one run (10 %).
        awk "BEGIN { exit !($p_rate < 0.9 * $b_rate) }" && slower+=("$name")
        b_rate=$(printf '%.0f' "$b_rate")
    fi
    printf '%-24s %14.0f %14.0f %7.1fx %14s   %s\n' "$name" "$p_rate" "$f_rate" "$ratio" "$b_rate" "$agree"
    if awk "BEGIN { exit !($ratio < $worst_ratio) }"; then worst_ratio=$ratio; worst=$name; fi
    awk "BEGIN { exit !($ratio < $MIN_RATIO) }" && below+=("$name")
done
printf 'smallest ratio   : %.1fx (%s)\n' "$worst_ratio" "$worst"
echo "below ${MIN_RATIO}x        : ${#below[@]}${below:+ (${below[*]})}"
echo "counts differ    : ${#differ[@]}${differ:+ (${differ[*]})}"
[[ -z "$BASELINE" ]] || echo "slower than base : ${#slower[@]}${slower:+ (${slower[*]})} (by more than 10 %, one run each)"
