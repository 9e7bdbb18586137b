#!/usr/bin/env bash
# Shared functions for the real-daemon scripts: network namespaces, a private syslog, OpenSSH, Dovecot, Postfix and
# munin-node started from configuration files in a temporary directory, and the clients that attack them.
#
# Source this file; do not run it. Everything runs as root and is undone by `rd_cleanup` (installed as an EXIT trap
# by `rd_setup` or `rd_attach`): processes are stopped by the PIDs we recorded, the namespaces we made deleted, the
# temporary directory removed.
# The host is not touched: the daemons live in the "server" network namespace, inside a private mount and UTS
# namespace where /dev, /run, /var/log, /etc/passwd and /etc/shadow are private copies; nothing is enabled in systemd.
#
# Addresses are documentation ranges, used only inside our own namespaces:
#   server   203.0.113.25   2001:db8:25::25      (OpenSSH 22, Postfix 25/465/587, Dovecot 143/993/110/995)
#   attacker 192.0.2.7      2001:db8:bad::7
#   legit    198.51.100.8   2001:db8:600d::8

RD_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RD_PREFIX="${RD_PREFIX:-pcl-rd}"
RD_NS_SRV="${RD_PREFIX}-srv"
RD_NS_ATK="${RD_PREFIX}-atk"
RD_NS_LEG="${RD_PREFIX}-leg"
RD_SRV4=203.0.113.25 RD_SRV6=2001:db8:25::25
RD_ATK4=192.0.2.7 RD_ATK6=2001:db8:bad::7
RD_LEG4=198.51.100.8 RD_LEG6=2001:db8:600d::8
RD_HOSTNAME=mail
RD_PY=/usr/bin/python3
# Passwords of the accounts that exist on the server (system accounts for sshd, passwd-file for Dovecot).
RD_LEGIT_USER=alice RD_LEGIT_PASS='Corr3ct-Horse-Battery'
RD_OTHER_USER=bob RD_OTHER_PASS='Bob-s3cret-Pass'

# Where the daemons listen: "server" (the server's two addresses above) or "any" (every address, as on a host that
# faces several networks; serve.sh).
RD_LISTEN=${RD_LISTEN:-server}
# The DNS blocklist zone Postfix consults, answered by dnsd.py on the namespace's 127.0.0.1; empty: no DNS server in
# the namespace, no blocklist, and smtpd looks up no client names (it would wait for an answer that never comes).
RD_RBL_ZONE=${RD_RBL_ZONE-rbl.example.test}
# The networks munin-node answers besides loopback (cidr_allow), separated by spaces.
RD_MUNIN_ALLOW=${RD_MUNIN_ALLOW:-}

RD_T="" RD_HOLDER="" RD_PIDS=() RD_OWNED_NS=()

# rd_note_user records a user name a client tried, so that the annotator knows the true user of each line.
rd_note_user() { grep -qxF -- "$1" "$RD_T/logs/users.txt" 2>/dev/null || printf '%s\n' "$1" >>"$RD_T/logs/users.txt"; }

rd_log() { printf '[realdaemons] %s\n' "$*" >&2; }
rd_die() { rd_log "error: $*"; exit 1; }

# rd_deps installs the daemons and clients from Debian, without starting any service (policy-rc.d refuses).
rd_deps() {
    local pkgs=(openssh-server openssh-client sshpass dovecot-imapd dovecot-pop3d postfix rsyslog swaks openssl
        iproute2 util-linux python3 nftables fail2ban) missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    rd_log "installing ${missing[*]}"
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    local rc=$?
    ((made_policy)) && rm -f "$policy"
    return $rc
}

# rd_srv runs a command inside the server's network, mount and UTS namespaces.
rd_srv() { nsenter -t "$RD_HOLDER" -n -m -u -- "$@"; }
rd_atk() { ip netns exec "$RD_NS_ATK" "$@"; }
rd_leg() { ip netns exec "$RD_NS_LEG" "$@"; }

# rd_holder_pids prints the PIDs of the processes in the holder's mount namespace (the daemons we started there and
# their children), the holder itself excepted.
rd_holder_pids() {
    [[ -n $RD_HOLDER ]] || return 0
    local mnt dir
    mnt=$(readlink "/proc/$RD_HOLDER/ns/mnt" 2>/dev/null) || return 0
    # mnt:[INODE]; one find over /proc, not a readlink per process.
    find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/mnt' -lname "mnt:?${mnt//[^0-9]/}?" -printf '%h\n' \
        2>/dev/null | while read -r dir; do
        dir=${dir#/proc/}
        [[ ${dir%/ns} == "$RD_HOLDER" ]] || echo "${dir%/ns}"
    done
}

rd_cleanup() {
    local rc=$? pid f ns
    set +e
    rd_log "cleaning up"
    rd_stop_all
    # What is left in the holder's mount namespace was started by us (in a namespace we did not make, the only way
    # to tell our processes from the owner's).
    for pid in $(rd_holder_pids); do kill "$pid" 2>/dev/null; done
    sleep 0.2
    for pid in $(rd_holder_pids); do kill -9 "$pid" 2>/dev/null; done
    if [[ -n $RD_HOLDER ]] && kill -0 "$RD_HOLDER" 2>/dev/null; then kill "$RD_HOLDER"; fi
    for ns in "${RD_OWNED_NS[@]}"; do
        if ip netns list | grep -qw "$ns"; then
            # Anything still running in our namespaces was started by us: stop it by PID.
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
            sleep 0.2
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
            ip netns del "$ns"
        fi
    done
    if [[ -n $RD_T && -d $RD_T && -z ${RD_KEEP:-} ]]; then rm -rf "$RD_T"; fi
    [[ -n ${RD_KEEP:-} ]] && rd_log "kept $RD_T"
    return $rc
}

# rd_alive PID: the process runs (a zombie that its parent, or an init that reaps slowly, has not collected yet is
# gone: it answers kill -0 all the same).
rd_alive() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# rd_stop PID…: stops the processes (TERM, then KILL for those still there after 5 s), waiting for them to go.
rd_stop() {
    local pid i left=("$@")
    ((${#left[@]})) || return 0
    kill "${left[@]}" 2>/dev/null || true
    for i in $(seq 100); do
        local still=()
        for pid in "${left[@]}"; do if rd_alive "$pid"; then still+=("$pid"); fi; done
        ((${#still[@]})) || return 0
        left=("${still[@]}")
        sleep 0.05
    done
    kill -9 "${left[@]}" 2>/dev/null || true
}

# rd_pid_of FILE: the PID in a pid file, when that process runs.
rd_pid_of() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(head -n1 "$1" | tr -dc 0-9)
    [[ -n $pid ]] && rd_alive "$pid" && echo "$pid"
}

# rd_stop_pidfile stops the process named in a pid file, waiting for it to go.
rd_stop_pidfile() {
    local pid
    pid=$(rd_pid_of "$1") || return 0
    rd_stop "$pid"
}

# rd_stop_all stops every daemon at once, then our rsyslogd (which logs their goodbyes).
rd_stop_all() {
    [[ -n $RD_T && -d $RD_T ]] || return 0
    local f pids=()
    for f in run/sshd.pid dovecot/run/master.pid postfix/spool/pid/master.pid run/dnsd.pid run/munin-node.pid; do
        f=$(rd_pid_of "$RD_T/$f") && pids+=("$f")
    done
    rd_stop "${pids[@]}" "${RD_PIDS[@]}"
    rd_stop_pidfile "$RD_T/run/rsyslogd.pid"
}

# rd_netns creates the three namespaces and the two veth links (idempotent: stale ones are removed first).
rd_netns() {
    local ns
    for ns in "$RD_NS_SRV" "$RD_NS_ATK" "$RD_NS_LEG"; do
        if ip netns list | grep -qw "$ns"; then
            local pid
            for pid in $(ip netns pids "$ns"); do kill "$pid" 2>/dev/null; done
            ip netns del "$ns"
        fi
        ip netns add "$ns"
        RD_OWNED_NS+=("$ns")
        ip -n "$ns" link set lo up
    done
    ip link add "${RD_PREFIX}-a0" netns "$RD_NS_SRV" type veth peer name "${RD_PREFIX}-a1" netns "$RD_NS_ATK"
    ip link add "${RD_PREFIX}-l0" netns "$RD_NS_SRV" type veth peer name "${RD_PREFIX}-l1" netns "$RD_NS_LEG"
    ip -n "$RD_NS_SRV" addr add "$RD_SRV4/32" dev lo
    ip -n "$RD_NS_SRV" addr add "$RD_SRV6/128" dev lo
    ip -n "$RD_NS_SRV" addr add 192.0.2.1/24 dev "${RD_PREFIX}-a0"
    ip -n "$RD_NS_SRV" addr add 2001:db8:bad::1/64 dev "${RD_PREFIX}-a0" nodad
    ip -n "$RD_NS_SRV" addr add 198.51.100.1/24 dev "${RD_PREFIX}-l0"
    ip -n "$RD_NS_SRV" addr add 2001:db8:600d::1/64 dev "${RD_PREFIX}-l0" nodad
    ip -n "$RD_NS_ATK" addr add "$RD_ATK4/24" dev "${RD_PREFIX}-a1"
    ip -n "$RD_NS_ATK" addr add "$RD_ATK6/64" dev "${RD_PREFIX}-a1" nodad
    ip -n "$RD_NS_LEG" addr add "$RD_LEG4/24" dev "${RD_PREFIX}-l1"
    ip -n "$RD_NS_LEG" addr add "$RD_LEG6/64" dev "${RD_PREFIX}-l1" nodad
    ip -n "$RD_NS_SRV" link set "${RD_PREFIX}-a0" up
    ip -n "$RD_NS_SRV" link set "${RD_PREFIX}-l0" up
    ip -n "$RD_NS_ATK" link set "${RD_PREFIX}-a1" up
    ip -n "$RD_NS_LEG" link set "${RD_PREFIX}-l1" up
    ip -n "$RD_NS_ATK" route add "$RD_SRV4/32" via 192.0.2.1
    ip -n "$RD_NS_ATK" -6 route add "$RD_SRV6/128" via 2001:db8:bad::1
    ip -n "$RD_NS_LEG" route add "$RD_SRV4/32" via 198.51.100.1
    ip -n "$RD_NS_LEG" -6 route add "$RD_SRV6/128" via 2001:db8:600d::1
}

# rd_private_root starts the holder process whose mount and UTS namespaces the daemons share, and makes /dev, /run,
# /var/log, /etc/passwd, /etc/shadow and /etc/resolv.conf private there.
rd_private_root() {
    ip netns exec "$RD_NS_SRV" unshare --mount --uts --propagation private sleep infinity </dev/null >/dev/null 2>&1 &
    RD_HOLDER=$!
    local i
    for i in $(seq 50); do
        [[ $(readlink "/proc/$RD_HOLDER/ns/mnt") != $(readlink /proc/self/ns/mnt) && \
           $(readlink "/proc/$RD_HOLDER/exe") == */sleep ]] && break
        sleep 0.1
    done
    mkdir -p "$RD_T/hostdev" "$RD_T/etc"
    # Accounts for sshd/PAM: the host's files plus our two users, seen only inside the namespace.
    cp /etc/passwd /etc/shadow /etc/group "$RD_T/etc/"
    local u
    for u in "$RD_LEGIT_USER:2001" "$RD_OTHER_USER:2002"; do
        local name=${u%%:*} uid=${u##*:}
        mkdir -p "$RD_T/home/$name" && chown "$uid:$uid" "$RD_T/home/$name"
        echo "$name:x:$uid:$uid::$RD_T/home/$name:/bin/sh" >>"$RD_T/etc/passwd"
        echo "$name:x:$uid:" >>"$RD_T/etc/group"
    done
    local h1 h2
    h1=$(openssl passwd -6 "$RD_LEGIT_PASS") h2=$(openssl passwd -6 "$RD_OTHER_PASS")
    echo "$RD_LEGIT_USER:$h1:19000:0:99999:7:::" >>"$RD_T/etc/shadow"
    echo "$RD_OTHER_USER:$h2:19000:0:99999:7:::" >>"$RD_T/etc/shadow"
    chmod 640 "$RD_T/etc/shadow"
    echo "nameserver 127.0.0.1" >"$RD_T/etc/resolv.conf"
    echo "127.0.0.1 localhost" >"$RD_T/etc/hosts"
    echo "$RD_SRV4 mail.example.test mail" >>"$RD_T/etc/hosts"
    rd_srv bash -euc "
        hostname $RD_HOSTNAME
        mount --rbind /dev '$RD_T/hostdev'
        mount -t tmpfs -o mode=755 pcl-dev /dev
        for n in null zero full random urandom tty; do touch /dev/\$n; mount --bind '$RD_T/hostdev'/\$n /dev/\$n; done
        mkdir -p /dev/pts /dev/shm
        mount --rbind '$RD_T/hostdev/pts' /dev/pts
        ln -s pts/ptmx /dev/ptmx
        mount -t tmpfs -o mode=1777 pcl-shm /dev/shm
        mount -t tmpfs -o mode=755 pcl-run /run
        mkdir -p /run/sshd && chmod 755 /run/sshd
        mount -t tmpfs -o mode=755 pcl-varlog /var/log
        for f in passwd shadow group resolv.conf hosts; do mount --bind '$RD_T/etc/'\$f /etc/\$f; done
    "
}

# rd_certs makes a self-signed certificate for the TLS services.
rd_certs() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=mail.example.test" \
        -keyout "$RD_T/tls/key.pem" -out "$RD_T/tls/cert.pem" >/dev/null 2>&1
    chmod 644 "$RD_T/tls/cert.pem"; chmod 600 "$RD_T/tls/key.pem"
}

# rd_rsyslog starts our own rsyslogd on the namespace's private /dev/log, writing every message twice: in the
# traditional format (`Nov 30 01:02:03 mail sshd[42]: …`) and in RFC 3339 (Debian 12's default file format).
rd_rsyslog() {
    cat >"$RD_T/rsyslog.conf" <<CONF
global(workDirectory="$RD_T/rsyslog-work")
module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0")
*.* action(type="omfile" file="$RD_T/logs/syslog-traditional.log" template="RSYSLOG_TraditionalFileFormat")
*.* action(type="omfile" file="$RD_T/logs/syslog-rfc3339.log" template="RSYSLOG_FileFormat")
CONF
    mkdir -p "$RD_T/rsyslog-work"
    rd_srv rsyslogd -f "$RD_T/rsyslog.conf" -i "$RD_T/run/rsyslogd.pid"
    local i
    for i in $(seq 50); do [[ -s $RD_T/run/rsyslogd.pid ]] && rd_srv test -S /dev/log && return 0; sleep 0.1; done
    rd_die "rsyslogd did not start"
}

# rd_wait_port waits until something listens on the server's port.
rd_wait_port() {
    local port=$1 i
    for i in $(seq 100); do
        rd_srv ss -Hltn "sport = :$port" | grep -q . && return 0
        sleep 0.1
    done
    rd_die "nothing listens on port $port"
}

# rd_listen DAEMON: the listening addresses in DAEMON's configuration syntax, after RD_LISTEN.
rd_listen() {
    case $1:$RD_LISTEN in
    sshd:any) printf 'ListenAddress 0.0.0.0\nListenAddress [::]\n' ;;
    sshd:*) printf 'ListenAddress %s\nListenAddress %s\n' "$RD_SRV4" "$RD_SRV6" ;;
    dovecot:any) echo "*, ::" ;;
    dovecot:*) echo "$RD_SRV4, $RD_SRV6" ;;
    postfix:any) echo all ;;
    postfix:*) echo "$RD_SRV4, [$RD_SRV6]" ;;
    esac
}

rd_sshd_keys() {
    ssh-keygen -q -t ed25519 -N '' -f "$RD_T/ssh/host_ed25519" <<<y >/dev/null
    ssh-keygen -q -t ed25519 -N '' -f "$RD_T/ssh/attacker_key" -C attacker <<<y >/dev/null
}

# rd_sshd [LOGLEVEL]: (re)starts sshd with Debian's defaults and the given LogLevel (INFO by default).
rd_sshd() {
    local level=${1:-INFO}
    rd_stop_pidfile "$RD_T/run/sshd.pid"
    [[ -s $RD_T/ssh/host_ed25519 ]] || rd_sshd_keys
    cat >"$RD_T/ssh/sshd_config" <<CONF
# Debian 12's defaults, listening on the namespace's address only (or on every address).
$(rd_listen sshd)
Port 22
HostKey $RD_T/ssh/host_ed25519
PidFile $RD_T/run/sshd.pid
UsePAM yes
KbdInteractiveAuthentication ${RD_SSH_KBDINT:-yes}
PasswordAuthentication yes
PubkeyAuthentication yes
PermitRootLogin prohibit-password
LogLevel $level
MaxAuthTries 6
X11Forwarding no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
${RD_SSHD_EXTRA:-}
CONF
    rd_srv /usr/sbin/sshd -t -f "$RD_T/ssh/sshd_config"
    rd_srv /usr/sbin/sshd -f "$RD_T/ssh/sshd_config"
    rd_wait_port 22
}

# rd_tmpdir makes the temporary directory RD_T and installs the cleanup.
rd_tmpdir() {
    [[ $(id -u) == 0 ]] || rd_die "run as root"
    RD_T=$(mktemp -d /tmp/pcl-realdaemons.XXXXXX)
    chmod 755 "$RD_T"
    trap rd_cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$RD_T"/{run,logs,ssh,tls,capture}
    chmod 755 "$RD_T/run" "$RD_T/logs"
}

# rd_setup prepares everything common to every daemon, in three namespaces of its own; call it first. RD_T is the
# temporary directory.
rd_setup() {
    rd_tmpdir
    rd_deps
    rd_netns
    rd_private_root
    rd_certs
    rd_rsyslog
}

# rd_attach NETNS: the same in an existing network namespace that the caller made, addressed and will delete
# (tests/e2e/policy_e2e.py through serve.sh); installs nothing and leaves the namespace and its other processes alone.
rd_attach() {
    ip netns list | grep -qw -- "$1" || rd_die "no network namespace $1"
    RD_NS_SRV=$1
    rd_tmpdir
    rd_private_root
    rd_certs
    rd_rsyslog
}

# ---------------------------------------------------------------------------------------------------------------
# Clients.

RD_SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5
    -o BatchMode=no -o NumberOfPasswordPrompts=1)

# rd_ssh_try NS ADDR USER PASSWORD METHOD [extra ssh options…]: one SSH login attempt; never fails the script.
rd_ssh_try() {
    local ns=$1 addr=$2 user=$3 pass=$4 method=$5; shift 5
    rd_note_user "$user"
    ip netns exec "$ns" timeout 20 sshpass -p "$pass" ssh "${RD_SSH_OPTS[@]}" \
        -o PreferredAuthentications="$method" -o PubkeyAuthentication="$([[ $method == publickey ]] && echo yes || echo no)" \
        "$@" -l "$user" "$addr" true </dev/null >/dev/null 2>&1 || true
}

# rd_ssh_many NS ADDR USER: one connection with eight wrong passwords (sshd's MaxAuthTries is 6).
rd_ssh_many() {
    local ns=$1 addr=$2 user=$3
    rd_note_user "$user"
    printf '#!/bin/sh\necho wrong-password\n' >"$RD_T/ssh/askpass" && chmod 755 "$RD_T/ssh/askpass"
    ip netns exec "$ns" env SSH_ASKPASS="$RD_T/ssh/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=none \
        timeout 60 setsid ssh -o NumberOfPasswordPrompts=8 "${RD_SSH_OPTS[@]}" \
        -o PreferredAuthentications=password -o PubkeyAuthentication=no -l "$user" "$addr" true \
        </dev/null >/dev/null 2>&1 || true
}

# rd_ssh_attacks ADDR: the attacker's SSH repertoire against one server address.
rd_ssh_attacks() {
    local a=$1 ns=$RD_NS_ATK
    rd_log "ssh attacks on $a"
    rd_ssh_try "$ns" "$a" "$RD_LEGIT_USER" wrong-password password                # known user, wrong password
    rd_ssh_try "$ns" "$a" nosuchuser wrong-password password                       # unknown user
    rd_ssh_try "$ns" "$a" root wrong-password password                             # root (prohibit-password)
    rd_ssh_try "$ns" "$a" "$RD_LEGIT_USER" wrong-password keyboard-interactive     # PAM keyboard-interactive
    rd_ssh_try "$ns" "$a" admin wrong-password keyboard-interactive                # … unknown user
    rd_ssh_try "$ns" "$a" "$RD_LEGIT_USER" x publickey -i "$RD_T/ssh/attacker_key" -o IdentitiesOnly=yes
    rd_ssh_try "$ns" "$a" oracle x publickey -i "$RD_T/ssh/attacker_key" -o IdentitiesOnly=yes
    # Too many authentication failures: more password prompts than MaxAuthTries allows (sshpass answers one
    # prompt only, so an askpass helper answers them all).
    rd_ssh_many "$ns" "$a" "$RD_LEGIT_USER"
    rd_ssh_many "$ns" "$a" ghost
    # User names that try to smuggle another address into the log line.
    rd_ssh_try "$ns" "$a" "root from $RD_LEG4 port 22" wrong-password password
    rd_ssh_try "$ns" "$a" "x@$RD_LEG4" wrong-password password
    rd_ssh_try "$ns" "$a" "root from $RD_LEG4 port 22 ssh2" wrong-password keyboard-interactive
    rd_ssh_try "$ns" "$a" "invalid user x from $RD_LEG4 port 22" wrong-password password
    # Pre-authentication noise (ddos/aggressive modes): no identification, bad banner, no common algorithms.
    ip netns exec "$ns" "$RD_PY" - "$a" <<'PY' 2>/dev/null || true
import socket, sys, time
a = sys.argv[1]
def conn():
    return socket.create_connection((a, 22), timeout=5)
s = conn(); s.close()                                     # connect and close before the banner
s = conn(); s.recv(256); s.close()                        # read the banner, send nothing
s = conn(); s.recv(256); s.sendall(b"GET / HTTP/1.1\r\n\r\n"); time.sleep(0.5); s.close()
s = conn(); s.recv(256); s.sendall(b"SSH-2.0-Probe\r\n"); time.sleep(0.5); s.close()
PY
    ip netns exec "$ns" timeout 20 ssh "${RD_SSH_OPTS[@]}" -o HostKeyAlgorithms=rsa-sha2-512 -l root "$a" true \
        </dev/null >/dev/null 2>&1 || true
    ip netns exec "$ns" timeout 20 ssh "${RD_SSH_OPTS[@]}" -o KexAlgorithms=diffie-hellman-group14-sha1 -l root "$a" true \
        </dev/null >/dev/null 2>&1 || true
    ip netns exec "$ns" timeout 20 ssh "${RD_SSH_OPTS[@]}" -o Ciphers=aes128-cbc -l root "$a" true \
        </dev/null >/dev/null 2>&1 || true
}

# rd_ssh_legit ADDR: the legitimate user logs in with the right password (and once with a typo first).
rd_ssh_legit() {
    local a=$1
    rd_log "ssh legit login on $a"
    ip netns exec "$RD_NS_LEG" timeout 20 sshpass -p "$RD_LEGIT_PASS" ssh "${RD_SSH_OPTS[@]}" \
        -o PreferredAuthentications=password -o PubkeyAuthentication=no -l "$RD_LEGIT_USER" "$a" true \
        </dev/null || rd_log "warning: legit ssh login on $a failed"
}

# rd_capture_sshd_policy: users refused by sshd_config (DenyUsers, AllowGroups) still fail like unknown users.
rd_capture_sshd_policy() {
    RD_SSHD_EXTRA="DenyUsers $RD_OTHER_USER" rd_sshd INFO
    rd_ssh_try "$RD_NS_ATK" "$RD_SRV4" "$RD_OTHER_USER" wrong-password password
    rd_ssh_try "$RD_NS_ATK" "$RD_SRV6" "$RD_OTHER_USER" wrong-password keyboard-interactive
    rd_ssh_legit "$RD_SRV4"
}

# rd_capture_sshd: sshd at LogLevel INFO (Debian's default) and VERBOSE, attacked over IPv4 and IPv6.
rd_capture_sshd() {
    rd_sshd INFO
    rd_ssh_legit "$RD_SRV4"
    rd_ssh_attacks "$RD_SRV4"
    rd_ssh_many "$RD_NS_ATK" "$RD_SRV4" "$RD_LEGIT_USER"
    rd_ssh_attacks "$RD_SRV6"
    rd_ssh_many "$RD_NS_ATK" "$RD_SRV6" ghost
    rd_sshd VERBOSE
    rd_ssh_legit "$RD_SRV6"
    rd_ssh_attacks "$RD_SRV4"
    rd_ssh_many "$RD_NS_ATK" "$RD_SRV6" "$RD_LEGIT_USER"
    rd_ssh_legit "$RD_SRV4"
}

# ---------------------------------------------------------------------------------------------------------------
# Dovecot: IMAP (143, 993) and POP3 (110, 995), users in a passwd-file, every SASL mechanism we attack with.

# rd_dovecot VERBOSE LOG [DISABLE_PLAINTEXT]: (re)starts Dovecot. VERBOSE is auth_verbose (yes|no; Debian's default
# is no); LOG is "syslog" or "file" (log_path = $RD_T/logs/dovecot.log); DISABLE_PLAINTEXT is
# disable_plaintext_auth (no here by default so that ports 143 and 110 accept passwords; Debian's default is yes).
# RD_DOVECOT_TLS_ONLY=1: no listener on 143 and 110, only imaps (993) and pop3s (995).
rd_dovecot() {
    local verbose=${1:-yes} log=${2:-syslog} plaintext=${3:-no} d=$RD_T/dovecot
    rd_stop_pidfile "$d/run/master.pid"
    mkdir -p "$d"/{run,state,mail} "$RD_T/postfix/spool/private"
    chmod 755 "$d" "$d/run"
    chmod 1777 "$d/mail"
    # The auth socket for Postfix lives in Postfix's private queue directory, which Postfix wants to own.
    chown postfix "$RD_T/postfix/spool/private"; chmod 700 "$RD_T/postfix/spool/private"
    cat >"$d/users" <<USERS
$RD_LEGIT_USER:{PLAIN}$RD_LEGIT_PASS::::::
$RD_OTHER_USER:{PLAIN}$RD_OTHER_PASS::::::
USERS
    chown root:dovecot "$d/users"; chmod 640 "$d/users"
    local logline="log_path = syslog"
    [[ $log == file ]] && logline="log_path = $RD_T/logs/dovecot.log"
    cat >"$d/dovecot.conf" <<CONF
# Dovecot 2.3 as Debian 12 ships it, reduced to what a mail server with IMAP, POP3 and SMTP AUTH needs.
protocols = imap pop3
listen = $(rd_listen dovecot)
base_dir = $d/run
state_dir = $d/state

$logline
syslog_facility = mail
auth_verbose = $verbose
auth_failure_delay = 0
ssl = yes
ssl_cert = <$RD_T/tls/cert.pem
ssl_key = <$RD_T/tls/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = $plaintext
auth_mechanisms = plain login$( [[ ${RD_DOVECOT_PASSDB:-file} == pam ]] || echo " cram-md5 scram-sha-1 scram-sha-256")
mail_location = maildir:$d/mail/%u
first_valid_uid = 1000
$( if [[ ${RD_DOVECOT_PASSDB:-file} == pam ]]; then
     printf 'passdb {\n  driver = pam\n}\n'
   else
     printf 'passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%%u %s\n}\n' "$d/users"
   fi )
userdb {
  driver = static
  args = uid=65534 gid=65534 home=$d/mail/%u
}
service auth {
  unix_listener $RD_T/postfix/spool/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service imap-login {
  inet_listener imap {
    port = $( [[ ${RD_DOVECOT_TLS_ONLY:-} == 1 ]] && echo 0 || echo 143 )
  }
  inet_listener imaps {
    port = 993
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = $( [[ ${RD_DOVECOT_TLS_ONLY:-} == 1 ]] && echo 0 || echo 110 )
  }
  inet_listener pop3s {
    port = 995
    ssl = yes
  }
}
protocol pop3 {
  pop3_uidl_format = %08Xu%08Xv
}
CONF
    rd_srv dovecot -c "$d/dovecot.conf"
    rd_wait_port 993
    rd_wait_port 995
}

# rd_mail NS PROTO ADDR PORT USER PASSWORD METHOD [COUNT]: one client connection (never fails the script).
rd_mail() {
    local ns=$1; shift
    rd_note_user "$4"
    ip netns exec "$ns" timeout 60 "$RD_PY" "$RD_DIR/clients.py" "$@" </dev/null >/dev/null 2>>"$RD_T/clients.err" || true
}

# rd_dovecot_attacks ADDR: every way the attacker fails to log in to IMAP and POP3.
rd_dovecot_attacks() {
    local a=$1 ns=$RD_NS_ATK m port
    rd_log "dovecot attacks on $a"
    for port in 143 993; do
        rd_mail "$ns" imap "$a" $port "$RD_LEGIT_USER" wrong-password login
        rd_mail "$ns" imap "$a" $port nosuchuser wrong-password login
    done
    for m in plain login-sasl cram-md5 scram-sha-1 scram-sha-256; do
        rd_mail "$ns" imap "$a" 993 "$RD_LEGIT_USER" wrong-password "$m"
        rd_mail "$ns" imap "$a" 993 "nobody-$m" wrong-password "$m"
    done
    rd_mail "$ns" imap "$a" 993 "$RD_OTHER_USER" wrong-password login 3          # three attempts, one connection
    for port in 110 995; do
        rd_mail "$ns" pop3 "$a" $port "$RD_LEGIT_USER" wrong-password user
        rd_mail "$ns" pop3 "$a" $port nosuchuser wrong-password user
    done
    for m in plain cram-md5 scram-sha-256; do
        rd_mail "$ns" pop3 "$a" 995 "$RD_LEGIT_USER" wrong-password "$m"
    done
    rd_mail "$ns" pop3 "$a" 995 "$RD_OTHER_USER" wrong-password user 3
    # User names that try to smuggle another address into the log line.
    rd_mail "$ns" imap "$a" 993 "x, rip=$RD_LEG4, lip=$RD_SRV4" wrong-password login
    rd_mail "$ns" imap "$a" 993 "admin>, rip=$RD_LEG4" wrong-password plain
    rd_mail "$ns" imap "$a" 993 "x@$RD_LEG4" wrong-password login
    rd_mail "$ns" pop3 "$a" 995 "y,$RD_LEG4,<z>" wrong-password user
    rd_mail "$ns" imap "$a" 993 "u rip=$RD_LEG6" wrong-password scram-sha-1
}

# rd_dovecot_attacks_short ADDR: a few of the attacks (Dovecot's per-address auth penalty makes each attempt slow).
rd_dovecot_attacks_short() {
    local a=$1 ns=$RD_NS_ATK
    rd_log "dovecot attacks (short) on $a"
    rd_mail "$ns" imap "$a" 993 "$RD_LEGIT_USER" wrong-password login
    rd_mail "$ns" imap "$a" 143 nosuchuser wrong-password plain
    rd_mail "$ns" imap "$a" 993 "$RD_LEGIT_USER" wrong-password scram-sha-256
    rd_mail "$ns" pop3 "$a" 995 "$RD_LEGIT_USER" wrong-password user
    rd_mail "$ns" pop3 "$a" 110 nosuchuser wrong-password user
    rd_mail "$ns" imap "$a" 993 "$RD_OTHER_USER" wrong-password login 2
    rd_mail "$ns" imap "$a" 993 "admin>, rip=$RD_LEG4" wrong-password plain
}

# rd_dovecot_noise ADDR: connections that never complete an attempt, and plain-text logins Dovecot refuses (run
# with disable_plaintext_auth = yes).
rd_dovecot_noise() {
    local a=$1 ns=$RD_NS_ATK
    rd_log "dovecot noise on $a"
    rd_mail "$ns" imap "$a" 993 "" "" none
    rd_mail "$ns" imap "$a" 993 "$RD_LEGIT_USER" wrong-password abandon
    rd_mail "$ns" imap "$a" 143 "$RD_LEGIT_USER" wrong-password login
    rd_mail "$ns" pop3 "$a" 110 nosuchuser wrong-password user
    rd_mail "$ns" imap "$a" 993 "$RD_LEGIT_USER" wrong-password login
}

# rd_dovecot_legit ADDR: the legitimate user reads mail over IMAP and POP3.
rd_dovecot_legit() {
    local a=$1
    rd_log "dovecot legit logins on $a"
    rd_mail "$RD_NS_LEG" imap "$a" 993 "$RD_LEGIT_USER" "$RD_LEGIT_PASS" login
    rd_mail "$RD_NS_LEG" imap "$a" 993 "$RD_LEGIT_USER" "$RD_LEGIT_PASS" scram-sha-256
    rd_mail "$RD_NS_LEG" pop3 "$a" 995 "$RD_LEGIT_USER" "$RD_LEGIT_PASS" user
}

# rd_capture_dovecot_pam: Debian's default password database (PAM: the system accounts), which offers only PLAIN
# and LOGIN; the auth worker and pam_unix report each attempt.
rd_capture_dovecot_pam() {
    RD_DOVECOT_PASSDB=pam rd_dovecot yes syslog
    rd_dovecot_legit "$RD_SRV4"
    local ns=$RD_NS_ATK a
    for a in "$RD_SRV4" "$RD_SRV6"; do
        rd_mail "$ns" imap "$a" 993 "$RD_LEGIT_USER" wrong-password login
        rd_mail "$ns" imap "$a" 993 nosuchuser wrong-password plain
        rd_mail "$ns" pop3 "$a" 995 "$RD_LEGIT_USER" wrong-password user
    done
    RD_DOVECOT_PASSDB=pam rd_dovecot no syslog
    rd_mail "$ns" imap "$RD_SRV4" 993 "$RD_LEGIT_USER" wrong-password login
    rd_mail "$ns" imap "$RD_SRV4" 993 nosuchuser wrong-password login
}

# rd_capture_dovecot: auth_verbose yes (every attempt logged by the auth process) and no (Debian's default), to
# syslog and to Dovecot's own log file, over IPv4 and IPv6.
rd_capture_dovecot() {
    rd_dovecot yes syslog
    rd_dovecot_legit "$RD_SRV4"
    rd_dovecot_attacks "$RD_SRV4"
    rd_dovecot_attacks "$RD_SRV6"
    rd_dovecot no syslog
    rd_dovecot_legit "$RD_SRV6"
    rd_dovecot_attacks_short "$RD_SRV4"
    rd_dovecot_attacks_short "$RD_SRV6"
    rd_dovecot yes file
    rd_dovecot_legit "$RD_SRV4"
    rd_dovecot_attacks_short "$RD_SRV4"
    rd_dovecot_attacks_short "$RD_SRV6"
    rd_dovecot no file
    rd_dovecot_attacks_short "$RD_SRV4"
    rd_dovecot yes syslog yes
    rd_dovecot_noise "$RD_SRV4"
    rd_dovecot_noise "$RD_SRV6"
}

# ---------------------------------------------------------------------------------------------------------------
# Postfix: SMTP (25), SMTPS (465) and submission (587), SMTP AUTH through Dovecot's auth socket, a DNS blocklist
# answered by dnsd.py inside the namespace.


rd_dnsd() {
    [[ -s $RD_T/run/dnsd.pid ]] && kill -0 "$(cat "$RD_T/run/dnsd.pid")" 2>/dev/null && return 0
    rd_srv "$RD_PY" "$RD_DIR/dnsd.py" 127.0.0.1 "$RD_T/run/dnsd.pid" "$RD_RBL_ZONE" "$RD_ATK4" "$RD_ATK6" \
        </dev/null >/dev/null 2>&1 &
    RD_PIDS+=($!)
    local i
    for i in $(seq 50); do [[ -s $RD_T/run/dnsd.pid ]] && return 0; sleep 0.1; done
    rd_die "dnsd did not start"
}

# rd_postfix LOG: (re)starts Postfix; LOG is "syslog" or "file" (maillog_file = $RD_T/logs/postfix.log).
rd_postfix() {
    local log=${1:-syslog} p=$RD_T/postfix running=0
    [[ -s $p/etc/main.cf ]] && rd_srv postfix -c "$p/etc" status >/dev/null 2>&1 && running=1
    [[ -z $RD_RBL_ZONE ]] || rd_dnsd
    mkdir -p "$p"/{etc,spool,data}
    chown postfix "$p/data"
    local maillog=""
    [[ $log == file ]] && maillog="$RD_T/logs/postfix.log"
    cat >"$p/etc/main.cf" <<CONF
# Postfix 3.7 as Debian 12 ships it, with SMTP AUTH through Dovecot; only paths and names differ.
compatibility_level = 3.6
queue_directory = $p/spool
data_directory = $p/data
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.example.test
mydomain = example.test
myorigin = \$mydomain
mydestination = \$myhostname, localhost, example.test
inet_interfaces = $(rd_listen postfix)
inet_protocols = all
mynetworks = 127.0.0.0/8 [::1]/128
alias_maps =
alias_database =
local_recipient_maps = proxy:unix:passwd.byname
maillog_file = $maillog
maillog_file_prefixes = /var, /dev/stdout, $RD_T/logs
smtpd_banner = \$myhostname ESMTP
biff = no
smtpd_tls_cert_file = $RD_T/tls/cert.pem
smtpd_tls_key_file = $RD_T/tls/key.pem
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_auth_enable = yes
smtpd_helo_required = yes
smtpd_helo_restrictions = reject_invalid_helo_hostname
smtpd_sender_restrictions = reject_non_fqdn_sender
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unlisted_recipient
    ${RD_RBL_ZONE:+reject_rbl_client $RD_RBL_ZONE}
$([[ -n $RD_RBL_ZONE ]] || echo "smtpd_peername_lookup = no")
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 3
smtpd_hard_error_limit = 6
CONF
    cat >"$p/etc/master.cf" <<'CONF'
smtp      inet  n       -       n       -       -       smtpd
submission inet n       -       n       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
465       inet  n       -       n       -       -       smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF
    rd_srv postfix -c "$p/etc" check >/dev/null 2>&1 || rd_srv postfix -c "$p/etc" check
    if ((running)); then
        # A running Postfix re-reads main.cf (maillog_file included) on reload.
        rd_srv postfix -c "$p/etc" reload >/dev/null 2>&1 || rd_die "postfix reload failed"
        sleep 2
    else
        rd_srv postfix -c "$p/etc" start >/dev/null 2>&1 || rd_die "postfix did not start (see $RD_T/logs)"
    fi
    rd_wait_port 25
    rd_wait_port 465
    rd_wait_port 587
}

# rd_postfix_attacks ADDR: SMTP AUTH failures with every mechanism on every port, and the SMTP-level rejections.
rd_postfix_attacks() {
    local a=$1 ns=$RD_NS_ATK m port
    rd_log "postfix attacks on $a"
    for port in 587 465 25; do
        rd_mail "$ns" smtp "$a" $port "$RD_LEGIT_USER" wrong-password plain
        rd_mail "$ns" smtp "$a" $port nosuchuser wrong-password login-sasl
    done
    for m in plain login-sasl cram-md5 scram-sha-1 scram-sha-256; do
        rd_mail "$ns" smtp "$a" 587 "$RD_LEGIT_USER" wrong-password "$m"
        rd_mail "$ns" smtp "$a" 465 "nobody-$m" wrong-password "$m"
    done
    rd_mail "$ns" smtp "$a" 587 "$RD_OTHER_USER" wrong-password plain 3            # three attempts, one connection
    # SASL user names that try to smuggle another address into the log line.
    rd_mail "$ns" smtp "$a" 587 "x@$RD_LEG4" wrong-password plain
    rd_mail "$ns" smtp "$a" 465 "unknown[$RD_LEG4]" wrong-password plain
    rd_mail "$ns" smtp "$a" 587 "a]: SASL PLAIN authentication failed: [$RD_LEG4" wrong-password login-sasl
    rd_mail "$ns" smtp "$a" 465 "u [$RD_LEG6]" wrong-password plain
    # SMTP-level rejections (normal/more/rbl modes): unknown recipient, relaying, bad HELO, bad sender, blocklist.
    ip netns exec "$ns" "$RD_PY" "$RD_DIR/clients.py" smtp-rcpt "$a" 25 client.example.test \
        probe@example.org nosuchuser@example.test 2>>"$RD_T/clients.err" || true
    ip netns exec "$ns" "$RD_PY" "$RD_DIR/clients.py" smtp-rcpt "$a" 25 client.example.test \
        probe@example.org victim@elsewhere.example 2>>"$RD_T/clients.err" || true
    ip netns exec "$ns" "$RD_PY" "$RD_DIR/clients.py" smtp-rcpt "$a" 25 'bad_helo!' \
        probe@example.org "$RD_LEGIT_USER@example.test" 2>>"$RD_T/clients.err" || true
    ip netns exec "$ns" "$RD_PY" "$RD_DIR/clients.py" smtp-rcpt "$a" 25 client.example.test \
        probe "$RD_LEGIT_USER@example.test" 2>>"$RD_T/clients.err" || true
    ip netns exec "$ns" "$RD_PY" "$RD_DIR/clients.py" smtp-rcpt "$a" 25 client.example.test \
        probe@example.org "$RD_LEGIT_USER@example.test" 2>>"$RD_T/clients.err" || true
    # Protocol abuse (more mode): an HTTP request to the SMTP port, and commands sent before the greeting.
    ip netns exec "$ns" "$RD_PY" - "$a" <<'PY' || true
import socket, sys, time
a = sys.argv[1]
s = socket.create_connection((a, 25), timeout=10); s.recv(512)
s.sendall(b"GET / HTTP/1.1\r\nHost: " + a.encode() + b"\r\n\r\n"); time.sleep(1); s.close()
s = socket.create_connection((a, 25), timeout=10)
s.sendall(b"EHLO client.example.test\r\nMAIL FROM:<probe@example.org>\r\nRCPT TO:<alice@example.test>\r\n")
time.sleep(1); s.recv(4096); s.close()
PY
}

# rd_postfix_attacks_short ADDR: a few SMTP AUTH failures (one per mechanism family) on port 25, which the dovecot
# jail does not cover (it covers 465 and 587), so that each jail gets its own attacks in run.sh.
rd_postfix_attacks_short() {
    local a=$1 ns=$RD_NS_ATK
    rd_log "postfix attacks (short) on $a"
    rd_mail "$ns" smtp "$a" 25 "$RD_LEGIT_USER" wrong-password plain
    rd_mail "$ns" smtp "$a" 25 nosuchuser wrong-password login-sasl
    rd_mail "$ns" smtp "$a" 25 "$RD_LEGIT_USER" wrong-password scram-sha-256
    rd_mail "$ns" smtp "$a" 25 "unknown[$RD_LEG4]" wrong-password plain
}

# rd_postfix_legit ADDR: the legitimate user authenticates on 587 and 465.
rd_postfix_legit() {
    local a=$1
    rd_log "postfix legit logins on $a"
    rd_mail "$RD_NS_LEG" smtp "$a" 587 "$RD_LEGIT_USER" "$RD_LEGIT_PASS" plain
    rd_mail "$RD_NS_LEG" smtp "$a" 465 "$RD_LEGIT_USER" "$RD_LEGIT_PASS" scram-sha-256
}

# rd_capture_postfix: Postfix logging to syslog and to its own maillog_file, over IPv4 and IPv6; Dovecot (whose auth
# process checks the passwords) runs with auth_verbose = yes.
rd_capture_postfix() {
    rd_dovecot yes syslog
    rd_postfix syslog
    rd_postfix_legit "$RD_SRV4"
    rd_postfix_attacks "$RD_SRV4"
    rd_postfix_attacks "$RD_SRV6"
    rd_postfix file
    rd_postfix_legit "$RD_SRV6"
    rd_postfix_attacks "$RD_SRV4"
}

# ---------------------------------------------------------------------------------------------------------------
# munin-node: Debian's node on 4949, in the foreground (so its PID is ours), answering loopback and RD_MUNIN_ALLOW.

# rd_munin: (re)starts munin-node with its own configuration file: Debian's, with our paths, host name and allowed
# networks. It binds one dual-stack socket on every address, as Debian's does (`host *`).
rd_munin() {
    local m=$RD_T/munin net
    rd_stop_pidfile "$RD_T/run/munin-node.pid"
    mkdir -p "$m"
    {
        cat <<CONF
# munin-node 2.0 as Debian 12 ships it; the paths, the host name and the networks it answers are ours.
log_level 4
log_file $RD_T/logs/munin-node.log
pid_file $RD_T/run/munin-node.pid
background 0
setsid 0
user root
group root
ignore_file [\#~]\$
ignore_file DEADJOE\$
ignore_file \.bak\$
ignore_file %\$
ignore_file \.dpkg-(tmp|new|old|dist)\$
ignore_file \.rpm(save|new)\$
ignore_file \.pod\$
host_name $RD_HOSTNAME.example.test
allow ^127\.0\.0\.1\$
allow ^::1\$
host *
port 4949
CONF
        for net in $RD_MUNIN_ALLOW; do echo "cidr_allow $net"; done
    } >"$m/munin-node.conf"
    rd_srv munin-node --config "$m/munin-node.conf" --foreground </dev/null >>"$RD_T/logs/munin-node.out" 2>&1 &
    RD_PIDS+=($!)
    rd_wait_port 4949
}
