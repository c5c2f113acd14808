#!/usr/bin/env bash
# The account pages in a real browser (make test-pages): starts bin/codingplan-accounts on a
# loopback port with a fresh SQLite database, in dev mode without SMTP (mails at /dev/mail) and
# signup_plan lite, then runs backend/internal/accounts/browser/pages.test.mjs (Chromium driven
# by playwright-core; the test itself runs bin/codingplan-lsp for the device sign-in). Installs
# Chromium and playwright-core on first use (scripts/install-playwright.sh, cached under
# ~/.cache/codingplan).
#
#   scripts/pages-e2e.sh
#
# Needs bin/codingplan-accounts and bin/codingplan-lsp (make build). On failure the service's
# and the language servers' logs and the test's screenshots stay in the artifacts directory
# printed at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
die() { echo "pages-e2e.sh: $*" >&2; exit 1; }
for b in codingplan-accounts codingplan-lsp; do
	[[ -x bin/$b ]] || die "bin/$b missing: run make build"
done

t0=$SECONDS
tools=$(scripts/install-playwright.sh)
playwright=$(sed -n 's/^playwright-core //p' <<<"$tools")
chromium=$(sed -n 's/^chromium //p' <<<"$tools")
install=$((SECONDS - t0))

ART=$(mktemp -d "${TMPDIR:-/tmp}/codingplan-pages-XXXXXX")
pid=
cleanup() {
	if [[ -n $pid ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$ART/accounts.toml" <<TOML
listen = "127.0.0.1:$port"
database = "sqlite:$ART/accounts.db"
dev = true
signup_plan = "lite"
log_level = "debug"

# The story posts a password or an email for its one address 8 times in about 20 s (sign-up
# twice, sign-in, reset, two sign-ins, two deletions): more than the default burst of 5 plus
# one every 6 s, when it runs fast. The limits have their own tests (go test, TestPage*).
[rate]
session_burst = 20
TOML
# No Valkey: revocations only log; every CODINGPLAN_ACCOUNTS_* variable of the caller is ignored.
env -u CODINGPLAN_ACCOUNTS_CONFIG bin/codingplan-accounts serve --config "$ART/accounts.toml" \
	>"$ART/accounts.stdout" 2>"$ART/accounts.stderr" &
pid=$!
end=$((SECONDS + 30))
until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
	((SECONDS < end)) || die "codingplan-accounts is not ready (see $ART/accounts.stderr)"
	kill -0 "$pid" 2>/dev/null || die "codingplan-accounts exited (see $ART/accounts.stderr)"
	sleep 0.05
done

t0=$SECONDS
if ! CODINGPLAN_PAGES_URL="http://127.0.0.1:$port" CODINGPLAN_PLAYWRIGHT="$playwright" CODINGPLAN_CHROMIUM="$chromium" \
	CODINGPLAN_PAGES_ARTIFACTS="$ART" CODINGPLAN_LSP="$PWD/bin/codingplan-lsp" node --test --test-timeout=90000 backend/internal/accounts/browser/pages.test.mjs 2>&1 |
	tee "$ART/test.log"; then
	echo "pages-e2e.sh: FAILED (service and codingplan-lsp logs, screenshots and HTML in $ART)"
	exit 1
fi
echo "pages-e2e.sh: install ${install}s, browser test $((SECONDS - t0))s"
cleanup
pid=
trap - EXIT
rm -rf "$ART"
