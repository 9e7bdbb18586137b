#!/usr/bin/env bash
# Runs the real daemons in network namespaces, attacks them from the attacker namespace, logs in legitimately from
# the legit namespace, and copies the resulting logs to OUTDIR (default: ./capture). Run as root; cleans up after
# itself even on failure. Usage: capture.sh [OUTDIR] [sshd|sshd-policy|dovecot|dovecot-pam|postfix]...
set -euo pipefail
source "$(dirname "$0")/lib.sh"
out=$(realpath -m "${1:-capture}"); shift || true
what=("$@"); ((${#what[@]})) || what=(sshd dovecot postfix)
mkdir -p "$out"
rd_setup
for w in "${what[@]}"; do
    case $w in
        sshd) rd_capture_sshd ;;
        sshd-policy) rd_capture_sshd_policy ;;
        dovecot) rd_capture_dovecot ;;
        dovecot-pam) rd_capture_dovecot_pam ;;
        postfix) rd_capture_postfix ;;
        *) rd_die "unknown daemon $w" ;;
    esac
done
sleep 1
cp "$RD_T"/logs/*.log "$RD_T"/logs/users.txt "$out"/; cp "$RD_T"/clients.err "$out"/ 2>/dev/null || true
rd_log "logs copied to $out: $(cd "$out" && ls | tr '\n' ' ')"
