#!/usr/bin/env bash
# Installs the Debian packages Portcullis builds and tests with, if missing. Run as root.
set -euo pipefail
PKGS=(libpcre2-dev libnftables-dev libsystemd-dev libsqlite3-dev nftables iproute2 fail2ban python3 netbase)
if [[ "${1:-}" == "--test" ]]; then
    # The metrics test's parser; the package stage's tools (dpkg-shlibdeps, strip, man -w, lintian).
    PKGS+=(systemd-journal-remote python3-systemd python3-prometheus-client dpkg-dev binutils man-db lintian)
fi
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "==> installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
