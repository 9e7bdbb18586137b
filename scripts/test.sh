#!/usr/bin/env bash
# Sets up and runs every test: unit and integration tests (swift test, including real-kernel nftables tests in
# private network namespaces), fail2ban's sample suite, the daemon end to end in namespaces, and the agreement of
# failure ids with fail2ban-regex. Run as root on Debian 12 with Swift 6.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
failed=0

echo "==> swift build"
swift build --build-tests
BIN="$(swift build --show-bin-path)"

echo "==> swift test"
set +e
swift test --skip-build >/tmp/portcullis-swift-test.log 2>&1
swift_status=$?
set -e
grep -Ev '^(◇|↳)|started\.$|^✔ Test .* passed after' /tmp/portcullis-swift-test.log | tail -n 200
if [[ $swift_status -ne 0 ]]; then echo "swift test failed (exit $swift_status)"; failed=1; fi

echo "==> fail2ban sample suite (portcullis-samples)"
"$BIN/portcullis-samples" >/tmp/portcullis-samples.log 2>&1 || true
grep -v "^samples: " /tmp/portcullis-samples.log | head -20 || true
grep '^samples: ' /tmp/portcullis-samples.log || { echo "samples: harness did not finish (see /tmp/portcullis-samples.log)"; failed=1; }

echo "==> Portcullis's own filters on its real-daemon sample logs (config/, samples/logs)"
if ! "$BIN/portcullis-samples" --strict --conf config --logs samples/logs >/tmp/portcullis-own-samples.log 2>&1; then
    tail -40 /tmp/portcullis-own-samples.log; echo "own samples failed"; failed=1
fi
tail -1 /tmp/portcullis-own-samples.log

echo "==> failure ids agree with fail2ban-regex -o id on every sample log"
if ! bench/compare-ids.sh --strict > /tmp/portcullis-compare-ids.log 2>&1; then failed=1; fi
grep -E "^compare-ids:|different" /tmp/portcullis-compare-ids.log || { tail -5 /tmp/portcullis-compare-ids.log; failed=1; }

echo "==> daemon end to end on real nftables in private namespaces"
if ! tests/e2e/netns_e2e.py --portcullis "$BIN/portcullis"; then failed=1; fi

echo "==> durability on real nftables: SIGKILL during a 5,000-address burst, a full or locked store, a damaged database"
if ! tests/e2e/durability_e2e.py --portcullis "$BIN/portcullis"; then failed=1; fi

echo "==> real sshd, Postfix and Dovecot in namespaces: the default tree bans the attacker on every service"
if ! PCL_BIN="$BIN/portcullis" bash tests/realdaemons/run.sh 2>&1 | tee /tmp/portcullis-realdaemons.log | grep -E "ok:|FAIL|summary|SKIPPED|error"; then :; fi
grep -q "summary: [0-9]* passed, 0 failed" /tmp/portcullis-realdaemons.log || failed=1

swift_line=$(grep -E '^✔ Test run with [0-9]+ tests|^✘ Test run with [0-9]+ tests' /tmp/portcullis-swift-test.log | tail -1 || true)
echo "==> summary"
echo "swift test: ${swift_line:-no summary line}"
grep '^samples: ' /tmp/portcullis-samples.log || true
exit $failed
