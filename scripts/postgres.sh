#!/usr/bin/env bash
# Install, start and stop the throwaway PostgreSQL clusters used by the account plane's tests.
#
#   scripts/postgres.sh install          install PostgreSQL 15 (Debian's package) when missing
#   scripts/postgres.sh start [port]     a cluster on 127.0.0.1:port (default 5490); created on first
#                                        start, restarted when it was halted
#   scripts/postgres.sh halt [port]      stop the server but keep its data (outage tests)
#   scripts/postgres.sh stop [port]      stop the server and remove the cluster
#   scripts/postgres.sh ping [port]      exit 0 if the server on port accepts connections
#
# Clusters trust local connections (user postgres, no password), keep nothing durable (fsync off)
# and live in CODINGPLAN_POSTGRES_DIR/<port> (default ${TMPDIR:-/tmp}/codingplan-postgres), owned by
# the postgres user, since initdb and postgres refuse to run as root. Debian's own cluster "main"
# is left alone.
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
STATE_DIR=${CODINGPLAN_POSTGRES_DIR:-${TMPDIR:-/tmp}/codingplan-postgres}
DEFAULT_PORT=5490

die() { echo "postgres.sh: $*" >&2; exit 1; }

check_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536)) || die "bad port: $1"; }

# as_postgres CMD...: run a server binary as the postgres user (as root), or as ourselves.
as_postgres() {
	if [[ $(id -u) == 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

cmd_install() {
	[[ -x $BIN/pg_ctl ]] && return 0
	[[ $(id -u) == 0 ]] || die "installing PostgreSQL needs root (apt-get)"
	local log
	log=$(mktemp)
	export DEBIAN_FRONTEND=noninteractive
	# Update the package lists only when the install fails without (a fresh image has none).
	if ! apt-get install -y -q postgresql >"$log" 2>&1 &&
		! { apt-get update -q && apt-get install -y -q postgresql; } >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		die "apt-get failed"
	fi
	rm -f "$log"
	[[ -x $BIN/pg_ctl ]] || die "$BIN/pg_ctl still missing after install"
}

need_postgres() { [[ -x $BIN/pg_ctl ]] || die "PostgreSQL not installed: run scripts/postgres.sh install"; }

ping_port() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$1" -t 2; }

cmd_start() {
	need_postgres
	local port=${1:-$DEFAULT_PORT} dir
	check_port "$port"
	dir=$STATE_DIR/$port
	if [[ -f $dir/data/postmaster.pid ]] && ping_port "$port"; then
		return 0
	fi
	if [[ ! -f $dir/data/PG_VERSION ]]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		chmod 755 "$STATE_DIR"
		[[ $(id -u) == 0 ]] && chown postgres: "$dir"
		as_postgres "$BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; die "initdb failed"; }
	fi
	# -w waits until the server accepts connections (or pg_ctl's own timeout passes).
	as_postgres "$BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o \
		"-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null || { tail -n 20 "$dir/log" >&2; die "the server on port $port did not start"; }
}

# halt PORT: stop the server fast (open connections are cut), keeping the cluster.
halt_port() {
	local dir=$STATE_DIR/$1
	[[ -f $dir/data/postmaster.pid ]] || return 0
	as_postgres "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
}

cmd_halt() {
	need_postgres
	local port=${1:-$DEFAULT_PORT}
	check_port "$port"
	halt_port "$port"
}

cmd_stop() {
	local port=${1:-$DEFAULT_PORT}
	check_port "$port"
	[[ -d $STATE_DIR/$port ]] || return 0
	need_postgres
	halt_port "$port"
	rm -rf "${STATE_DIR:?}/$port"
}

case ${1:-} in
install) cmd_install ;;
start) shift; cmd_start "$@" ;;
halt) shift; cmd_halt "$@" ;;
stop) shift; cmd_stop "$@" ;;
ping) shift; need_postgres; ping_port "${1:-$DEFAULT_PORT}" ;;
*)
	sed -n '2,14s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
