#!/usr/bin/env bash
# debian-stanza.sh SUITE prints a deb822 apt source stanza for SUITE (e.g. bookworm-backports, sid)
# that reuses the URIs and Signed-By of the machine's own bookworm stanza in
# /etc/apt/sources.list.d/debian.sources, so no mirror host name lives in this repository.
# Used by valkey.sh (bookworm-backports) and install-neovim.sh (trixie, sid).
set -euo pipefail
suite=${1:?usage: debian-stanza.sh SUITE}
src=${CODINGPLAN_DEBIAN_SOURCES:-/etc/apt/sources.list.d/debian.sources}
[[ -r $src ]] || { echo "debian-stanza.sh: cannot read $src" >&2; exit 1; }
awk -v suite="$suite" '
	function flush() {
		if (!done && suites ~ /(^|[[:space:]])bookworm([[:space:]]|$)/ && uris != "") {
			print "Types: deb"
			print "URIs: " uris
			print "Suites: " suite
			print "Components: main"
			if (signed != "") print "Signed-By: " signed
			done = 1
		}
		suites = ""; uris = ""; signed = ""
	}
	/^[[:space:]]*#/ { next }
	/^[[:space:]]*$/ { flush(); next }
	/^Suites:/    { sub(/^Suites:[[:space:]]*/, "");    suites = $0 }
	/^URIs:/      { sub(/^URIs:[[:space:]]*/, "");      uris = $0 }
	/^Signed-By:/ { sub(/^Signed-By:[[:space:]]*/, ""); signed = $0 }
	END { flush(); if (!done) exit 1 }
' "$src" || { echo "debian-stanza.sh: no stanza with Suites: bookworm in $src" >&2; exit 1; }
