#!/usr/bin/env bash
# Run the backend for local development: `make run`, or `make run ARGS='--listen 127.0.0.1:9000'`
# (the arguments go to `codingplan-backend serve`).
#
# Valkey: unless a Valkey is configured already (CODINGPLAN_VALKEY, CODINGPLAN_VALKEY_CLUSTER,
# CODINGPLAN_CONFIG, or a --valkey, --valkey-cluster or --config argument), and valkey-server is
# installed, it starts the private development Valkey on 127.0.0.1:6390 (or reuses the one running
# there) and points the backend at it. Without valkey-server the backend limits streams in-process.
#
# Stopping: the backend replaces this script (exec), so Ctrl-C reaches it directly: it drains its
# streams and exits (a second Ctrl-C ends it at once). The development Valkey stays running, for
# the next run and for the tests; `scripts/valkey.sh stop` ends it. Nothing else is left running.
set -euo pipefail

cd "$(dirname "$0")/.."
[[ -x bin/codingplan-backend ]] || { echo "run.sh: bin/codingplan-backend is missing: run make build" >&2; exit 1; }

configured=${CODINGPLAN_VALKEY:-}${CODINGPLAN_VALKEY_CLUSTER:-}${CODINGPLAN_CONFIG:-}
for arg in "$@"; do
	case $arg in
	--valkey | --valkey=* | -valkey | -valkey=* | --valkey-cluster* | -valkey-cluster* | --config | --config=* | -config | -config=*)
		configured=yes
		;;
	esac
done

args=()
if [[ -z $configured ]]; then
	if command -v valkey-server >/dev/null && command -v valkey-cli >/dev/null; then
		scripts/valkey.sh start 6390
		# One node on a private Valkey: no other node can hold leases that a Valkey restart
		# lost, so new streams need not wait out the recovery window.
		args=(--valkey 127.0.0.1:6390 --lease-recovery-window=-1s)
		echo "run.sh: Valkey on 127.0.0.1:6390; it keeps running after the backend stops (scripts/valkey.sh stop ends it)" >&2
	else
		echo "run.sh: valkey-server is not installed (scripts/valkey.sh install): streams are limited in this process only" >&2
	fi
fi
exec bin/codingplan-backend serve "${args[@]}" "$@"
