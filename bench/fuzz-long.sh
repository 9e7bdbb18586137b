#!/usr/bin/env bash
# The long fuzz run: each libFuzzer target for EXECS executions (default 10^7), one after the other, on one core.
#
#   bench/fuzz-long.sh [EXECS] [TARGET...]     targets: ini date line tags pickle json address (default: all)
#
# Builds portcullis-fuzz like scripts/fuzz.sh (same build path .build-fuzz, same -sanitize=fuzzer,address) but with
# FUZZ_CONFIGURATION=release (-O, AddressSanitizer kept), then runs each target with libFuzzer's -runs=EXECS and
# fuzz.sh's limits (10 s per input, 2 GiB, inputs up to 4 KiB), under `nice` (libFuzzer runs one process, one
# thread: one core). FUZZ_LONG_MAX_SECONDS=N stops a target after N seconds when it has not reached EXECS by then
# (the count it did reach is what is printed); FUZZ_LONG_NICE sets the niceness (default 10).
# FUZZ_LONG_ASAN=0 builds without AddressSanitizer (`-sanitize=fuzzer` only, build path .build-fuzz-plain, corpora
# still under .build-fuzz): two to four times the executions per CPU second, for reaching 10^7 on a small machine.
# Swift's own checks (bounds, overflow, exclusivity) still trap; what is lost is ASan's view of unsafe-pointer
# reads and writes, which the ASan runs (scripts/fuzz.sh in the test command, and this script by default) keep.
# Corpora: fuzz/corpus/TARGET plus .build-fuzz/corpus/TARGET, where new inputs are kept; crashing inputs go to
# .build-fuzz/artifacts/TARGET/ (copy each into fuzz/corpus/TARGET/crash-NAME and add a regression test).
#
# Prints per target: execs, wall seconds, exec/s, CPU seconds (user + system) and exec per CPU second, coverage
# (libFuzzer's cov/ft/corp), crashes; then one line `fuzz-long: T targets, E execs, S s, C crashes`.
# Exits 1 when anything crashed or could not run.
# The figures of a run are recorded in bench/fuzz-long.md.
set -uo pipefail
cd "$(dirname "$0")/.."
execs_wanted="${1:-10000000}"
[[ $# -gt 0 ]] && shift
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(ini date line tags pickle json address)
max_seconds="${FUZZ_LONG_MAX_SECONDS:-0}"
niceness="${FUZZ_LONG_NICE:-10}"
configuration=release
build=.build-fuzz

flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING)
binary_build=$build
if [[ "${FUZZ_LONG_ASAN:-1}" == 0 ]]; then
    flags=(-Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING)
    binary_build=.build-fuzz-plain
fi
mkdir -p "$build"
if ! nice -n 10 swift build -c "$configuration" --build-path "$binary_build" --product portcullis-fuzz "${flags[@]}" \
    >"$build/long-build.log" 2>&1; then
    grep -E "error:" "$build/long-build.log" | head -20
    echo "fuzz-long: 0 targets, 0 execs, 0 s, 1 crashes"
    echo "fuzz-long.sh: the fuzz build failed (see $build/long-build.log)" >&2
    exit 1
fi
bin="$binary_build/$configuration/portcullis-fuzz"
echo "fuzz-long: $(date -u +%FT%TZ), ASan ${FUZZ_LONG_ASAN:-1}, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), " \
    "load $(cut -d' ' -f1-3 /proc/loadavg), $execs_wanted execs per target"

total_execs=0
total_crashes=0
total_seconds=0
ran=0
for target in "${targets[@]}"; do
    corpus="$build/corpus/$target"
    artifacts="$build/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    before=$(find "$artifacts" -type f | wc -l)
    dict=()
    [[ -f fuzz/dict/$target.dict ]] && dict=(-dict="fuzz/dict/$target.dict")
    limit=()
    [[ $max_seconds -gt 0 ]] && limit=(-max_total_time="$max_seconds")
    log="$build/long-$target.log"
    start=$(date +%s.%N)
    times_file="$build/long-$target.times"
    # Same environment as scripts/fuzz.sh: no leak checking (the Swift runtime's caches read as leaks), no Swift
    # backtracer (libFuzzer and ASan report crashes). -print_pcs=0: libFuzzer's own lines only.
    # CPU seconds (user + system) are measured too: on a shared machine the wall rate says as much about the
    # other load as about the target.
    TIMEFORMAT='%U %S'
    {
        time PORTCULLIS_FUZZ_TARGET="$target" PORTCULLIS_CONFIG="$PWD/config" SWIFT_BACKTRACE=enable=no \
            ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:handle_abort=1" \
            nice -n "$niceness" "$bin" -runs="$execs_wanted" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
            -max_len=4096 -print_final_stats=1 -detect_leaks=0 -artifact_prefix="$artifacts/" "${dict[@]}" \
            "$corpus" "fuzz/corpus/$target" >"$log" 2>&1
    } 2>"$times_file"
    status=$?
    cpu=$(awk '{ printf "%.0f", $1 + $2 }' "$times_file")
    end=$(date +%s.%N)
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    if [[ -z "$execs" ]]; then execs=$(grep -Eo '^#[0-9]+' "$log" | tr -d '#' | tail -1); fi
    execs=${execs:-0}
    rate=$(awk -v e="$execs" -v s="$seconds" 'BEGIN { printf "%.0f", (s > 0 ? e / s : 0) }')
    cpu_rate=$(awk -v e="$execs" '{ c = $1 + $2; printf "%.0f", (c > 0 ? e / c : 0) }' "$times_file")
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
    crashes=$(($(find "$artifacts" -type f | wc -l) - before))
    if [[ $status -ne 0 && $crashes -eq 0 ]]; then
        crashes=1
        tail -5 "$log"
    fi
    if [[ $crashes -gt 0 ]]; then
        grep -E "invariant broken|ERROR: |SUMMARY|Fatal error|Test unit written" "$log" | head -6
    fi
    reached=""
    [[ $execs -lt $execs_wanted ]] && reached=" (stopped before $execs_wanted)"
    echo "fuzz-long: target $target: $execs execs$reached, $seconds s wall, $rate exec/s," \
        "$cpu s CPU, $cpu_rate exec/CPU-s, ${cov:-no coverage line}, $crashes crashes"
    total_execs=$((total_execs + execs))
    total_crashes=$((total_crashes + crashes))
    total_seconds=$((total_seconds + seconds))
    ran=$((ran + 1))
done
echo "fuzz-long: $ran targets, $total_execs execs, $total_seconds s, $total_crashes crashes"
[[ $total_crashes -eq 0 ]]
