#!/usr/bin/env bash
# Language server benchmark: codingplan-lsp through the real backend and an instant test provider,
# beside tabby-agent 1.5.0 against an instant fake Tabby server, in one run; then the memory of
# codingplan-lsp with 100 open documents totalling 10 MB. Prints a markdown report.
#
#   scripts/bench-lsp.sh [--docs] [lspbench flags...]
#
#   --docs       also write the report into docs/benchmarks.md (between the bench-lsp markers)
#   lspbench flags, e.g. -rounds 10 -per-round 30 -warmup 30 -mem-docs 100, -bin "" (peer only),
#   -tabby "" (ours only), -lsp-args "..." (extra flags of the measured codingplan-lsp)
#
# tabby-agent is installed with npm into ${CODINGPLAN_CACHE:-~/.cache/codingplan}/tabby-agent on
# first use (needs node >= 18). The backend uses the Valkey at CODINGPLAN_BENCH_VALKEY (default
# 127.0.0.1:6390 when it answers PING, else the backend's in-process limiter).
set -euo pipefail

export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
cd "$(dirname "$0")/.."

TABBY_VERSION=1.5.0
cache=${CODINGPLAN_CACHE:-$HOME/.cache/codingplan}
tabby_prefix=$cache/tabby-agent
tabby_pkg=$tabby_prefix/node_modules/tabby-agent

docs=()
args=()
for a in "$@"; do
	case $a in
	--docs) docs=(-docs docs/benchmarks.md) ;;
	*) args+=("$a") ;;
	esac
done

command -v node >/dev/null || { echo "bench-lsp: node is required for tabby-agent" >&2; exit 1; }
if [[ ! -f $tabby_pkg/dist/cli.js ]] || ! grep -q "\"version\": \"$TABBY_VERSION\"" "$tabby_pkg/package.json"; then
	echo "bench-lsp: installing tabby-agent@$TABBY_VERSION into $tabby_prefix" >&2
	mkdir -p "$tabby_prefix"
	npm install --prefix "$tabby_prefix" --no-audit --no-fund --loglevel=error "tabby-agent@$TABBY_VERSION" >&2
fi

valkey=${CODINGPLAN_BENCH_VALKEY-}
if [[ -z ${CODINGPLAN_BENCH_VALKEY+set} ]] && command -v valkey-cli >/dev/null &&
	[[ $(valkey-cli -p 6390 PING 2>/dev/null) == PONG ]]; then
	valkey=127.0.0.1:6390
fi

echo "bench-lsp: building" >&2
make --no-print-directory build >&2
bench=$(mktemp -d)
trap 'rm -rf "$bench"' EXIT
go build -o "$bench/lspbench" ./lsp/bench/cmd/lspbench

# The backend's state dir is kept: its first start builds the local n-gram model (up to a minute).
mkdir -p "$cache/bench-lsp-state"
"$bench/lspbench" -tabby "$tabby_pkg" -bin bin -valkey "$valkey" -state "$cache/bench-lsp-state" \
	-command "scripts/bench-lsp.sh${*:+ $*}" ${docs[@]+"${docs[@]}"} ${args[@]+"${args[@]}"}
