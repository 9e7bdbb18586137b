#!/usr/bin/env bash
# Produces real ban lines in fail2ban's log format for samples/logs/recidive: runs fail2ban-server (as a tool, the
# format's reference implementation) on OUR configuration tree (config/, with portcullis.conf as its fail2ban.conf)
# over logs captured by capture.sh, with the sshd, dovecot, postfix-sasl and recidive jails on. Our nftables
# action files run no commands, so nothing is banned anywhere; only the log is kept.
# Usage: recidive-capture.sh CAPTURE_DIR OUT_LOG
set -euo pipefail
cap=$(realpath "$1") out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
t=$(mktemp -d /tmp/pcl-recidive.XXXXXX)
pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; sleep 0.5; rm -rf "$t"; }
trap cleanup EXIT
cp -r "$here/../../config" "$t/conf"
mv "$t/conf/portcullis.conf" "$t/conf/fail2ban.conf"
cat >"$t/conf/fail2ban.local" <<CONF
[Definition]
loglevel = INFO
logtarget = $t/portcullis.log
socket = $t/f2b.sock
pidfile = $t/f2b.pid
dbfile = $t/f2b.sqlite3
CONF
cat >"$t/conf/jail.local" <<CONF
[DEFAULT]
backend = polling
findtime = 1d
maxretry = 3
bantime = 1d
ignoreself = false
ignoreip =
[sshd]
enabled = true
backend = polling
logpath = $cap/syslog-rfc3339.log
[dovecot]
enabled = true
logpath = $cap/syslog-rfc3339.log
[postfix-sasl]
enabled = true
logpath = $cap/syslog-rfc3339.log
[recidive]
enabled = true
maxretry = 2
bantime = 1d
logpath = $t/portcullis.log
CONF
rm -f "$t/conf/jail.d/defaults-debian.conf"
: >"$t/portcullis.log"
# Run 1 bans (and recidive bans the repeat offender); a clean stop logs the unbans. Run 2 restores the bans from
# the database ("Restore Ban"), then stops again.
for run in 1 2; do
    fail2ban-server -f -x -c "$t/conf" -s "$t/f2b.sock" -p "$t/f2b.pid" >/dev/null 2>&1 &
    pid=$!
    for i in $(seq 150); do
        if ((run == 1)); then grep -q '\[recidive\] Ban' "$t/portcullis.log" && break
        else grep -q 'Restore Ban' "$t/portcullis.log" && break; fi
        sleep 0.2
    done
    sleep 2
    fail2ban-client -s "$t/f2b.sock" stop >/dev/null 2>&1 || kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
done
cp "$t/portcullis.log" "$out"
echo "$(grep -c ' Ban ' "$out") ban lines in $out"
