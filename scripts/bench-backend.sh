#!/usr/bin/env bash
# The backend's relay, end to end on the binaries: time to first token through
# codingplan-backend (websocket, JWT, a Valkey lease, the provider call, deltas back) beside the
# same test provider read directly over HTTP, in the same run, and the backend's CPU time and
# heap allocations per streamed chunk; at 1, 16 and 128 concurrent streams. Prints markdown
# tables (the median of COUNT runs) with the machine and the command, for docs/benchmarks.md
# ("Backend relay"). The benchmarks are in backend/bench/.
#
#   scripts/bench-backend.sh [COUNT]        default 3 runs
#
# TTFT_OPS (default 2000) pairs of short streams and CPU_OPS (default 400) long streams per
# case; STREAMS (default 1|16|128) picks the cases. Valkey: CODINGPLAN_TEST_VALKEY (default 127.0.0.1:6390; scripts/valkey.sh start).
# To profile the backend while a benchmark runs, set CODINGPLAN_BENCH_PPROF=127.0.0.1:6061 and
# run `go tool pprof -top 'http://127.0.0.1:6061/debug/pprof/profile?seconds=10'` meanwhile.
# CODINGPLAN_BENCH_BACKEND_GOMAXPROCS=N runs the backend with GOMAXPROCS=N (the scheduler's share),
# CODINGPLAN_BENCH_NO_VALKEY=1 with leases in the process (Valkey's share).
# CODINGPLAN_BENCH_BACKEND_BASE=/path/to/codingplan-backend adds a baseline: a second backend,
# that binary, beside the tree's build on the same provider and Valkey; every case then runs on
# both, one after the other, in an order that flips every round, and a third table gives the
# median of the per-round ratios new/base. Build the baseline from the commit to compare with:
#   git worktree add /tmp/base main && (cd /tmp/base && go build -o /tmp/base-bin/ ./backend/cmd/codingplan-backend)
set -euo pipefail

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
export CODINGPLAN_TEST_VALKEY=${CODINGPLAN_TEST_VALKEY-127.0.0.1:6390}
export CODINGPLAN_REQUIRE_VALKEY=1
count=${1:-3}
ttft_ops=${TTFT_OPS:-2000}
cpu_ops=${CPU_OPS:-400}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# One process per round (go test -count would repeat each case back to back, so a baseline's
# runs and the tree's would be minutes apart); CODINGPLAN_BENCH_ROUND flips their order.
streams=${STREAMS:-1|16|128}
for round in $(seq 1 "$count"); do
	CODINGPLAN_BENCH_ROUND=$round go test -run '^$' -bench "^BenchmarkTTFT\$/^streams=($streams)\$" \
		-benchtime "${ttft_ops}x" -count 1 ./backend/bench/ | tee -a "$out" >&2
	CODINGPLAN_BENCH_ROUND=$round go test -run '^$' -bench "^BenchmarkRelayCPU\$/^streams=($streams)\$" \
		-benchtime "${cpu_ops}x" -count 1 ./backend/bench/ | tee -a "$out" >&2
done

echo "Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
	"$(free -g | awk '/^Mem:/ {print $2}') GB; load average $load_before before and" \
	"$(cut -d' ' -f1-3 /proc/loadavg) after; $(go version | cut -d' ' -f3);" \
	"valkey-server $(valkey-server --version 2>/dev/null | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
echo
base=${CODINGPLAN_BENCH_BACKEND_BASE:+CODINGPLAN_BENCH_BACKEND_BASE=... }
echo "Command: \`${base}${STREAMS:+STREAMS='$STREAMS' }TTFT_OPS=$ttft_ops CPU_OPS=$cpu_ops scripts/bench-backend.sh $count\` (median of $count runs)"
echo
# Lines look like (backend=base only with CODINGPLAN_BENCH_BACKEND_BASE):
# BenchmarkTTFT/streams=16/backend=new-2  2000  2010771 ns/op  13454 added-p50-us  800.0 backend-cpu-us/stream ...
awk '
	function sortv(a, n,    i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	}
	function median(k,    n, i, a) {
		n = cnt[k]
		for (i = 1; i <= n; i++) a[i] = val[k, i]
		sortv(a, n)
		return n ? a[int((n + 1) / 2)] : "-"
	}
	# The median over rounds of new/base for one metric: each round measured both backends.
	function ratio(bench, s, m,    kb, kn, n, i, a) {
		kb = bench SUBSEP s SUBSEP "base" SUBSEP m; kn = bench SUBSEP s SUBSEP "new" SUBSEP m
		n = cnt[kb] < cnt[kn] ? cnt[kb] : cnt[kn]
		for (i = 1; i <= n; i++) a[i] = val[kb, i] > 0 ? val[kn, i] / val[kb, i] : 0
		sortv(a, n)
		return n ? sprintf("%.2f", a[int((n + 1) / 2)]) : "-"
	}
	function ms(x) { return x == "-" ? x : sprintf("%.2f ms", x / 1000) }
	/^Benchmark(TTFT|RelayCPU)\/streams=/ {
		split($1, part, "/"); bench = part[1]; s = part[2]; sub(/^streams=/, "", s)
		be = part[3]; sub(/^backend=/, "", be); sub(/-[0-9]+$/, "", be)
		for (i = 3; i < NF; i += 2) { k = bench SUBSEP s SUBSEP be SUBSEP $(i + 1); val[k, ++cnt[k]] = $i }
		streams[s] = 1; backends[be] = 1
	}
	END {
		nb = ("base" in backends) ? 2 : 1; names[1] = "new"; if (nb == 2) { names[1] = "base"; names[2] = "new" }
		print "| streams | backend | direct p50 | relay p50 | added p50 | direct p99 | relay p99 | backend CPU per stream |"
		print "|--------:|:--------|-----------:|----------:|----------:|-----------:|----------:|-----------------------:|"
		for (s = 1; s <= 1024; s++) if (s in streams) for (j = 1; j <= nb; j++) {
			b = "BenchmarkTTFT" SUBSEP s SUBSEP names[j] SUBSEP
			printf "| %d | %s | %s | %s | %s | %s | %s | %d us |\n", s, names[j], ms(median(b "direct-p50-us")), ms(median(b "relay-p50-us")),
				ms(median(b "added-p50-us")), ms(median(b "direct-p99-us")), ms(median(b "relay-p99-us")), median(b "backend-cpu-us/stream")
		}
		print ""
		print "| streams | backend | backend CPU per chunk | allocations per chunk | context switches per chunk | chunks/s | backend cores busy |"
		print "|--------:|:--------|----------------------:|----------------------:|---------------------------:|---------:|-------------------:|"
		for (s = 1; s <= 1024; s++) if (s in streams) for (j = 1; j <= nb; j++) {
			b = "BenchmarkRelayCPU" SUBSEP s SUBSEP names[j] SUBSEP
			printf "| %d | %s | %.2f us | %.2f | %.3f | %d | %.2f |\n", s, names[j], median(b "cpu-ns/chunk") / 1000, median(b "allocs/chunk"),
				median(b "switches/chunk"), median(b "chunks/s"), median(b "backend-cores")
		}
		if (nb < 2) exit
		print ""
		print "New against base, the median over rounds of each round'"'"'s ratio (below 1: the new build is faster):"
		print ""
		print "| streams | added TTFT p50 | relay TTFT p50 | backend CPU per stream (TTFT) | backend CPU per chunk | allocations per chunk |"
		print "|--------:|---------------:|---------------:|------------------------------:|----------------------:|----------------------:|"
		for (s = 1; s <= 1024; s++) if (s in streams)
			printf "| %d | %s | %s | %s | %s | %s |\n", s, ratio("BenchmarkTTFT", s, "added-p50-us"), ratio("BenchmarkTTFT", s, "relay-p50-us"),
				ratio("BenchmarkTTFT", s, "backend-cpu-us/stream"), ratio("BenchmarkRelayCPU", s, "cpu-ns/chunk"), ratio("BenchmarkRelayCPU", s, "allocs/chunk")
	}
' "$out"
