#!/usr/bin/env bash
# Idle connections on one backend node: opens CONNS (default 10000) authenticated websockets that
# send nothing, holds them HOLD (default 60s), and reports RSS per connection, RSS over time, idle
# CPU and a fresh connection's dial-to-hello and time to first token meanwhile, beside a bare
# gorilla/websocket echo server (the floor) measured the same way in the same run. Loopback only;
# about 2 x (HOLD + 15 s). The benchmark is BenchmarkIdle in backend/bench/idle_test.go; figures
# go to docs/benchmarks.md ("Idle connections").
#
#   scripts/bench-idle.sh [CONNS [HOLD]]
#
# Valkey: CODINGPLAN_TEST_VALKEY (default 127.0.0.1:6390; scripts/valkey.sh start 6390). Needs
# 2 x CONNS + 100 file descriptors in this shell (ulimit -n).
set -euo pipefail

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
export CODINGPLAN_TEST_VALKEY=${CODINGPLAN_TEST_VALKEY-127.0.0.1:6390}
export CODINGPLAN_REQUIRE_VALKEY=1
export IDLE_CONNS=${1:-10000} IDLE_HOLD=${2:-60s}

need=$((IDLE_CONNS + 100))
if (($(ulimit -n) < need)); then
	ulimit -n "$need" 2>/dev/null || {
		echo "bench-idle.sh: $IDLE_CONNS connections need ulimit -n >= $need (hard limit $(ulimit -Hn))" >&2
		exit 1
	}
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
go test -run '^$' -bench '^BenchmarkIdle$' -benchtime 1x -timeout 30m -v ./backend/bench/
echo "Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
	"$(free -g | awk '/^Mem:/ {print $2}') GB; load average $load_before before and" \
	"$(cut -d' ' -f1-3 /proc/loadavg) after; $(go version | cut -d' ' -f3)"
echo "Command: scripts/bench-idle.sh $IDLE_CONNS $IDLE_HOLD"
