#!/usr/bin/env bash
# Install what the VS Code end-to-end test needs, without anything from outside the package
# registries: code-server (the real VS Code workbench and extension host) from npm into a private
# prefix, Debian's Chromium, and playwright-core in editors/vscode/test/e2e.
#
#   scripts/install-code-server.sh
#
# Prints "code-server PATH" and "chromium PATH". code-server lives in
# ${CODINGPLAN_CACHE:-$HOME/.cache/codingplan}/code-server-VERSION/; a finished install is marked by
# a stamp file there, so a second run does nothing (about 0.1 s).
#
# code-server 4.100.3 (VS Code 1.100.3) is the newest release that runs on Debian 12's Node 20. Its
# install needs, here:
#   - apt: ripgrep libkrb5-dev g++ make python3 pkg-config (native modules, kerberos headers)
#   - @vscode/ripgrep's postinstall downloads rg from a code host: its cache is pre-seeded with a
#     tarball of Debian's /usr/bin/rg
#   - node-gyp fetches node headers: npm_config_nodedir=/usr uses the system's
#   - node-pty runs `npx node-gyp`: npm_config_yes=true; it refuses root: npm_config_unsafe_perm=true
set -euo pipefail

cd "$(dirname "$0")/.."
VERSION=${CODINGPLAN_CODE_SERVER_VERSION:-4.100.3}
CACHE=${CODINGPLAN_CACHE:-$HOME/.cache/codingplan}
DIR="$CACHE/code-server-$VERSION"
STAMP="$DIR/.installed"
E2E=editors/vscode/test/e2e
# What @vscode/ripgrep 1.15.11 (code-server 4.100.x) looks for in its download cache.
RG_CACHE=vscode-ripgrep-cache-1.15.11
RG_TARBALL=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz

die() { echo "install-code-server.sh: $*" >&2; exit 1; }

install_code_server() {
	if [[ -f $STAMP && -x $DIR/node_modules/.bin/code-server ]]; then
		return 0
	fi
	rm -rf "$DIR"
	mkdir -p "$DIR/tmp/$RG_CACHE"
	tar -czf "$DIR/tmp/$RG_CACHE/$RG_TARBALL" -C /usr/bin rg
	echo '{"name":"codingplan-code-server","private":true}' >"$DIR/package.json"
	local log="$DIR/install.log"
	if ! (cd "$DIR" && TMPDIR="$DIR/tmp" npm_config_nodedir=/usr npm_config_yes=true \
		npm_config_unsafe_perm=true npm_config_update_notifier=false npm_config_fund=false \
		npm_config_audit=false npm install --no-save "code-server@$VERSION") >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		die "npm install code-server@$VERSION failed (log: $log)"
	fi
	"$DIR/node_modules/.bin/code-server" --version >/dev/null 2>&1 ||
		die "code-server does not run after install (log: $log)"
	rm -rf "$DIR/tmp"
	touch "$STAMP"
}

install_playwright() {
	local want have=
	want=$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' "$E2E/package.json")
	[[ -f $E2E/node_modules/playwright-core/package.json ]] &&
		have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$E2E/node_modules/playwright-core/package.json")
	[[ -n $want && $have == "$want" ]] && return 0
	local log
	log=$(mktemp)
	if ! (cd "$E2E" && npm ci --no-audit --no-fund) >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		die "npm ci in $E2E failed"
	fi
	rm -f "$log"
}

scripts/apt-install.sh ripgrep libkrb5-dev g++ make python3 pkg-config chromium
install_code_server
install_playwright
echo "code-server $DIR/node_modules/.bin/code-server"
echo "chromium $(command -v chromium)"
