#!/usr/bin/env bash
# House style, checked: `swift format lint --strict` with the checked-in .swift-format over every Swift file of the
# repository. Prints each finding (FILE:LINE:COL: error: [Rule] …) and ends with exactly one line
# `format: N files, F findings`; exit status 0 only when F is 0. To fix most findings at once:
#   swift format format --in-place -r Sources Tests bench fuzz Package.swift
set -uo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || { echo "format: swift not found (install the Swift toolchain)"; exit 2; }
mapfile -t files < <(git ls-files '*.swift' 2>/dev/null || find Sources Tests bench fuzz Package.swift -name '*.swift')
((${#files[@]} > 0)) || { echo "format: no Swift files found"; exit 2; }
out=$(swift format lint --strict --parallel "${files[@]}" 2>&1)
rc=$?
findings=$(grep -cE ': (error|warning): ' <<<"$out")
[[ -n $out ]] && echo "$out"
echo "format: ${#files[@]} files, $findings findings"
((rc == 0 && findings == 0))
