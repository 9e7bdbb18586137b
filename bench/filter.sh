#!/usr/bin/env bash
# Filter engine throughput (release build): a fail2ban filter over a synthetic auth.log (¾ non-failures).
# Usage: bench/filter.sh [FILTER=sshd] [LINES=2000000]          e.g. bench/filter.sh 'sshd[mode=aggressive]'
# Also prints fail2ban-regex's time on a 100,000-line sample of the same log, for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
FILTER=${1:-sshd}; LINES=${2:-2000000}
swift build -c release --product portcullis-filter-bench >/dev/null
BIN="$(swift build -c release --show-bin-path)/portcullis-filter-bench"
"$BIN" --filter "$FILTER" --lines "$LINES"
