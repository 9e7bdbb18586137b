#!/usr/bin/env bash
# Makes DIR a config tree holding fail2ban's test-only filters (zzz-*.conf of its installed tests/config/filter.d),
# each with its `before = …/common.conf` (a path outside the Debian package) pointed at the installed common.conf,
# which is copied beside them. Built at test time only: fail2ban's files are never committed here.
# Exit 2 (and a message) when fail2ban or its tests are not installed.
set -euo pipefail
DIR=${1:?usage: scripts/fail2ban-test-conf.sh DIR}
SRC=${F2B_TESTS:-/usr/lib/python3/dist-packages/fail2ban/tests}/config/filter.d
COMMON=${F2B_CONF:-/etc/fail2ban}/filter.d/common.conf
shopt -s nullglob
filters=("$SRC"/zzz-*.conf)
if ((${#filters[@]} == 0)) || [[ ! -f "$COMMON" ]]; then
    echo "fail2ban-test-conf: no zzz-*.conf in $SRC or no $COMMON (scripts/deps.sh --test)" >&2
    exit 2
fi
mkdir -p "$DIR/filter.d"
cp "$COMMON" "$DIR/filter.d/common.conf"
for f in "${filters[@]}"; do
    sed -E 's|^(before[[:space:]]*=[[:space:]]*).*/common\.conf[[:space:]]*$|\1common.conf|' "$f" >"$DIR/filter.d/$(basename "$f")"
done
