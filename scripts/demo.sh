#!/usr/bin/env bash
# The first thing to run: installs what Portcullis needs, builds it, and shows `portcullis regex` finding the
# authentication failures in an OpenSSH auth.log we ship (samples/auth.log: IPv4 and IPv6 attackers,
# traditional syslog and RFC 3339 timestamps) with fail2ban's unmodified sshd filter.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
echo "==> swift build -c release --product portcullis"
swift build -c release --product portcullis 2>&1 | grep -E 'error|warning: unre|Compiling|Build' | tail -3
BIN=$(swift build -c release --show-bin-path)/portcullis
CONF=/etc/portcullis
[[ -d $CONF/filter.d ]] || CONF=/etc/fail2ban

echo
echo "==> portcullis regex samples/auth.log sshd      (filter from $CONF/filter.d/sshd.conf)"
"$BIN" regex --conf "$CONF" samples/auth.log sshd

echo "==> addresses that failed, with their number of failures:  portcullis regex --out ip samples/auth.log sshd"
"$BIN" regex --conf "$CONF" --out ip samples/auth.log sshd | sort | uniq -c | sort -rn

echo
echo "==> users they tried:  portcullis regex --out user samples/auth.log sshd"
"$BIN" regex --conf "$CONF" --out user samples/auth.log sshd | sort | uniq -c | sort -rn | head -10

echo
echo "==> aggressive mode also counts closed preauth connections:  portcullis regex samples/auth.log 'sshd[mode=aggressive]'"
"$BIN" regex --conf "$CONF" samples/auth.log 'sshd[mode=aggressive]' | grep -E '^Lines:'
