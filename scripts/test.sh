#!/usr/bin/env bash
# Sets up and runs every test: unit and integration tests (swift test), then fail2ban's sample suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
echo "==> swift build"
swift build --build-tests
echo "==> swift test"
swift test --skip-build 2>&1 | tee /tmp/portcullis-swift-test.log | grep -Ev '^(◇|↳)|started\.$' || true
status=${PIPESTATUS[0]}
if [[ $status -ne 0 ]]; then
    echo "swift test failed (exit $status)"; exit "$status"
fi
