#!/usr/bin/env bash
# LogSource benchmark: file tailing throughput and allocations per line, append→delivery latency (inotify and
# polling), journal read throughput. Usage: bench/logsource.sh [lines=2000000] [journal entries=50000]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d /tmp/pcl-bench-logsource.XXXXXX)
trap 'rm -rf "$out"' EXIT
swiftc -O -module-name LogSourceBench -I Sources/CSystemd \
    Sources/LogSource/*.swift bench/logsource/main.swift -o "$out/bench" 2>&1 | grep -v warning || true
clang -O2 -shared -fPIC bench/logsource/alloccount.c -o "$out/alloccount.so"
env LD_PRELOAD="$out/alloccount.so" "$out/bench" "$out" "${1:-2000000}" "${2:-50000}"
