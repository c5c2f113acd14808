#!/usr/bin/env bash
# Install what the account pages' browser test needs, from the package registries only:
# Debian's Chromium (apt, without recommends) and playwright-core (npm) into a private prefix in
# the cache dir. A finished install is marked by a stamp file, so a second run does nothing
# (about 0.05 s) and needs no network.
#
#   scripts/install-playwright.sh
#
# Prints "playwright-core DIR" (the package directory, for require/import) and "chromium PATH".
# playwright-core lives in ${CODINGPLAN_CACHE:-$HOME/.cache/codingplan}/playwright-core-VERSION/;
# its own browser downloads are never used (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD).
set -euo pipefail

cd "$(dirname "$0")/.."
# The version the VS Code end-to-end test pins too (editors/vscode/test/e2e/package.json), so
# that npm's cache holds one copy.
VERSION=${CODINGPLAN_PLAYWRIGHT_VERSION:-1.65.1}
CACHE=${CODINGPLAN_CACHE:-$HOME/.cache/codingplan}
DIR="$CACHE/playwright-core-$VERSION"
STAMP="$DIR/.installed"

die() { echo "install-playwright.sh: $*" >&2; exit 1; }

install_playwright() {
	if [[ -f $STAMP && -f $DIR/node_modules/playwright-core/package.json ]]; then
		return 0
	fi
	command -v npm >/dev/null || die "npm is missing: install Node.js (20 or later) with npm"
	rm -rf "$DIR"
	mkdir -p "$DIR"
	echo '{"name":"codingplan-playwright","private":true}' >"$DIR/package.json"
	local log="$DIR/install.log"
	if ! (cd "$DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_config_update_notifier=false \
		npm_config_fund=false npm_config_audit=false npm install --no-save "playwright-core@$VERSION") \
		>"$log" 2>&1; then
		tail -n 40 "$log" >&2
		die "npm install playwright-core@$VERSION failed (log: $log)"
	fi
	touch "$STAMP"
}

scripts/apt-install.sh chromium
install_playwright
echo "playwright-core $DIR/node_modules/playwright-core"
echo "chromium $(command -v chromium)"
