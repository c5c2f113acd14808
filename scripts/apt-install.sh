#!/usr/bin/env bash
# Install the Debian packages named that are missing, without recommends; does nothing (and
# needs no network) when all are installed. Runs apt-get update only when the first install
# fails (stale lists). Used by the install-*.sh scripts.
#
#   scripts/apt-install.sh PKG...
set -euo pipefail

die() { echo "apt-install.sh: $*" >&2; exit 1; }
missing=()
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0
[[ $(id -u) == 0 ]] || die "missing ${missing[*]}: installing needs root (apt-get)"
log=$(mktemp)
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get install -y -q --no-install-recommends "${missing[@]}" ||
	{ apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; }; } \
	>"$log" 2>&1; then
	cat "$log" >&2
	rm -f "$log"
	die "apt-get install ${missing[*]} failed"
fi
rm -f "$log"
