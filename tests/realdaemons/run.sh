#!/usr/bin/env bash
# The ban scenario, end to end, on real daemons: OpenSSH, Dovecot and Postfix (SMTP AUTH through Dovecot) run in the
# "server" network namespace and log through our own rsyslogd; Portcullis runs in the same namespace on the default
# configuration tree (config/) with the jails sshd, dovecot, postfix-sasl (filter = postfix[mode=auth],
# port = smtp,465,submission,imap,imaps,pop3,pop3s) and recidive turned on. The attacker fails to log in to every
# service; the legitimate client logs in from its own address. Then:
#   - every service must refuse the attacker's next connection (nftables reject in the server namespace);
#   - the legitimate client must still connect and log in, and must never appear in a ban.
#
# Run as root: tests/realdaemons/run.sh. Cleans up everything (namespaces, processes by PID, temp dir) on exit.
#
# Hooks (environment):
#   PCL_START   command that starts Portcullis in the foreground; it runs inside the server namespaces with
#               PCL_CONF (configuration directory), PCL_SOCKET, PCL_LOG in its environment. Default: the built
#               `portcullis start` if the binary has that subcommand (PCL_BIN, default .build/debug/portcullis).
#   PCL_BANNED  command run (in the server namespaces) with an address as $1, exiting 0 when that address is banned
#               by some jail; default: looks the address up in the `inet portcullis` nftables sets.
#   RD_KEEP=1   keep the temporary directory (logs, configuration) for inspection.
# Without a Portcullis that can start, the run fails (nothing is skipped): it still runs the daemons and attacks and
# checks, with the filters of config/ (through `portcullis regex` when built, else fail2ban-regex as a stand-in
# engine), that the attacker reaches every jail's maxretry and the legitimate client produces no failure at all, and
# counts the ban checks as one failure.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$RD_DIR/../.." && pwd)
PCL_BIN=${PCL_BIN:-$ROOT/.build/debug/portcullis}
MAXRETRY=3
pass=0 fail=0
ok() { pass=$((pass + 1)); rd_log "ok: $*"; }
ko() { fail=$((fail + 1)); rd_log "FAIL: $*"; }

# rd_probe NS ADDR PORT: prints open, refused or timeout for one TCP connection.
rd_probe() {
    ip netns exec "$1" "$RD_PY" - "$2" "$3" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close(); print("open")
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("timeout")
PY
}

# The Portcullis configuration: the default tree, plus a jail.d file that turns the scenario's jails on and points
# them at the logs our rsyslogd writes (RFC 3339, Debian 12's default format).
pcl_config() {
    PCL_CONF=$RD_T/portcullis-etc
    PCL_SOCKET=$RD_T/run/portcullis.sock
    PCL_LOG=$RD_T/logs/portcullis.log
    rm -rf "$PCL_CONF"; cp -r "$ROOT/config" "$PCL_CONF"
    cat >"$PCL_CONF/portcullis.local" <<CONF
[Definition]
loglevel = INFO
logtarget = $PCL_LOG
socket = $PCL_SOCKET
pidfile = $RD_T/run/portcullis.pid
dbfile = $RD_T/portcullis.sqlite3
CONF
    local log=$RD_T/logs/syslog-rfc3339.log
    cat >"$PCL_CONF/jail.d/realdaemons.local" <<CONF
[DEFAULT]
maxretry = $MAXRETRY
findtime = 10m
bantime = 10m
# Only loopback is ignored: the legitimate client must stay unbanned by the filters' merit, not by an exception.
ignoreip = 127.0.0.0/8 ::1
backend = auto

[sshd]
enabled = true
backend = auto
logpath = $log

[dovecot]
enabled = true
logpath = $log

# The seed scenario's mail jail.
[postfix-sasl]
enabled = true
filter = postfix[mode=auth]
port = smtp,465,submission,imap,imaps,pop3,pop3s
logpath = $log

# Three jails ban the attacker; the third ban makes it a repeat offender.
[recidive]
enabled = true
maxretry = 3
logpath = $PCL_LOG
CONF
    export PCL_CONF PCL_SOCKET PCL_LOG
}

pcl_can_start() {
    [[ -n ${PCL_START:-} ]] && return 0
    [[ -x $PCL_BIN ]] && "$PCL_BIN" start --help >/dev/null 2>&1
}

pcl_start() {
    local cmd=${PCL_START:-"$PCL_BIN start --foreground --force --conf $PCL_CONF"}
    rd_log "starting Portcullis: $cmd"
    rd_srv env PCL_CONF="$PCL_CONF" PCL_SOCKET="$PCL_SOCKET" PCL_LOG="$PCL_LOG" bash -c "exec $cmd" \
        >>"$RD_T/portcullis.out" 2>&1 </dev/null &
    RD_PIDS+=($!)
}

pcl_banned() {
    local addr=$1
    if [[ -n ${PCL_BANNED:-} ]]; then rd_srv bash -c "$PCL_BANNED \"\$1\"" _ "$addr"; return; fi
    rd_srv nft list table inet portcullis 2>/dev/null | grep -qF "$addr"
}

# Filter-level check (no daemon needed): failures per address in the fresh logs, for each jail's filter.
filter_counts() {
    local filter=$1 log=$2
    if [[ -x $PCL_BIN ]] && "$PCL_BIN" regex --help >/dev/null 2>&1; then
        "$PCL_BIN" regex --conf "$ROOT/config" --out ip "$log" "$filter" 2>/dev/null && return 0
    fi
    fail2ban-regex --out ip "$log" "$ROOT/config/filter.d/${filter%%[*}.conf${filter#"${filter%%[*}"}" 2>/dev/null
}

check_filters() {
    local log=$RD_T/logs/syslog-rfc3339.log jail filter n_atk n_leg out
    for jail in "sshd:sshd" "dovecot:dovecot" "postfix-sasl:postfix[mode=auth]"; do
        filter=${jail#*:}; jail=${jail%%:*}
        out=$(filter_counts "$filter" "$log" || true)
        n_atk=$(grep -cxE "$RD_ATK4|$RD_ATK6" <<<"$out" || true)
        n_leg=$(grep -cxE "$RD_LEG4|$RD_LEG6" <<<"$out" || true)
        if ((n_atk >= MAXRETRY)); then ok "$jail: attacker has $n_atk failures (maxretry $MAXRETRY)"
        else ko "$jail: attacker has only $n_atk failures"; fi
        if ((n_leg == 0)); then ok "$jail: legitimate client has no failure"
        else ko "$jail: legitimate client has $n_leg failures"; fi
        if grep -vxE "$RD_ATK4|$RD_ATK6|$RD_LEG4|$RD_LEG6" <<<"$out" | grep -q .; then
            ko "$jail: failures for unexpected addresses: $(grep -vxE "$RD_ATK4|$RD_ATK6" <<<"$out" | sort -u | tr '\n' ' ')"
        fi
    done
}

check_bans() {
    local port i state
    # The attacker's next connection to each service must be refused.
    for i in $(seq 60); do pcl_banned "$RD_ATK4" && break; sleep 1; done
    for port in 22 25 465 587 143 993 110 995; do
        state=$(rd_probe "$RD_NS_ATK" "$RD_SRV4" $port)
        [[ $state == refused ]] && ok "attacker refused on port $port" || ko "attacker $state on port $port"
    done
    state=$(rd_probe "$RD_NS_ATK" "$RD_SRV6" 22)
    [[ $state == refused ]] && ok "attacker (IPv6) refused on port 22" || ko "attacker (IPv6) $state on port 22"
    # The legitimate client is never banned and still logs in (asked of a table that exists: no table bans nobody).
    if ! rd_srv nft list table inet portcullis >/dev/null 2>&1 && [[ -z ${PCL_BANNED:-} ]]; then
        ko "no inet portcullis table: cannot tell whether the legitimate client is banned"
    elif pcl_banned "$RD_LEG4" || pcl_banned "$RD_LEG6"; then ko "legitimate client banned"; else ok "legitimate client not banned"; fi
    for port in 22 587 993 995; do
        state=$(rd_probe "$RD_NS_LEG" "$RD_SRV4" $port)
        [[ $state == open ]] && ok "legitimate client reaches port $port" || ko "legitimate client $state on port $port"
    done
    # Only log lines written from here on count: the legitimate client also logged in before the attack.
    local syslog=$RD_T/logs/syslog-traditional.log from
    from=$(($(stat -c %s "$syslog") + 1))
    if ip netns exec "$RD_NS_LEG" timeout 20 sshpass -p "$RD_LEGIT_PASS" ssh "${RD_SSH_OPTS[@]}" \
        -o PreferredAuthentications=password -o PubkeyAuthentication=no -l "$RD_LEGIT_USER" "$RD_SRV4" true </dev/null; then
        for i in $(seq 50); do
            tail -c +"$from" "$syslog" | grep -q "Accepted password for $RD_LEGIT_USER from $RD_LEG4 " && break
            sleep 0.1
        done
        if tail -c +"$from" "$syslog" | grep -q "Accepted password for $RD_LEGIT_USER from $RD_LEG4 "; then
            ok "legitimate ssh login after the bans"
        else
            ko "legitimate ssh login after the bans: ssh exited 0 but sshd logged no 'Accepted password' since"
        fi
    else
        ko "legitimate ssh login after the bans: ssh failed"
    fi
    # Each jail banned the attacker, none banned the legitimate client.
    local jail
    for jail in sshd dovecot postfix-sasl; do
        grep -qE "\[$jail\] Ban ($RD_ATK4|$RD_ATK6)\$" "$PCL_LOG" && ok "$jail banned the attacker" || ko "$jail did not ban the attacker"
    done
    if [[ ! -s $PCL_LOG ]]; then ko "no Portcullis log at $PCL_LOG"
    elif grep -qE " Ban ($RD_LEG4|$RD_LEG6)\$" "$PCL_LOG"; then ko "a jail banned the legitimate client"; else ok "no jail banned the legitimate client"; fi
    # recidive: three jails banned the attacker; recidive (maxretry 3) bans every port.
    for i in $(seq 30); do grep -q '\[recidive\] Ban' "$PCL_LOG" 2>/dev/null && break; sleep 1; done
    grep -q "\[recidive\] Ban $RD_ATK4" "$PCL_LOG" 2>/dev/null && ok "recidive banned the attacker" || ko "recidive did not ban the attacker"
    state=$(rd_probe "$RD_NS_ATK" "$RD_SRV4" 2222)
    [[ $state == refused ]] && ok "recidive: attacker refused on an unused port too" || ko "recidive: attacker $state on port 2222"
}

# Exact counts (not "at least"): Dovecot's login process writes one "(auth failed, N attempts …)" line per failed
# connection (the attacks start with one connection of 3 attempts); the dovecot jail counts N for each
# (<F-ATTEMPTS>), so its Total failed is the sum of N over the attacker's lines, and the legitimate client has none.
check_counts() {
    local log=$RD_T/logs/syslog-rfc3339.log want got lines multi
    lines=$(grep -E "dovecot: [a-z0-9]+-login: .*\(auth failed, [0-9]+ attempts?[^)]*\): .*rip=($RD_ATK4|$RD_ATK6), " "$log" || true)
    want=$(sed -E 's/.*\(auth failed, ([0-9]+) attempts?.*/\1/' <<<"$lines" | awk '{s += $1} END {print s + 0}')
    multi=$(sed -E 's/.*\(auth failed, ([0-9]+) attempts?.*/\1/' <<<"$lines" | awk '$1 > 1' | wc -l)
    got=$(rd_srv "$PCL_BIN" -s "$PCL_SOCKET" status dovecot | sed -n 's/.*Total failed:[[:space:]]*//p')
    if ((multi > 0)) && [[ $got == "$want" ]]; then
        ok "dovecot counted exactly $got attempts from $(grep -c . <<<"$lines") login-process lines ($multi with several attempts)"
    else
        ko "dovecot counted ${got:-nothing}, the attacker's lines stand for $want attempts ($multi lines with several)"
    fi
}

# A TCP listener on a port no jail names (2222), so that recidive's all-ports ban has something to refuse.
canary() {
    rd_srv "$RD_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 2222)); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
' </dev/null >/dev/null 2>&1 &
    RD_PIDS+=($!)
    rd_wait_port 2222
}

main() {
    rd_setup
    rd_sshd INFO
    rd_dovecot no syslog
    rd_postfix syslog
    pcl_config
    # Sanity: before any ban everything is reachable from both clients.
    local port
    canary
    for port in 22 587 993 2222; do
        [[ $(rd_probe "$RD_NS_ATK" "$RD_SRV4" $port) == open ]] || rd_die "port $port unreachable before the test"
    done
    local started=0 i
    if pcl_can_start; then
        pcl_start
        for i in $(seq 300); do
            [[ -S $PCL_SOCKET ]] && "$PCL_BIN" -s "$PCL_SOCKET" ping >/dev/null 2>&1 && { started=1; break; }
            sleep 0.1
        done
        ((started)) && ok "Portcullis started and answers ping" || ko "Portcullis did not answer ping within 30 s (see $RD_T/portcullis.out)"
    else
        ko "Portcullis cannot start: $PCL_BIN is not built or has no 'start' (set PCL_BIN or PCL_START)"
    fi
    rd_ssh_legit "$RD_SRV4"
    rd_dovecot_legit "$RD_SRV4"
    rd_postfix_legit "$RD_SRV4"
    rd_ssh_attacks "$RD_SRV4"
    rd_ssh_many "$RD_NS_ATK" "$RD_SRV6" "$RD_LEGIT_USER"
    # Three passwords on one IMAP connection first (before any dovecot ban): one line that stands for 3 attempts.
    rd_mail "$RD_NS_ATK" imap "$RD_SRV4" 993 "$RD_OTHER_USER" wrong-password login 3
    rd_dovecot_attacks_short "$RD_SRV4"
    rd_postfix_attacks_short "$RD_SRV4"
    sleep 1
    # With Portcullis running, bans cut the attacks short (that is the point), so the per-filter counts are only
    # checked without it.
    ((started)) || check_filters
    if ((started)); then
        check_bans
        check_counts
    else
        ko "ban checks not run: Portcullis is not running"
    fi
    rd_log "summary: $pass passed, $fail failed"
    echo "$pass passed, $fail failed"
    ((fail == 0))
}

main "$@"
