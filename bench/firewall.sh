#!/usr/bin/env bash
# Firewall benchmark, inside a throw-away network namespace (never the host's ruleset):
#  - Portcullis: 10,000 bans in ONE libnftables transaction (in-process), re-ban with new timeouts, and the restore
#    of 20,000 bans after `nft flush ruleset` (portcullis-firewall-bench);
#  - fail2ban style: one `nft add element` process per ban, 200 sampled and extrapolated to 10,000;
#  - for reference: one `nft -f` process with all 10,000 elements.
# Usage: bench/firewall.sh [BANS=10000] [RESTORE=20000] [SAMPLE=200] [SYNTAX=text|json]   (root)
set -euo pipefail
cd "$(dirname "$0")/.."
BANS=${1:-10000}; RESTORE=${2:-20000}; SAMPLE=${3:-200}; SYNTAX=${4:-text}
NS="pcl-fw-bench-$$"
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
swift build -c release --product portcullis-firewall-bench >/dev/null
BIN="$(swift build -c release --show-bin-path)/portcullis-firewall-bench"
ip netns add "$NS"
ip -n "$NS" link set lo up

echo "== Portcullis, in-process libnftables"
"$BIN" --netns "$NS" --bans "$BANS" --restore "$RESTORE" --syntax "$SYNTAX"

echo "== one nft process per ban (fail2ban's way), $SAMPLE sampled"
# One `ip netns exec` for the whole loop, so the time is the nft processes' (plus a few ms for bash).
start=$(date +%s%N)
ip netns exec "$NS" bash -c 'for ((i = 0; i < $1; i++)); do
    nft add element inet portcullis addr-set-sshd "{ 12.0.$((i / 256)).$((i % 256)) timeout 3600s }"; done' _ "$SAMPLE"
end=$(date +%s%N)
awk -v ns=$((end - start)) -v n="$SAMPLE" -v bans="$BANS" \
    'BEGIN { printf "nft per ban: %.2f ms; %d bans extrapolated: %.1f s\n", ns / n / 1e6, bans, ns / n * bans / 1e9 }'

echo "== reference: one nft -f process with $BANS elements"
FILE=$(mktemp)
python3 - "$BANS" >"$FILE" <<'PY'
import sys
n = int(sys.argv[1])
print("add element inet portcullis addr-set-sshd { " +
      ", ".join(f"13.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255} timeout 3600s" for i in range(n)) + " }")
PY
start=$(date +%s%N)
ip netns exec "$NS" nft -f "$FILE"
end=$(date +%s%N)
rm -f "$FILE"
awk -v ns=$((end - start)) -v n="$BANS" 'BEGIN { printf "nft -f, %d elements: %.1f ms\n", n, ns / 1e6 }'
