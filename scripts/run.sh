#!/usr/bin/env bash
# Run the backend for local development (make run). With valkey-server installed it uses a private
# Valkey on 127.0.0.1:6390 (left running; `scripts/valkey.sh stop` ends it), else the backend's
# in-process limiter. Extra arguments go to the backend.
set -euo pipefail

cd "$(dirname "$0")/.."
addr=
if command -v valkey-server >/dev/null; then
	scripts/valkey.sh start 6390
	addr=127.0.0.1:6390
fi
exec bin/codingplan-backend serve --valkey "$addr" "$@"
