#!/usr/bin/env bash
# Prints how far our filters (config/filter.d) agree with fail2ban's own sample logs for sshd, postfix, dovecot and
# recidive, read at run time from the installed fail2ban package (never copied). Differences are listed, one per
# line, in the file given as $1 (default: a temporary file whose name is printed), and explained in
# tests/realdaemons/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dpkg-query -W -f='${Status}' fail2ban 2>/dev/null | grep -q "install ok installed" || {
    export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq --no-install-recommends fail2ban >/dev/null; }
details=${1:-$(mktemp /tmp/pcl-agreement.XXXXXX)}
/usr/bin/python3 "$here/agreement.py" "$here/../../config" --details "$details"
