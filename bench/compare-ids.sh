#!/usr/bin/env bash
# Agreement check: for each of fail2ban's sample logs and its filter, compares the failure ids printed by
# `portcullis regex --out id` with those of `fail2ban-regex -o id` (same order, same multiplicity).
# Prints "identical"/"different" per file and a total line `compare-ids: N identical, M different`.
# Exit 0 unless --strict and something differs. A log that cannot be compared (fail2ban-regex fails, no filter for
# it) counts as different; no log at all is an error. fail2ban's test-only filters zzz-* live in its tests/config,
# whose Debian copy includes common.conf by a path outside the package: they are compared from a tree made at run
# time by scripts/fail2ban-test-conf.sh (that tree cannot be made: every zzz-* log counts as different).
# Env: LOGS (sample dir), CONF (config tree), PORTCULLIS (binary), F2B_CACHE (cached fail2ban-regex output).
set -uo pipefail
cd "$(dirname "$0")/.."
STRICT=0
[[ "${1:-}" == "--strict" ]] && STRICT=1
LOGS=${LOGS:-/usr/lib/python3/dist-packages/fail2ban/tests/files/logs}
CONF=${CONF:-/etc/fail2ban}
BIN=${PORTCULLIS:-$(swift build --show-bin-path)/portcullis}
CACHE=${F2B_CACHE:-${TMPDIR:-/tmp}/portcullis-f2b-ids}
mkdir -p "$CACHE"
TESTCONF="$CACHE/test-conf"
rm -rf "$TESTCONF"
TESTCONF_ERR=$(scripts/fail2ban-test-conf.sh "$TESTCONF" 2>&1) || TESTCONF=""
[[ -x "$BIN" ]] || { echo "compare-ids: $BIN not built (swift build --product portcullis)"; exit 2; }
command -v fail2ban-regex >/dev/null || { echo "compare-ids: fail2ban-regex not installed (scripts/deps.sh)"; exit 2; }

same=0; different=0; failed_names=()
for log in "$LOGS"/*; do
    [[ -f "$log" ]] || continue
    name=$(basename "$log")
    filter=$name
    conf=$CONF
    case $name in
        zzz-*)
            if [[ -z "$TESTCONF" ]]; then
                printf '%-28s different (no test-only filter tree: %s)\n' "$name" "$TESTCONF_ERR"
                ((different++)); failed_names+=("$name"); continue
            fi
            conf=$TESTCONF ;;
    esac
    if [[ ! -f "$conf/filter.d/$name.conf" ]]; then
        case $name in
            sshd-journal) filter="sshd[logtype=journal]" ;;
            *) printf '%-28s different (no filter %s in %s)\n' "$name" "$name" "$conf/filter.d"
               ((different++)); failed_names+=("$name"); continue ;;
        esac
    fi
    key="$CACHE/$(echo "$conf|$filter|$name" | md5sum | cut -c1-16)"
    if [[ ! -s "$key.ids" || "$log" -nt "$key.ids" ]]; then
        rm -f "$key.ids"
        if ! fail2ban-regex -c "$conf" -o id "$log" "$filter" >"$key.tmp" 2>"$key.f2berr"; then
            printf '%-28s different (fail2ban-regex failed: %s)\n' "$name" "$(tail -1 "$key.f2berr")"
            ((different++)); failed_names+=("$name"); continue
        fi
        mv "$key.tmp" "$key.ids"
    fi
    if ! "$BIN" regex --conf "$conf" --out id "$log" "$filter" >"$key.ours" 2>"$key.err"; then
        printf '%-28s different (portcullis failed: %s)\n' "$name" "$(head -1 "$key.err")"
        ((different++)); failed_names+=("$name"); continue
    fi
    if cmp -s "$key.ids" "$key.ours"; then
        printf '%-28s identical (%d ids)\n' "$name" "$(wc -l <"$key.ids")"
        ((same++))
    else
        printf '%-28s different (fail2ban %d ids, portcullis %d ids)\n' "$name" "$(wc -l <"$key.ids")" "$(wc -l <"$key.ours")"
        diff "$key.ids" "$key.ours" | grep '^[<>]' | head -4 | sed 's/^/    /'
        ((different++)); failed_names+=("$name")
    fi
done
echo "compare-ids: $same identical, $different different"
if ((same + different == 0)); then echo "compare-ids: no sample log in $LOGS"; exit 2; fi
if ((different > 0)); then echo "compare-ids: different: ${failed_names[*]}"; fi
if ((STRICT && different > 0)); then exit 1; fi
exit 0
