#!/usr/bin/env bash
# Builds the Debian package (scripts/package.sh --lintian: lintian must report no error), installs it with dpkg -i,
# runs `portcullis --version`, `portcullis check` and `man -w portcullis`, purges it and checks that nothing is left
# behind. Two rounds: as this host is (fail2ban installed and enabled: the package must enable and start nothing
# and say how to switch), and with fail2ban's enablement link moved aside for the round (restored afterwards): the
# unit is then enabled, and remove + purge take everything away again.
#
# There is no systemd in the test container, so nothing can start; the test also checks that no portcullis process
# runs and that the host's ruleset has no portcullis table after each install. Run as root.
# Ends with one line: `package: N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/../.."

passed=0 failed=0
check() { # check NAME CONDITION-EXIT-STATUS [DETAIL]
    if [[ $2 == 0 ]]; then
        passed=$((passed + 1)); echo "PASS $1"
    else
        failed=$((failed + 1)); echo "FAIL $1${3:+: $3}"
    fi
}
finish() {
    echo "package: $passed passed, $failed failed"
    ((failed == 0))
    exit
}

[[ $(id -u) == 0 ]] || { echo "package_test.sh: run as root"; failed=1; finish; }
for tool in dpkg-deb lintian man deb-systemd-helper; do
    command -v "$tool" >/dev/null; check "$tool installed (scripts/deps.sh --test)" $?
done
if dpkg-query -W -f='${Status}' portcullis 2>/dev/null | grep -q installed; then
    check "portcullis is not installed on this host before the test" 1 "dpkg lists it; purge it first"
    finish
fi

start=$SECONDS
out=$(scripts/package.sh --lintian 2>&1)
rc=$?
echo "$out" | grep -Ev '^(N|I): ' | tail -25
check "scripts/package.sh --lintian: package built, no lintian error" $rc
DEB=$(echo "$out" | sed -n 's/^package: //p' | tail -1)
[[ -n $DEB && -f $DEB ]] || { check "package file exists" 1 "$DEB"; finish; }
echo "     (package built and checked in $((SECONDS - start)) s; lintian: $(echo "$out" | grep -cE '^W: ') warnings, $(echo "$out" | grep -cE '^I: ') informational)"
VERSION=$(dpkg-deb -f "$DEB" Version)
# libpq is loaded only when [fleet] is configured: not a dependency, a recommendation.
! dpkg-deb -f "$DEB" Depends | grep -q libpq && dpkg-deb -f "$DEB" Recommends | grep -q libpq5
check "libpq5 is recommended, not a dependency (the daemon loads it for [fleet] only)" $? \
    "Depends: $(dpkg-deb -f "$DEB" Depends); Recommends: $(dpkg-deb -f "$DEB" Recommends)"

# Everything named like the package outside places other tests use (work trees, temporary directories).
traces() {
    find / -xdev \( -path /proc -o -path /sys -o -path /tmp -o -path /work -o -path /root -o -path /opt \
        -o -path /var/tmp -o -path /home \) -prune -o -name '*portcullis*' -print 2>/dev/null | sort
}
before=$(traces)
LINK=/etc/systemd/system/multi-user.target.wants/portcullis.service
F2B_LINK=/etc/systemd/system/multi-user.target.wants/fail2ban.service

# No process runs the installed binary, and the host's own ruleset has no portcullis table.
no_daemon() {
    local exe
    for exe in /proc/[0-9]*/exe; do
        [[ $(readlink "$exe" 2>/dev/null) == /usr/bin/portcullis ]] && return 1
    done
    ! nft list tables 2>/dev/null | grep -q portcullis
}

installed_checks() {
    local round=$1
    [[ $(portcullis --version 2>&1) == "$VERSION" ]]; check "$round: portcullis --version says $VERSION" $?
    ! ldd /usr/bin/portcullis | grep -qE 'libpq|libssl|libkrb5|libldap'
    check "$round: the binary does not link libpq or its libraries" $? "$(ldd /usr/bin/portcullis | grep -E 'libpq|ssl')"
    local c
    c=$(SSH_CONNECTION= SSH_CLIENT= portcullis check 2>&1)
    local crc=$?
    echo "$c" | sed 's/^/     /'
    [[ $crc -le 1 ]] && echo "$c" | grep -qE '^check: [0-9]+ jails? enabled'; check "$round: portcullis check on /etc/portcullis: no error" $? "exit $crc"
    [[ $(man -w portcullis 2>&1) == /usr/share/man/man1/portcullis.1.gz ]]; check "$round: man -w portcullis" $? "$(man -w portcullis 2>&1)"
    man -w portcullis.check >/dev/null 2>&1; check "$round: a man page per subcommand (portcullis.check)" $?
    local pages
    pages=$(ls /usr/share/man/man1/portcullis*.1.gz | wc -l)
    ((pages >= 10)); check "$round: $pages man pages" $?
    [[ -s /usr/share/bash-completion/completions/portcullis && -s /usr/share/zsh/vendor-completions/_portcullis \
        && -s /usr/share/fish/vendor_completions.d/portcullis.fish ]]; check "$round: bash, zsh and fish completions" $?
    bash -n /usr/share/bash-completion/completions/portcullis; check "$round: the bash completion parses" $?
    dpkg-query -W -f='${Conffiles}\n' portcullis | grep -q ' /etc/portcullis/jail.conf '; check "$round: /etc/portcullis files are conffiles" $?
    grep -q '^ExecStart=/usr/bin/portcullis ' /lib/systemd/system/portcullis.service; check "$round: the unit runs /usr/bin/portcullis" $?
    [[ -d /var/lib/portcullis ]]; check "$round: /var/lib/portcullis exists" $?
    no_daemon; check "$round: nothing started (no portcullis process, no portcullis table in the host's ruleset)" $?
    # What a running daemon would have left: the purge must take it away.
    echo "2026-12-07 10:00:00,000 fail2ban.server [1]: INFO Starting" >/var/log/portcullis.log
    echo x >/var/lib/portcullis/portcullis.sqlite3
}

purged_checks() {
    local round=$1 left
    left=$(comm -13 <(echo "$before") <(traces))
    [[ -z $left ]]; check "$round: purge leaves nothing named portcullis behind" $? "$(echo $left)"
    [[ ! -e /etc/portcullis && ! -e /var/lib/portcullis && ! -e /var/log/portcullis.log && ! -e $LINK ]]
    check "$round: no /etc/portcullis, /var/lib/portcullis, log or enablement link" $?
    ! ls /var/lib/systemd/deb-systemd-helper-enabled/ /var/lib/systemd/deb-systemd-helper-masked/ 2>/dev/null | grep -q portcullis
    check "$round: deb-systemd-helper's state for the unit is gone" $?
    ! dpkg-query -W portcullis >/dev/null 2>&1; check "$round: dpkg no longer knows the package" $?
}

# Round 1: as the host is. fail2ban is enabled here (its package enables it), so nothing may be enabled.
f2b_here=1
[[ -e $F2B_LINK ]] || grep -qx fail2ban-server /proc/[0-9]*/comm 2>/dev/null || f2b_here=0
check "round 1 precondition: fail2ban is in use on this host (enabled or running)" $((1 - f2b_here))
msg=$(dpkg -i "$DEB" 2>&1)
check "round 1: dpkg -i succeeds" $? "$msg"
echo "$msg" | grep -q 'fail2ban is in use on this host, so portcullis.service was not enabled or started'
check "round 1: the message says fail2ban is in use" $? "$msg"
echo "$msg" | grep -q 'systemctl disable --now fail2ban' && echo "$msg" | grep -q 'systemctl enable --now portcullis'
check "round 1: the message says how to switch" $?
[[ ! -e $LINK ]]; check "round 1: portcullis.service not enabled next to fail2ban" $?
installed_checks "round 1"
dpkg --purge portcullis >/dev/null 2>&1; check "round 1: dpkg --purge succeeds" $?
purged_checks "round 1"

# Round 2: fail2ban not in use. Its enablement link is moved aside for the round (restored on any exit), and dpkg
# runs in a PID namespace of its own, so that fail2ban-server processes other tests may run are not seen either.
moved=""
restore() { [[ -n $moved && ! -e $F2B_LINK ]] && mv "$moved" "$F2B_LINK"; moved=""; }
trap restore EXIT
alone() { unshare --pid --fork --mount-proc "$@"; }
alone sh -c '! grep -qx fail2ban-server /proc/[0-9]*/comm 2>/dev/null'
check "round 2 precondition: a PID namespace without fail2ban-server (unshare)" $?
{
    if [[ -e $F2B_LINK ]]; then
        moved=$(mktemp -u /tmp/pcl-f2b-link.XXXXXX)
        mv "$F2B_LINK" "$moved"
    fi
    msg=$(alone dpkg -i "$DEB" 2>&1)
    check "round 2: dpkg -i succeeds" $? "$msg"
    ! echo "$msg" | grep -q 'fail2ban is in use'; check "round 2: no fail2ban message" $? "$msg"
    [[ -L $LINK ]]; check "round 2: portcullis.service enabled (deb-systemd-helper link)" $?
    installed_checks "round 2"
    alone dpkg -i "$DEB" >/dev/null 2>&1; check "round 2: reinstall (upgrade path) succeeds" $?
    [[ -L $LINK ]]; check "round 2: still enabled after the reinstall" $?
    dpkg --remove portcullis >/dev/null 2>&1; check "round 2: dpkg --remove succeeds" $?
    [[ ! -e /usr/bin/portcullis && -e /etc/portcullis/jail.conf ]]; check "round 2: remove keeps the conffiles, not the binary" $?
    dpkg --purge portcullis >/dev/null 2>&1; check "round 2: dpkg --purge succeeds" $?
    purged_checks "round 2"
    restore
}
[[ -e $F2B_LINK ]] || ((f2b_here == 0)); check "fail2ban's enablement link is as it was" $?
echo "     (package stage: $((SECONDS - start)) s)"
finish
