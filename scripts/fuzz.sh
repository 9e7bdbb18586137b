#!/usr/bin/env bash
# Builds the libFuzzer targets (Sources/FuzzTargets, driver fuzz/driver) and runs each for SECONDS.
#
#   scripts/fuzz.sh SECONDS [TARGET...]     targets: ini date line tags pickle json address (default: all)
#
# The build goes to .build-fuzz (the normal .build is untouched), with -sanitize=fuzzer,address passed on the
# command line (never in Package.swift). FUZZ_CONFIGURATION=release builds with -O for long runs.
# Each target starts from the seeds in fuzz/corpus/TARGET plus what earlier runs kept in
# .build-fuzz/corpus/TARGET; inputs that crash, hang (10 s) or run out of memory (2 GiB) are written to
# .build-fuzz/artifacts/TARGET/. Copy each into fuzz/corpus/TARGET/crash-NAME and add a regression test.
# Prints one line per target and ends with exactly one line `fuzz: T targets, E execs, C crashes`;
# exits 1 when anything crashed or a target could not run.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(ini date line tags pickle json address)
configuration="${FUZZ_CONFIGURATION:-debug}"
build=.build-fuzz

flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING)
if ! swift build -c "$configuration" --build-path "$build" --product portcullis-fuzz "${flags[@]}" \
    >"$build.log" 2>&1; then
    grep -E "error:" "$build.log" | head -20
    echo "fuzz: 0 targets, 0 execs, 1 crashes"
    echo "fuzz.sh: the fuzz build failed (see $build.log)" >&2
    exit 1
fi
bin="$build/$configuration/portcullis-fuzz"

total_execs=0
total_crashes=0
ran=0
for target in "${targets[@]}"; do
    corpus="$build/corpus/$target"
    artifacts="$build/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    before=$(find "$artifacts" -type f | wc -l)
    dict=()
    [[ -f fuzz/dict/$target.dict ]] && dict=(-dict="fuzz/dict/$target.dict")
    log="$build/$target.log"
    # Leak checking is off: the Swift runtime's metadata caches live until exit and read as leaks.
    # The Swift backtracer is off: libFuzzer and ASan report crashes themselves.
    PORTCULLIS_FUZZ_TARGET="$target" PORTCULLIS_CONFIG="$PWD/config" SWIFT_BACKTRACE=enable=no \
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:handle_abort=1" \
        "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        -detect_leaks=0 -artifact_prefix="$artifacts/" "${dict[@]}" "$corpus" "fuzz/corpus/$target" \
        >"$log" 2>&1
    status=$?
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    if [[ -z "$execs" ]]; then execs=$(grep -Eo '^#[0-9]+' "$log" | tr -d '#' | tail -1); fi
    execs=${execs:-0}
    rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
    crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
    if [[ $status -ne 0 && $crashes -eq 0 ]]; then
        # Ended badly without leaving an input (e.g. could not start): count it, show why.
        crashes=1
        tail -5 "$log"
    fi
    if [[ $crashes -gt 0 ]]; then
        grep -E "invariant broken|ERROR: |SUMMARY|Fatal error|Test unit written" "$log" | head -6
    fi
    echo "fuzz: target $target: $execs execs, ${rate:-?} exec/s, ${cov:-no coverage line}, $crashes crashes"
    total_execs=$((total_execs + execs))
    total_crashes=$((total_crashes + crashes))
    ran=$((ran + 1))
done
echo "fuzz: $ran targets, $total_execs execs, $total_crashes crashes"
[[ $total_crashes -eq 0 ]]
