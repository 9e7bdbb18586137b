#!/usr/bin/env bash
# Builds the Debian package dist/portcullis_VERSION_ARCH.deb with dpkg-deb:
#   /usr/bin/portcullis          release build, Swift standard library linked statically, stripped
#   /etc/portcullis/             the default tree (config/), every file a conffile
#   /lib/systemd/system/portcullis.service   dist/portcullis.service with ExecStart in /usr/bin
#   /etc/logrotate.d/portcullis  weekly, postrotate `portcullis flushlogs` (SIGHUP when the daemon predates it)
#   /usr/share/man/man1/         one page per subcommand (swift-argument-parser's generate-manual, the tool its
#                                GenerateManual plugin runs, pointed at the built binary)
#   bash, zsh and fish completions (`portcullis --generate-completion-script`)
#   /var/lib/portcullis          the database directory
# and the maintainer scripts in dist/debian (deb-systemd-helper / deb-systemd-invoke; nothing is enabled or started
# while fail2ban is in use). Dependencies come from dpkg-shlibdeps.
#
# Usage: scripts/package.sh [--lintian]    (--lintian: also run lintian and fail on any error)
# Prints the path of the package as its last line: `package: dist/portcullis_0.1.0_amd64.deb`.
set -euo pipefail
cd "$(dirname "$0")/.."

run_lintian=false
[[ ${1:-} == --lintian ]] && run_lintian=true

echo "==> release build (static Swift standard library)"
start=$SECONDS
swift build -c release --static-swift-stdlib --product portcullis 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\] ' || true
# The man page generator the GenerateManual plugin runs, built from the same (local) swift-argument-parser.
swift build -c release --static-swift-stdlib --product generate-manual 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\] ' || true
BIN=$(swift build -c release --static-swift-stdlib --show-bin-path)
[[ -x $BIN/portcullis && -x $BIN/generate-manual ]] || { echo "package: release build failed" >&2; exit 1; }
echo "    built in $((SECONDS - start)) s"

VERSION=$("$BIN/portcullis" --version)
ARCH=$(dpkg --print-architecture)
# Reproducible dates: the last commit's.
EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
DAY=$(date -u -d "@$EPOCH" +%Y-%m-%d)
STAGE=$(mktemp -d /tmp/portcullis-package.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
mkdir -p "$ROOT/DEBIAN"

# The binary.
install -D -m 0755 "$BIN/portcullis" "$ROOT/usr/bin/portcullis"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$ROOT/usr/bin/portcullis"
"$ROOT/usr/bin/portcullis" --version >/dev/null

# The default tree, as conffiles.
mkdir -p "$ROOT/etc/portcullis"
cp -r config/. "$ROOT/etc/portcullis/"
find "$ROOT/etc/portcullis" -type d -exec chmod 0755 {} +
find "$ROOT/etc/portcullis" -type f -exec chmod 0644 {} +

# systemd unit and logrotate.
install -d "$ROOT/lib/systemd/system"
sed 's|/usr/local/bin/portcullis|/usr/bin/portcullis|g' dist/portcullis.service >"$ROOT/lib/systemd/system/portcullis.service"
chmod 0644 "$ROOT/lib/systemd/system/portcullis.service"
install -D -m 0644 dist/debian/logrotate "$ROOT/etc/logrotate.d/portcullis"

# Man pages, one per subcommand.
mkdir -p "$STAGE/man"
"$BIN/generate-manual" "$BIN/portcullis" --multi-page --date "$DAY" \
    --authors "Portcullis maintainers<maintainers@users.noreply.r-seed-0791888c.example>" -o "$STAGE/man" >/dev/null
install -d "$ROOT/usr/share/man/man1"
for page in "$STAGE"/man/*.1; do
    # A subcommand's page is named `.Nm "portcullis check"`, which whatis cannot index: its NAME line becomes the
    # page's own name (portcullis.check), and the synopsis keeps "portcullis check".
    /usr/bin/python3 - "$page" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
m = re.search(r'^\.Nm "([^"]+)"$', text, re.M)
if m:
    full = m.group(1)
    text = text.replace(m.group(0), ".Nm " + full.replace(" ", "."), 1)
    text = re.sub(r'^\.Nm$', '.Nm "' + full + '"', text, flags=re.M)
# A blank line in a discussion is a paragraph break, which mdoc writes .Pp (groff warns about empty lines).
text = re.sub(r'^$', '.Pp', text.rstrip("\n"), flags=re.M) + "\n"
open(path, "w").write(text)
PY
    gzip -9nc "$page" >"$ROOT/usr/share/man/man1/$(basename "$page").gz"
done
chmod 0644 "$ROOT"/usr/share/man/man1/*

# Shell completions.
install -d "$ROOT/usr/share/bash-completion/completions" "$ROOT/usr/share/zsh/vendor-completions" \
    "$ROOT/usr/share/fish/vendor_completions.d"
# Sourced, not run: no #! line.
"$BIN/portcullis" --generate-completion-script bash | sed '1{/^#!/d}' >"$ROOT/usr/share/bash-completion/completions/portcullis"
"$BIN/portcullis" --generate-completion-script zsh >"$ROOT/usr/share/zsh/vendor-completions/_portcullis"
"$BIN/portcullis" --generate-completion-script fish >"$ROOT/usr/share/fish/vendor_completions.d/portcullis.fish"
chmod 0644 "$ROOT/usr/share/bash-completion/completions/portcullis" "$ROOT/usr/share/zsh/vendor-completions/_portcullis" \
    "$ROOT/usr/share/fish/vendor_completions.d/portcullis.fish"

# Documentation.
DOC=$ROOT/usr/share/doc/portcullis
install -D -m 0644 dist/debian/copyright "$DOC/copyright"
install -m 0644 README.md "$DOC/README.md"
sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$(date -u -R -d "@$EPOCH")/" dist/debian/changelog | gzip -9n >"$DOC/changelog.gz"
chmod 0644 "$DOC/changelog.gz"

# The database directory.
install -d -m 0755 "$ROOT/var/lib/portcullis"

# Control files.
mkdir -p "$STAGE/debian"
printf 'Source: portcullis\n\nPackage: portcullis\nArchitecture: any\n' >"$STAGE/debian/control"
DEPENDS=$(cd "$STAGE" && dpkg-shlibdeps -O -e"$ROOT/usr/bin/portcullis" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[[ -n $DEPENDS ]] || { echo "package: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@DEPENDS@/$DEPENDS/" \
    dist/debian/control.in >"$ROOT/DEBIAN/control"
(cd "$ROOT" && find etc -type f | sort | sed 's|^|/|') >"$ROOT/DEBIAN/conffiles"
for script in postinst prerm postrm; do install -m 0755 "dist/debian/$script" "$ROOT/DEBIAN/$script"; done
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) >"$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/conffiles" "$ROOT/DEBIAN/md5sums"

mkdir -p dist
DEB=dist/portcullis_${VERSION}_${ARCH}.deb
SOURCE_DATE_EPOCH=$EPOCH dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "    $(du -h "$DEB" | cut -f1) $DEB: $(dpkg-deb -c "$DEB" | wc -l) entries, Depends: $DEPENDS"

if $run_lintian; then
    echo "==> lintian"
    # Errors fail the build; warnings and information are shown.
    lintian --fail-on error --tag-display-limit 0 --info "$DEB"
fi
echo "package: $DEB"
