#!/usr/bin/env bash
# Install Emacs with eglot from Debian (emacs-nox, elpa-eglot) for the editor end-to-end test of
# docs/editors.md's eglot setup. Prints "emacs PATH". Does nothing when both are installed.
set -euo pipefail

die() { echo "install-emacs.sh: $*" >&2; exit 1; }
pkgs=(emacs-nox elpa-eglot)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
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
fi
echo "emacs $(command -v emacs)"
