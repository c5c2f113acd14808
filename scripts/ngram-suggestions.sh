#!/usr/bin/env bash
# Measures the local model's suggestions as a user sees them (docs/benchmarks.md#local-model):
# precision, coverage and useful characters per position, greedy decoding (before issue 14) beside
# what Complete shows now, on the held-out GOROOT files and on Go code outside GOROOT taken from the
# module cache (modules this repository requires, so `go mod download` has fetched them).
#   scripts/ngram-suggestions.sh [state dir] [extra codingplan-ngrameval flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}"
state="${1:-${TMPDIR:-/tmp}/codingplan-ngram-bench}"
shift || true
modules=(
	github.com/gorilla/websocket
	github.com/BurntSushi/toml
	github.com/jackc/pgx/v5
	github.com/prometheus/client_golang
	github.com/valkey-io/valkey-go
	github.com/golang-jwt/jwt/v5
	github.com/pressly/goose/v3
)
go mod download "${modules[@]}"
dirs=()
for m in "${modules[@]}"; do
	dirs+=("$(go list -m -f '{{.Dir}}' "$m")")
done
outside=$(IFS=,; echo "${dirs[*]}")
go run ./backend/cmd/codingplan-ngrameval -state "$state" -suggestions-only \
	-outside "$outside" -max-outside-files 300 "$@"
