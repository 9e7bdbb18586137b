#!/usr/bin/env bash
# Installs the Debian packages Portcullis builds and tests with, if missing. Run as root.
set -euo pipefail
PKGS=(libpcre2-dev libnftables-dev libsystemd-dev libsqlite3-dev libpq-dev nftables iproute2 fail2ban python3 netbase)
if [[ "${1:-}" == "--test" ]]; then
    # The policy stage's real daemons, started only inside its namespace (tests/realdaemons/serve.sh): sshd, Postfix,
    # Dovecot, munin-node, and the rsyslogd and openssl they use. The metrics test's parser; the package stage's tools
    # (dpkg-shlibdeps, strip, man -w, lintian).
    PKGS+=(systemd-journal-remote python3-systemd iptables nmap postgresql openssh-server openssh-client
        postfix dovecot-imapd dovecot-pop3d munin-node rsyslog openssl util-linux
        python3-prometheus-client dpkg-dev binutils man-db lintian)
fi
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "==> installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Installing a daemon (openssh-server, postfix, dovecot, munin-node, rsyslog) must not start it on the host:
    # policy-rc.d refuses while we install (invoke-rc.d and deb-systemd-invoke ask it), and Postfix gets no
    # configuration of its own (the tests write theirs).
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    rc=0
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    exit $rc
fi
