#!/usr/bin/env bash
# Runs real daemons in a network namespace that the caller made and addressed, listening on every address, until
# standard input closes (or SIGTERM); then stops them and removes what it made. Used by tests/e2e/policy_e2e.py,
# whose server namespace faces two networks.
#
#   serve.sh NETNS DAEMON…     DAEMON: sshd (22), postfix (25, 465, 587; SMTP AUTH through Dovecot), dovecot (143,
#                              110, 993, 995; RD_DOVECOT_TLS_ONLY=1: 993 and 995 only), munin (munin-node on 4949)
#
# Environment: RD_MUNIN_ALLOW (networks munin-node answers besides loopback), RD_SSHD_EXTRA (sshd_config lines).
# Prints `ready DIR` (the temporary directory: configuration, logs/) once every daemon listens. The daemons run in a
# private mount and UTS namespace inside NETNS (see lib.sh); the namespace itself and its other processes are left
# alone. Run as root.
set -euo pipefail
RD_LISTEN=any RD_RBL_ZONE='' RD_DOVECOT_TLS_ONLY=${RD_DOVECOT_TLS_ONLY:-}
source "$(dirname "$0")/lib.sh"
(($# >= 2)) || rd_die "usage: serve.sh NETNS DAEMON…"
rd_attach "$1"
shift
for daemon in "$@"; do
    case $daemon in
    sshd) rd_sshd INFO ;;
    dovecot) rd_dovecot no syslog ;;
    postfix)
        # SMTP AUTH goes through Dovecot's auth socket: Dovecot first.
        rd_srv test -S "$RD_T/postfix/spool/private/auth" 2>/dev/null || rd_dovecot no syslog
        rd_postfix syslog
        ;;
    munin) rd_munin ;;
    *) rd_die "unknown daemon '$daemon' (sshd, postfix, dovecot, munin)" ;;
    esac
done
echo "ready $RD_T"
# Until the caller closes our standard input (or ends, which closes it too).
while read -r _; do :; done
