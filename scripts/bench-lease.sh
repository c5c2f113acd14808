#!/usr/bin/env bash
# Lease acquire+release throughput against real Valkey, beside baselines through the same client
# (a bare PING; an INCR+DECR pair; the acquire script and ZREM without the Pool around them), from
# 1 and from 200 goroutines. Prints a markdown
# table of the median of COUNT runs, with the machine it ran on, for docs/benchmarks.md.
#
#   scripts/bench-lease.sh [COUNT] [BENCHTIME]     defaults: 5 runs of 1s per case
#
# Valkey: CODINGPLAN_TEST_VALKEY (default 127.0.0.1:6390) and CODINGPLAN_TEST_VALKEY_CLUSTER
# (default 127.0.0.1:7001, the cluster seed); start them with scripts/valkey.sh start and
# scripts/valkey.sh cluster-start. Set either to an empty string to leave it out.
set -euo pipefail

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
export CODINGPLAN_TEST_VALKEY=${CODINGPLAN_TEST_VALKEY-127.0.0.1:6390}
export CODINGPLAN_TEST_VALKEY_CLUSTER=${CODINGPLAN_TEST_VALKEY_CLUSTER-127.0.0.1:7001}
count=${1:-5}
benchtime=${2:-1s}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench '^BenchmarkAcquireRelease$' -benchtime "$benchtime" -count "$count" \
	./backend/internal/lease/ | tee "$out" >&2

echo "Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg); $(go version | cut -d' ' -f3);" \
	"valkey-server $(valkey-server --version 2>/dev/null | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
echo "Command: scripts/bench-lease.sh $count $benchtime (median of $count runs)"
echo
# Lines look like: BenchmarkAcquireRelease/single/lease/g=200-2  76917  49165 ns/op  20340 ops/s
awk '
	/^BenchmarkAcquireRelease\// {
		split($1, part, "/")
		g = part[4]; sub(/-[0-9]+$/, "", g); sub(/^g=/, "", g)
		for (i = 2; i < NF; i++) if ($(i + 1) == "ops/s") v = $i
		k = part[2] SUBSEP g SUBSEP part[3]
		n[k]++; vals[k, n[k]] = v
		if (!(part[2] SUBSEP g in seen)) { seen[part[2] SUBSEP g] = 1; order[++rows] = part[2] SUBSEP g }
	}
	function median(k,    m, i, j, t, a) {
		m = n[k]
		if (m == 0) return 0
		for (i = 1; i <= m; i++) a[i] = vals[k, i] + 0
		for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
	}
	END {
		print "| Valkey | goroutines | PING ops/s | INCR+DECR pairs/s | acquire script+ZREM/s | lease acquire+release/s | lease / PING | lease / INCR+DECR | lease / script |"
		print "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		for (r = 1; r <= rows; r++) {
			split(order[r], kg, SUBSEP)
			p = median(kg[1] SUBSEP kg[2] SUBSEP "ping")
			d = median(kg[1] SUBSEP kg[2] SUBSEP "incrdecr")
			s = median(kg[1] SUBSEP kg[2] SUBSEP "script")
			l = median(kg[1] SUBSEP kg[2] SUBSEP "lease")
			printf "| %s | %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f |\n", kg[1], kg[2], p, d, s, l, (p ? l / p : 0), (d ? l / d : 0), (s ? l / s : 0)
		}
	}
' "$out"
