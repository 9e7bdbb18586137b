#!/usr/bin/env bash
# Sets up and runs every test: unit and integration tests (swift test, including real-kernel nftables tests in
# private network namespaces and the real fail2ban-client against fail2ban-server and the Portcullis daemon),
# fail2ban's sample suite, the agreement of failure ids with fail2ban-regex, the daemon end to end in namespaces,
# real sshd/Postfix/Dovecot in namespaces, house style (swift format lint), Prometheus metrics, the Debian package (built, installed, purged), and
# 20 s of fuzzing per libFuzzer target. Run as root on Debian 12 with Swift 6.
#
# Every step is a stage (see `stage` below). A stage passes only when its command exits 0, prints its summary line
# with no failure in it, and reports no skip; a stage that cannot run (tool missing, not root) fails. The last line
# is `N passed, M failed` over the stages; the exit status is 0 only when M is 0.
# Logs: $PCL_TEST_LOGS (default a new /tmp/portcullis-test.XXXXXX), one NAME.log per stage.
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${PCL_TEST_LOGS:-$(mktemp -d /tmp/portcullis-test.XXXXXX)}
mkdir -p "$LOGS"
stages_passed=0 stages_failed=0 blocked="" report=()

# stage NAME SUMMARY CMD…
#   Runs CMD (stdin /dev/null, stdout+stderr to $LOGS/NAME.log and to the terminal, minus lines matching the extended
#   regex $HIDE when set) and counts it. It passes when CMD exits 0, every line of SUMMARY (extended regexes, one per
#   line; "-" for none) matches some line of the output, and no line reports a skip: `SKIPPED` anywhere, or
#   swift-testing's `➜ Test … skipped` / `➜ Suite … skipped`. After a failed stage marked with `|| block REASON`,
#   the later stages are counted as failed without running (their binaries would be stale).
#   To add a stage: `stage my-check '^my-check: [0-9]+ passed, 0 failed$' path/to/script args…`
stage() {
    local name=$1 summary=$2 log="$LOGS/$1.log" start=$SECONDS rc why="" pattern
    shift 2
    echo "==> $name: $*"
    if [[ -n $blocked ]]; then
        why="not run: $blocked"
    else
        "$@" </dev/null 2>&1 | tee "$log" | { grep -Ev "${HIDE:-x^}" || true; }
        rc=${PIPESTATUS[0]}
        if ((rc != 0)); then why="exit status $rc"; fi
        if [[ $summary != - ]]; then
            while IFS= read -r pattern; do
                grep -qE -- "$pattern" "$log" || why="${why:+$why; }no line matches /$pattern/"
            done <<<"$summary"
        fi
        if grep -qE 'SKIPPED|➜ (Test|Suite) .* skipped' "$log"; then
            why="${why:+$why; }skipped: $(grep -E 'SKIPPED|➜ (Test|Suite) .* skipped' "$log" | head -3 | tr '\n' ' ')"
        fi
    fi
    local took=$((SECONDS - start))
    if [[ -z $why ]]; then
        stages_passed=$((stages_passed + 1)); report+=("PASS $name (${took} s)")
        return 0
    fi
    stages_failed=$((stages_failed + 1)); report+=("FAIL $name (${took} s): $why")
    echo "FAIL $name: $why (log: $log)"
    return 1
}

# block REASON: later stages do not run and count as failed.
block() { blocked=$1; }

BIN=.build/debug
stage deps - scripts/deps.sh --test || block "dependencies missing"
# House style: swift format lint --strict with the checked-in .swift-format, every Swift file (no build needed).
stage format '^format: [1-9][0-9]* files, 0 findings$' scripts/format-lint.sh

HIDE='^\[[0-9]+/[0-9]+\] ' stage build '^Build complete!' swift build --build-tests || block "build failed"
BIN="$(swift build --show-bin-path 2>/dev/null || echo .build/debug)"

# swift-testing only: no XCTest runner that would report "0 tests". The fail2ban-client comparison runs in here and
# prints its own line.
HIDE='^(◇|↳)|started\.$|^✔ Test .* passed after' stage swift-test \
    $'^✔ Test run with [1-9][0-9]* tests? in [0-9]+ suites? passed\n^client: [0-9]+ identical, [0-9]+ different' \
    swift test --skip-build --disable-xctest --skip ControlJamTests

# The control-socket flood (2,000 connections, status within 1 s) times status replies, so it runs alone: beside the
# suites that start Python and fail2ban-server its process would be starved for CPU, not the server jammed.
HIDE='^(◇|↳)|started\.$' stage control-jam \
    $'^✔ Test run with [1-9][0-9]* tests? in 1 suite passed\n^control jam: [0-9]+ status samples' \
    swift test --skip-build --disable-xctest --filter ControlJamTests

stage samples '^samples: [1-9][0-9]* passed, 0 failed$' \
    "$BIN/portcullis-samples" --strict

stage own-samples '^samples: [1-9][0-9]* passed, 0 failed$' \
    "$BIN/portcullis-samples" --strict --conf config --logs samples/logs

# fail2ban's test-only filters zzz-* (its tests/config; the tree is made at test time, see the script).
TESTCONF="$LOGS/fail2ban-test-conf"
stage test-samples '^samples: [1-9][0-9]* passed, 0 failed$' \
    bash -c 'scripts/fail2ban-test-conf.sh "$1" && "$2" --strict --test-conf "$1" \
        --filter zzz-generic-example --filter zzz-sshd-obsolete-multiline' - "$TESTCONF" "$BIN/portcullis-samples"

stage compare-ids '^compare-ids: [1-9][0-9]* identical, 0 different$' \
    env PORTCULLIS="$BIN/portcullis" bench/compare-ids.sh --strict

stage e2e '^e2e: [1-9][0-9]* passed, 0 failed$' \
    tests/e2e/netns_e2e.py --portcullis "$BIN/portcullis"

# Prometheus metrics of a running daemon (real nftables in a namespace), parsed with the Prometheus text parser.
stage metrics '^metrics: [1-9][0-9]* passed, 0 failed$' \
    tests/e2e/metrics_e2e.py --portcullis "$BIN/portcullis"

# The host firewall policy in namespaces: plan, errors with file:line, the SSH-session guard, apply + revert after the
# timeout, apply + confirm, reachability per family and source group, bogons, the port-scan guard, bans winning over
# the policy, import of iptables-save dumps, the audit against a probe and nmap from another namespace, with Debian's
# real sshd, Postfix (25, 465, 587), Dovecot (993, 995) and munin-node (4949, admin group only) in the server
# namespace, and bans on forwarded connections in a router namespace (banforward, repair after a flush) (about 65 s).
stage policy '^policy: [1-9][0-9]* passed, 0 failed$' \
    tests/e2e/policy_e2e.py --portcullis "$BIN/portcullis"

# Fleet sharing through a PostgreSQL cluster of its own and three daemons in three namespaces: propagation p50/p99
# over 100 bans, 500 bans during a PostgreSQL outage caught up exactly once, trust, ignoreip, escalation, bad input.
stage fleet '^fleet: [1-9][0-9]* passed, 0 failed$' \
    tests/fleet/fleet_test.py --portcullis "$BIN/portcullis"

# SIGKILL during a 5,000-address burst (and a 1,500-address journal burst), a full or locked store, a damaged database
# (about 45 s).
stage durability '^durability: [1-9][0-9]* passed, 0 failed$' \
    tests/e2e/durability_e2e.py --portcullis "$BIN/portcullis"

# Bounds, behaviour only (the 1,000,000 figures and their timings are bench/bounds.py without --check): the maxtracked
# cap holds with one warning, 20,000 bans restored at start, status lists every one of 20,000 bans.
stage bounds '^bounds: [1-9][0-9]* passed, 0 failed$' \
    bench/bounds.py --check --portcullis "$BIN/portcullis"

stage realdaemons '^\[realdaemons\] summary: [1-9][0-9]* passed, 0 failed$' \
    env PCL_BIN="$BIN/portcullis" bash tests/realdaemons/run.sh

# The Debian package: a release build (several minutes; once per run), lintian without errors, then dpkg -i,
# --version, check, man -w and a purge that leaves nothing behind, twice (next to an enabled fail2ban: nothing enabled;
# and without it). Nothing starts: there is no systemd here, and the test checks that no daemon runs.
stage package '^package: [1-9][0-9]* passed, 0 failed$' \
    tests/package/package_test.sh

# libFuzzer targets (Sources/FuzzTargets), built into .build-fuzz with -sanitize=fuzzer,address, 20 s each; any
# crash, hang or out-of-memory input fails the stage (the inputs are in .build-fuzz/artifacts).
stage fuzz '^fuzz: [1-9][0-9]* targets, [0-9]+ execs, 0 crashes$' \
    nice scripts/fuzz.sh 20

echo "==> summary (logs in $LOGS)"
printf '%s\n' "${report[@]}"
grep -hE '^✔ Test run with|^✘ Test run with|^client: [0-9]+ identical' "$LOGS/swift-test.log" 2>/dev/null || true
echo "$stages_passed passed, $stages_failed failed"
((stages_failed == 0))
