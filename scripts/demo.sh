#!/usr/bin/env bash
# The main job on defaults: Portcullis, on its own default configuration, bans a simulated SSH attacker inside a
# private network namespace. Installs what it needs, builds, then:
#   - creates two network namespaces (server, attacker) joined by a veth pair, with a TCP service on port 22;
#   - starts `portcullis -f start` in the server namespace on the shipped default tree (config/) with the sshd
#     jail reading a log file the demo writes, as OpenSSH would;
#   - the attacker connects (accepted), fails to log in five times (the lines sshd writes), and is banned in
#     nftables: its next connection is refused while another address still connects;
#   - shows `portcullis status sshd`, the real `fail2ban-client status sshd` against Portcullis's socket, the kernel
#     set, then unbans and stops;
#   - the host policy (the shipped config/firewall.conf plus a firewall.local) planned, applied, confirmed and
#     audited in the server namespace: ssh still connects, a stray service on 8081 is refused once it is applied.
# Everything it created is removed at the end; the host's ruleset is not touched.
# Then shows `portcullis regex` on a shipped OpenSSH log with the same filter.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
echo "==> swift build --product portcullis"
swift build --product portcullis 2>&1 | grep -E 'error|Build' | tail -2
BIN="$(swift build --show-bin-path)/portcullis"

ID=$$
SRV=pcl-demo-srv-$ID
ATK=pcl-demo-atk-$ID
TMP=$(mktemp -d /tmp/pcl-demo-XXXXXX)
PCL_PID=""
LSN_PID=""
STRAY_PID=""
cleanup() {
    [[ -n "$PCL_PID" ]] && kill "$PCL_PID" 2>/dev/null && wait "$PCL_PID" 2>/dev/null || true
    [[ -n "$STRAY_PID" ]] && kill "$STRAY_PID" 2>/dev/null && wait "$STRAY_PID" 2>/dev/null || true
    # A policy reverter still waiting (the demo stopped between apply and confirm): end it by its pid.
    for f in "$TMP"/run/policy-*.pending; do
        [[ -f "$f" ]] && kill "$(sed -n 's/^reverter=//p' "$f")" 2>/dev/null || true
    done
    [[ -n "$LSN_PID" ]] && kill "$LSN_PID" 2>/dev/null && wait "$LSN_PID" 2>/dev/null || true
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$ATK" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

echo "==> network namespaces $SRV (192.0.2.1) and $ATK (attacker 192.0.2.66, neighbour 192.0.2.7)"
ip netns add "$SRV"
ip netns add "$ATK"
ip link add "vs$ID" type veth peer name "va$ID"
ip link set "vs$ID" netns "$SRV"
ip link set "va$ID" netns "$ATK"
ip -n "$SRV" addr add 192.0.2.1/24 dev "vs$ID"
ip -n "$ATK" addr add 192.0.2.66/24 dev "va$ID"
ip -n "$ATK" addr add 192.0.2.7/24 dev "va$ID"
for ns in "$SRV" "$ATK"; do ip -n "$ns" link set lo up; done
ip -n "$SRV" link set "vs$ID" up
ip -n "$ATK" link set "va$ID" up

ip netns exec "$SRV" /usr/bin/python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 22)); s.listen(16)
while True:
    c, _ = s.accept(); c.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"); c.close()
' &
LSN_PID=$!

try() {  # try SOURCE [PORT]: connect to the server's port (default 22) from SOURCE in the attacker namespace
    ip netns exec "$ATK" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(); s.settimeout(2); s.bind((sys.argv[1], 0))
try:
    s.connect(("192.0.2.1", int(sys.argv[2]))); print("connected:", s.recv(64).decode().strip())
except ConnectionRefusedError:
    print("REFUSED")
except OSError as e:
    print("failed:", e)
' "$1" "${2:-22}"
}

echo "==> Portcullis on the shipped default tree (config/), sshd jail reading $TMP/auth.log"
cp -r config "$TMP/conf"
cat > "$TMP/conf/portcullis.local" <<EOT
[Definition]
logtarget = $TMP/portcullis.log
socket = $TMP/portcullis.sock
pidfile = $TMP/portcullis.pid
dbfile = $TMP/portcullis.sqlite3
EOT
cat > "$TMP/conf/jail.local" <<EOT
[sshd]
enabled = true
backend = polling
logpath = $TMP/auth.log
EOT
touch "$TMP/auth.log"
ip netns exec "$SRV" "$BIN" -c "$TMP/conf" -f start &
PCL_PID=$!
for _ in $(seq 100); do "$BIN" -s "$TMP/portcullis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" -s "$TMP/portcullis.sock" ping

echo "==> the attacker connects before any failure"
try 192.0.2.66
echo "==> it fails to log in 5 times (sshd's own lines, appended to the log)"
for i in 1 2 3 4 5; do
    printf '%s demo sshd[%d]: Failed password for invalid user admin%d from 192.0.2.66 port %d ssh2\n' \
        "$(date +%Y-%m-%dT%H:%M:%S.%6N%:z)" $((4000 + i)) "$i" $((50000 + i)) | tee -a "$TMP/auth.log"
done
sleep 0.5
echo "==> its next connection, and a neighbour's"
try 192.0.2.66
try 192.0.2.7

echo "==> portcullis status sshd"
"$BIN" -s "$TMP/portcullis.sock" status sshd
echo "==> the real fail2ban-client, pointed at Portcullis's socket"
fail2ban-client -s "$TMP/portcullis.sock" status sshd || true
echo "==> the kernel's view: nft list table inet portcullis (in $SRV)"
ip netns exec "$SRV" nft list table inet portcullis
echo "==> Portcullis's log (fail2ban's format)"
grep -E "Found|Ban" "$TMP/portcullis.log" | head -8

echo "==> portcullis set sshd unbanip 192.0.2.66"
"$BIN" -s "$TMP/portcullis.sock" set sshd unbanip 192.0.2.66
try 192.0.2.66
"$BIN" -s "$TMP/portcullis.sock" stop
wait "$PCL_PID" 2>/dev/null || true
PCL_PID=""

echo
echo "==> the host policy: config/firewall.conf (ssh, port-scan guard, anti-spoofing, reject) + firewall.local"
cat > "$TMP/conf/firewall.local" <<EOT
[groups]
admin = 198.51.100.0/24, 2001:db8:1::/48
[services]
munin = 4949 from admin
EOT
cat "$TMP/conf/firewall.local"
ip netns exec "$SRV" /usr/bin/python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8081)); s.listen(16)
while True:
    c, _ = s.accept(); c.sendall(b"stray service\r\n"); c.close()
' &
STRAY_PID=$!
sleep 0.3
echo "==> before: a stray service on 8081 answers from outside"
try 192.0.2.7 8081
echo "==> portcullis firewall plan (in $SRV)"
ip netns exec "$SRV" "$BIN" firewall plan -c "$TMP/conf"
echo "==> portcullis firewall apply --timeout 60 (reverted unless confirmed)"
ip netns exec "$SRV" "$BIN" firewall apply -c "$TMP/conf" --run-dir "$TMP/run" --timeout 60
echo "==> ssh still connects, the stray port is refused"
try 192.0.2.7 22
try 192.0.2.7 8081
echo "==> portcullis firewall confirm"
ip netns exec "$SRV" "$BIN" firewall confirm --run-dir "$TMP/run"
echo "==> portcullis audit (listening sockets against the policy; exit 1 when there are findings)"
ip netns exec "$SRV" "$BIN" audit -c "$TMP/conf" || true
kill "$STRAY_PID" 2>/dev/null && wait "$STRAY_PID" 2>/dev/null || true
STRAY_PID=""

echo
echo "==> portcullis regex samples/auth.log sshd   (the same filter on a shipped OpenSSH log)"
"$BIN" regex --conf config samples/auth.log sshd | tail -12
