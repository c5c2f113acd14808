#!/usr/bin/env bash
# Install, start and stop the private Valkey servers used by tests and `make run`.
#
#   scripts/valkey.sh install                  install valkey-server and valkey-cli (Debian backports)
#   scripts/valkey.sh start [port]             one server, default port 6390
#   scripts/valkey.sh stop [port]
#   scripts/valkey.sh cluster-start [p1 p2 p3] three-node cluster, default ports 7001 7002 7003
#   scripts/valkey.sh cluster-stop [p1 p2 p3]
#   scripts/valkey.sh ping [port]              exit 0 if a server on port answers PONG
#
# Servers listen on 127.0.0.1 only, keep nothing on disk (--save '' --appendonly no) and keep their
# pid, log and cluster files in CODINGPLAN_VALKEY_DIR (default ${TMPDIR:-/tmp}/codingplan-valkey).
set -euo pipefail

STATE_DIR=${CODINGPLAN_VALKEY_DIR:-${TMPDIR:-/tmp}/codingplan-valkey}
DEFAULT_PORT=6390
DEFAULT_CLUSTER_PORTS=(7001 7002 7003)
READY_TIMEOUT=${CODINGPLAN_VALKEY_TIMEOUT:-30} # seconds

die() { echo "valkey.sh: $*" >&2; exit 1; }

# deadline_passed END: true once the wall clock (seconds) has reached END.
deadline_passed() { (($(date +%s) >= $1)); }

ping_port() { [[ $(valkey-cli -p "$1" PING 2>/dev/null) == PONG ]]; }

# backports_stanza prints a deb822 stanza for bookworm-backports built from the machine's own
# bookworm stanza (scripts/debian-stanza.sh), so no mirror host name lives in this repository.
backports_stanza() {
	"$(dirname "${BASH_SOURCE[0]}")/debian-stanza.sh" bookworm-backports || die "cannot build the bookworm-backports apt source"
}

cmd_install() {
	if command -v valkey-server >/dev/null && command -v valkey-cli >/dev/null; then
		return 0
	fi
	[[ $(id -u) == 0 ]] || die "installing Valkey needs root (apt-get)"
	local list=/etc/apt/sources.list.d/codingplan-backports.sources log
	local stanza
	stanza=$(backports_stanza)
	if [[ ! -f $list ]] || [[ $(cat "$list") != "$stanza" ]]; then
		printf '%s\n' "$stanza" >"$list"
	fi
	log=$(mktemp)
	export DEBIAN_FRONTEND=noninteractive
	if ! { apt-get update -q &&
		apt-get install -y -q -t bookworm-backports valkey-server valkey-tools; } >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		die "apt-get failed"
	fi
	rm -f "$log"
	command -v valkey-server >/dev/null || die "valkey-server still missing after install"
}

need_valkey() {
	command -v valkey-server >/dev/null && command -v valkey-cli >/dev/null ||
		die "valkey-server/valkey-cli not installed: run scripts/valkey.sh install"
}

check_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536)) || die "bad port: $1"; }

# launch PORT [extra valkey-server args...]: start one daemonized server unless one already answers.
launch() {
	local port=$1
	shift
	check_port "$port"
	if ping_port "$port"; then
		return 0
	fi
	mkdir -p "$STATE_DIR"
	valkey-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize yes --pidfile "$STATE_DIR/valkey-$port.pid" \
		--logfile "$STATE_DIR/valkey-$port.log" --dir "$STATE_DIR" "$@" >/dev/null ||
		die "valkey-server on port $port did not start (see $STATE_DIR/valkey-$port.log)"
}

# wait_ping PORT: poll until the server answers PONG, or fail at the deadline.
wait_ping() {
	local end=$(($(date +%s) + READY_TIMEOUT))
	until ping_port "$1"; do
		if deadline_passed "$end"; then
			tail -n 20 "$STATE_DIR/valkey-$1.log" >&2 2>/dev/null || true
			die "no PONG from port $1 within ${READY_TIMEOUT}s"
		fi
		sleep 0.05
	done
}

cmd_start() {
	need_valkey
	local port=${1:-$DEFAULT_PORT}
	launch "$port"
	wait_ping "$port"
}

# alive PID: the process exists and is not a zombie (a daemon's zombie lingers until init reaps it).
alive() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

# stop_port PORT: stop the server whose pid file we wrote and wait until it is gone.
stop_port() {
	local port=$1 pidfile pid end
	check_port "$port"
	pidfile="$STATE_DIR/valkey-$port.pid"
	[[ -f $pidfile ]] || return 0
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || die "bad pid file $pidfile"
	if kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == valkey-server ]]; then
		kill -TERM "$pid"
		end=$(($(date +%s) + READY_TIMEOUT))
		while alive "$pid"; do
			if deadline_passed "$end"; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
			sleep 0.05
		done
	fi
	rm -f "$pidfile"
}

cmd_stop() { stop_port "${1:-$DEFAULT_PORT}"; }

cluster_ok() { valkey-cli -p "$1" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok'; }

cmd_cluster_start() {
	need_valkey
	local ports=("$@") p end addrs=() known
	((${#ports[@]})) || ports=("${DEFAULT_CLUSTER_PORTS[@]}")
	for p in "${ports[@]}"; do
		# A node that is not running starts from scratch: no stale nodes-*.conf from a killed run.
		ping_port "$p" || rm -f "$STATE_DIR/nodes-$p.conf"
		launch "$p" --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
			--cluster-node-timeout 5000
	done
	for p in "${ports[@]}"; do
		wait_ping "$p"
		addrs+=("127.0.0.1:$p")
	done
	# Create the cluster only when the first node knows no other node yet (it is fresh).
	known=$(valkey-cli -p "${ports[0]}" CLUSTER INFO | tr -d '\r' |
		sed -n 's/^cluster_known_nodes://p')
	if [[ $known == 1 ]]; then
		local log
		log=$(mktemp)
		if ! valkey-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
			>"$log" 2>&1; then
			cat "$log" >&2
			rm -f "$log"
			die "cluster create failed"
		fi
		rm -f "$log"
	fi
	end=$(($(date +%s) + READY_TIMEOUT))
	for p in "${ports[@]}"; do
		until cluster_ok "$p"; do
			deadline_passed "$end" && die "cluster_state not ok on port $p within ${READY_TIMEOUT}s"
			sleep 0.05
		done
	done
}

cmd_cluster_stop() {
	local ports=("$@") p
	((${#ports[@]})) || ports=("${DEFAULT_CLUSTER_PORTS[@]}")
	for p in "${ports[@]}"; do
		stop_port "$p"
		# The next cluster-start then builds a fresh cluster instead of re-forming this one.
		rm -f "$STATE_DIR/nodes-$p.conf"
	done
}

case ${1:-} in
install) cmd_install ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
cluster-start) shift; cmd_cluster_start "$@" ;;
cluster-stop) shift; cmd_cluster_stop "$@" ;;
ping) shift; need_valkey; ping_port "${1:-$DEFAULT_PORT}" ;;
*)
	sed -n '2,12s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
