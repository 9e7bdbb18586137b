#!/usr/bin/python3
# Test helper: prints a JSON object {filter name: resolved datepattern} for every filter in /etc/fail2ban/filter.d
# whose configuration sets a datepattern, resolved by fail2ban's own configuration reader (interpolation included).
import glob
import json
import os

from fail2ban.client.filterreader import FilterReader

out = {}
for path in sorted(glob.glob("/etc/fail2ban/filter.d/*.conf")):
    name = os.path.basename(path)[:-5]
    try:
        reader = FilterReader(name, "oracle", {}, share_config={}, basedir="/etc/fail2ban")
        if not reader.read():
            continue
        reader.getOptions({})
        for cmd in reader.convert():
            if len(cmd) >= 4 and cmd[0] == "set" and cmd[2] == "datepattern":
                out[name] = cmd[3]
    except Exception:
        continue
print(json.dumps(out))
