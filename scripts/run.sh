#!/usr/bin/env bash
# Run codingplan for local development: `make run`, or `make run ARGS='--listen 127.0.0.1:9000'`
# (the arguments go to `codingplan-backend serve`).
#
# Account service: codingplan-accounts starts first, on SQLite in the state dir
# ($XDG_STATE_HOME/codingplan/accounts.db, or CODINGPLAN_STATE_DIR's), listening on
# CODINGPLAN_ACCOUNTS_LISTEN (default 127.0.0.1:8788); once its /readyz answers, the backend
# starts with --jwks pointed at its key set (the backend reads the JWKS once at start, so the
# order matters). On the first run a development account (dev@localhost, plan pro) and an API key
# are created; the key is kept in <state dir>/dev-api-key (mode 0600) for the next runs. Access
# tokens live 24 hours here (CODINGPLAN_ACCOUNTS_ACCESS_TTL), not 15 minutes, as the editors'
# CODINGPLAN_TOKEN does not refresh. With --jwks or CODINGPLAN_JWKS set, no account service is
# started and the backend runs alone, as configured.
#
# Valkey: unless a Valkey is configured already (CODINGPLAN_VALKEY, CODINGPLAN_VALKEY_CLUSTER,
# CODINGPLAN_CONFIG, or a --valkey, --valkey-cluster or --config argument), and valkey-server is
# installed, it starts the private development Valkey on 127.0.0.1:6390 (or reuses the one running
# there) and points the backend at it. Without valkey-server the backend limits streams in-process.
# The account service publishes revocations to the same Valkey (CODINGPLAN_VALKEY and
# CODINGPLAN_VALKEY_PREFIX are passed on; a Valkey named only in a --config file or argument must
# be given to it as CODINGPLAN_ACCOUNTS_VALKEY).
#
# Stopping: Ctrl-C (SIGINT) or SIGTERM reaches this script, which passes it on once to the backend
# (it drains its streams; a second Ctrl-C ends it at once) and then stops the account service. The
# development Valkey stays running, for the next run and for the tests; `scripts/valkey.sh stop`
# ends it. Nothing else is left running.
set -euo pipefail

cd "$(dirname "$0")/.."
for b in codingplan-backend codingplan-accounts; do
	[[ -x bin/$b ]] || { echo "run.sh: bin/$b is missing: run make build" >&2; exit 1; }
done

configured=${CODINGPLAN_VALKEY:-}${CODINGPLAN_VALKEY_CLUSTER:-}${CODINGPLAN_CONFIG:-}
jwks=${CODINGPLAN_JWKS:-}
listen=${CODINGPLAN_LISTEN:-127.0.0.1:8787}
prev=
for arg in "$@"; do
	case $arg in
	--valkey | --valkey=* | -valkey | -valkey=* | --valkey-cluster* | -valkey-cluster* | --config | --config=* | -config | -config=*)
		configured=yes
		;;
	--jwks=* | -jwks=*) jwks=${arg#*=} ;;
	--listen=* | -listen=*) listen=${arg#*=} ;;
	esac
	case $prev in
	--jwks | -jwks) jwks=$arg ;;
	--listen | -listen) listen=$arg ;;
	esac
	prev=$arg
done

args=()
if [[ -z $configured ]]; then
	if command -v valkey-server >/dev/null && command -v valkey-cli >/dev/null; then
		scripts/valkey.sh start 6390
		# One node on a private Valkey: no other node can hold leases that a Valkey restart
		# lost, so new streams need not wait out the recovery window.
		args=(--valkey 127.0.0.1:6390 --lease-recovery-window=-1s)
		export CODINGPLAN_ACCOUNTS_VALKEY=${CODINGPLAN_ACCOUNTS_VALKEY:-127.0.0.1:6390}
		echo "run.sh: Valkey on 127.0.0.1:6390; it keeps running after the backend stops (scripts/valkey.sh stop ends it)" >&2
	else
		echo "run.sh: valkey-server is not installed (scripts/valkey.sh install): streams are limited in this process only" >&2
	fi
fi

if [[ -n $jwks ]]; then
	exec bin/codingplan-backend serve "${args[@]}" "$@"
fi
command -v curl >/dev/null || { echo "run.sh: curl is needed to wait for the account service" >&2; exit 1; }

# The account service's settings, from the backend's where they must agree.
[[ -n ${CODINGPLAN_STATE_DIR:-} ]] && export CODINGPLAN_ACCOUNTS_STATE_DIR=${CODINGPLAN_ACCOUNTS_STATE_DIR:-$CODINGPLAN_STATE_DIR}
[[ -n ${CODINGPLAN_VALKEY:-} ]] && export CODINGPLAN_ACCOUNTS_VALKEY=${CODINGPLAN_ACCOUNTS_VALKEY:-$CODINGPLAN_VALKEY}
[[ -n ${CODINGPLAN_VALKEY_PREFIX:-} ]] && export CODINGPLAN_ACCOUNTS_VALKEY_PREFIX=${CODINGPLAN_ACCOUNTS_VALKEY_PREFIX:-$CODINGPLAN_VALKEY_PREFIX}
export CODINGPLAN_ACCOUNTS_LISTEN=${CODINGPLAN_ACCOUNTS_LISTEN:-127.0.0.1:8788}
export CODINGPLAN_ACCOUNTS_ACCESS_TTL=${CODINGPLAN_ACCOUNTS_ACCESS_TTL:-24h}
export CODINGPLAN_ACCOUNTS_REVOCATION_TTL=${CODINGPLAN_ACCOUNTS_REVOCATION_TTL:-25h}
# Development mode: without an SMTP server the pages' mails are listed at /dev/mail.
export CODINGPLAN_ACCOUNTS_DEV=${CODINGPLAN_ACCOUNTS_DEV:-true}
accounts_url=http://$CODINGPLAN_ACCOUNTS_LISTEN
state=${CODINGPLAN_ACCOUNTS_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/codingplan}
keyfile=$state/dev-api-key
mkdir -p "$state"

# First run: the development account and its API key (before the service opens the database).
if ! bin/codingplan-accounts account show dev@localhost >/dev/null 2>&1; then
	bin/codingplan-accounts account create --email dev@localhost --name Developer --plan pro >/dev/null
	rm -f "$keyfile"
fi
if [[ ! -s $keyfile ]]; then
	(umask 077 && bin/codingplan-accounts key create dev@localhost --name make-run >"$keyfile.tmp" 2>/dev/null)
	mv "$keyfile.tmp" "$keyfile"
fi

set -m # each service in its own process group: a terminal's Ctrl-C reaches this script only
bin/codingplan-accounts serve >/dev/null &
accounts_pid=$!
backend_pid=
stop() {
	trap - INT TERM
	trap 'kill -INT $backend_pid 2>/dev/null || true' INT # a second Ctrl-C: the backend stops at once
	[[ -n $backend_pid ]] && kill -"$1" "$backend_pid" 2>/dev/null || true
	[[ -z $backend_pid ]] && kill -TERM "$accounts_pid" 2>/dev/null || true
}
trap 'stop INT' INT
trap 'stop TERM' TERM

# wait_ready URL PID: until URL answers 200, while PID lives (at most 60 s).
wait_ready() {
	for _ in $(seq 300); do
		curl -fs -o /dev/null --max-time 1 "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
if ! wait_ready "$accounts_url/readyz" "$accounts_pid"; then
	echo "run.sh: the account service did not become ready on $accounts_url" >&2
	kill -TERM "$accounts_pid" 2>/dev/null || true
	wait "$accounts_pid" || true
	exit 1
fi

bin/codingplan-backend serve --jwks "$accounts_url/.well-known/jwks.json" "${args[@]}" "$@" &
backend_pid=$!
if wait_ready "http://$listen/readyz" "$backend_pid"; then
	if [[ -t 1 ]]; then
		keyshown=$(cat "$keyfile")
	else
		keyshown="\$(cat $keyfile)" # stdout is a log: no credential in it
	fi
	cat <<BANNER

codingplan is running: the backend on ws://$listen/v1/ws, the account service on $accounts_url
(database: $state/accounts.db).

The development account dev@localhost (plan pro) has the API key
  $keyshown
(kept in $keyfile). Exchange it for an access token (valid 24 hours here):

  curl -d grant_type=urn:codingplan:grant-type:api_key -d api_key=$keyshown $accounts_url/v1/token

and give the access_token to the editors as today: codingplan.signIn (VS Code), :Codingplan signin
(Neovim), or the environment of codingplan-lsp:

  export CODINGPLAN_BACKEND_URL=ws://$listen/v1/ws
  export CODINGPLAN_TOKEN=<the access_token>

Account pages: $accounts_url/account (sign up, or set a password for dev@localhost at
$accounts_url/reset; the mails appear at $accounts_url/dev/mail).
Accounts and keys: bin/codingplan-accounts account|key|signin ... (docs/accounts.md).
Ctrl-C stops both services.

BANNER
fi

rc=0
wait "$backend_pid" || rc=$? # returns early when a signal is trapped
while kill -0 "$backend_pid" 2>/dev/null; do
	rc=0
	wait "$backend_pid" || rc=$?
done
kill -TERM "$accounts_pid" 2>/dev/null || true
wait "$accounts_pid" || true
exit "$rc"
