#!/usr/bin/env bash
# Run the checks CI runs (make test): install Valkey and PostgreSQL when missing, start a private
# single Valkey on 6390, a three-node Valkey cluster on 7001-7003 and a throwaway PostgreSQL cluster
# on 5490 (or reuse ones already answering there), then run each PHASE (a make target) in order,
# stop what this script started, and print a summary.
#
#   scripts/test.sh PHASE...        e.g. scripts/test.sh vet test-go fuzz vuln
#
# Every phase runs even when an earlier one failed; the script fails if any phase failed. Test
# counts in the last line add up the gotestsum "DONE N tests..." lines that the phases print.
set -euo pipefail

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
MAKE=${MAKE:-make}
# Ports can be moved, e.g. to run beside another checkout's test run.
SINGLE=${CODINGPLAN_TEST_VALKEY_PORT:-6390}
read -r -a CLUSTER <<<"${CODINGPLAN_TEST_CLUSTER_PORTS:-7001 7002 7003}"
POSTGRES=${CODINGPLAN_TEST_POSTGRES_PORT:-5490}
(($#)) || set -- vet test-go fuzz vuln

logs=$(mktemp -d)
stop_single=false
stop_cluster=false
stop_postgres=false
cleanup() {
	if $stop_single; then scripts/valkey.sh stop "$SINGLE" || true; fi
	if $stop_cluster; then scripts/valkey.sh cluster-stop "${CLUSTER[@]}" || true; fi
	if $stop_postgres; then scripts/postgres.sh stop "$POSTGRES" || true; fi
	rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cluster_ok() {
	local p
	for p in "${CLUSTER[@]}"; do
		valkey-cli -p "$p" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok' || return 1
	done
}

start=$SECONDS
scripts/valkey.sh install
if scripts/valkey.sh ping "$SINGLE"; then
	echo "test.sh: reusing the Valkey on port $SINGLE"
else
	stop_single=true
	scripts/valkey.sh start "$SINGLE"
fi
if cluster_ok; then
	echo "test.sh: reusing the Valkey cluster on ports ${CLUSTER[*]}"
else
	stop_cluster=true
	scripts/valkey.sh cluster-start "${CLUSTER[@]}"
fi
scripts/postgres.sh install
if scripts/postgres.sh ping "$POSTGRES"; then
	echo "test.sh: reusing the PostgreSQL on port $POSTGRES"
else
	stop_postgres=true
	scripts/postgres.sh start "$POSTGRES"
fi
# A backend admits no new stream of a user within its lease recovery window (lease_ttl + 1s,
# 16 s by default) of its Valkey's start: wait that out before the phases that run backends, so
# the tests do not depend on how long fmt-check and vet take.
recovery_window=17
wait_window() {
	local p up
	for p in "$SINGLE" "${CLUSTER[@]}"; do
		while :; do
			up=$(valkey-cli -p "$p" INFO server | tr -d '\r' | sed -n 's/^uptime_in_seconds://p')
			((${up:-0} >= recovery_window)) && break
			sleep 1 # Valkey's uptime counts in seconds
		done
	done
}
export CODINGPLAN_TEST_VALKEY=127.0.0.1:$SINGLE
export CODINGPLAN_TEST_VALKEY_CLUSTER=127.0.0.1:${CLUSTER[0]}
export CODINGPLAN_REQUIRE_VALKEY=1
# The account store's tests create a database of their own on this server for each test.
export CODINGPLAN_TEST_POSTGRES="postgres://postgres@127.0.0.1:$POSTGRES/postgres?sslmode=disable"
export CODINGPLAN_REQUIRE_POSTGRES=1
times=("valkey+postgres $((SECONDS - start))s")

failed=()
waited=false
for phase in "$@"; do
	echo "=== $phase"
	start=$SECONDS
	if ! $waited && [[ $phase != fmt-check && $phase != vet ]]; then
		wait_window
		waited=true
	fi
	set +e
	$MAKE --no-print-directory "$phase" FUZZTIME="${FUZZTIME:-5s}" 2>&1 | tee "$logs/$phase.log"
	rc=${PIPESTATUS[0]}
	set -e
	if ((rc == 0)); then
		times+=("$phase $((SECONDS - start))s")
	else
		times+=("$phase FAILED $((SECONDS - start))s")
		failed+=("$phase")
	fi
done

# gotestsum: "DONE 12 tests, 2 skipped, 1 failure, 3 errors in 3.2s" (a package that does not build
# counts as one failed test; its errors are compiler messages, not tests).
tests=0 skipped=0 failures=0
while read -r line; do
	[[ $line =~ ^DONE\ ([0-9]+\ runs,\ )?([0-9]+)\ tests(,\ ([0-9]+)\ skipped)?(,\ ([0-9]+)\ failures?)?(,\ ([0-9]+)\ errors?)?\ in ]] || continue
	tests=$((tests + BASH_REMATCH[2]))
	skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
	failures=$((failures + ${BASH_REMATCH[6]:-0}))
done < <(cat "$logs"/*.log)
passed=$((tests - skipped - failures))
# A phase that failed without a counted test failure (vet, vuln) still shows as a failure.
if ((${#failed[@]} > 0 && failures == 0)); then failures=${#failed[@]}; fi

summary="test.sh: ${times[0]}"
for t in "${times[@]:1}"; do summary+=", $t"; done
echo "$summary; total ${SECONDS}s"
if ((${#failed[@]})); then
	echo "test.sh: FAILED: ${failed[*]}"
fi
echo "summary: $passed passed, $failures failed, $skipped skipped"
((${#failed[@]} == 0))
