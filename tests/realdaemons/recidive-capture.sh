#!/usr/bin/env bash
# Produces real ban lines in fail2ban's log format for samples/logs/recidive: runs fail2ban-server (as a tool, the
# format's reference implementation) on OUR configuration tree (config/, with portcullis.conf as its fail2ban.conf)
# over logs captured by capture.sh, with the sshd, dovecot, postfix-sasl and recidive jails on. Our nftables
# action files run no commands, so nothing is banned anywhere; only the log is kept.
# With PCL_BIN (a built `portcullis` that has `start`), Portcullis itself then runs the same jails on the same logs
# (--no-firewall: nothing is banned in any kernel) and its log lines are appended: they are the lines the recidive
# filter reads in production.
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
if [[ -n ${PCL_BIN:-} ]] && "$PCL_BIN" start --help >/dev/null 2>&1; then
    # Same tree for Portcullis: portcullis.local instead of fail2ban.local, a fresh database and log.
    mv "$t/conf/fail2ban.conf" "$t/conf/portcullis.conf"
    sed -e "s|$t/portcullis.log|$t/pcl.log|; s|$t/f2b.sock|$t/pcl.sock|; s|$t/f2b.pid|$t/pcl.pid|" \
        -e "s|$t/f2b.sqlite3|$t/pcl.sqlite3|" "$t/conf/fail2ban.local" >"$t/conf/portcullis.local"
    rm -f "$t/conf/fail2ban.local"
    sed -i "s|$t/portcullis.log|$t/pcl.log|" "$t/conf/jail.local"
    : >"$t/pcl.log"
    for run in 1 2; do
        "$PCL_BIN" start -f -x --no-firewall --read-existing -c "$t/conf" >"$t/pcl.out" 2>&1 &
        pid=$!
        for i in $(seq 150); do
            if ((run == 1)); then grep -q '\[recidive\] Ban' "$t/pcl.log" && break
            else grep -q 'Restore Ban\|restored' "$t/pcl.log" && break; fi
            sleep 0.2
        done
        sleep 2
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=""
    done
    cat "$t/pcl.log" >>"$out"
fi
echo "$(grep -c ' Ban ' "$out") ban lines in $out"
