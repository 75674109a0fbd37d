#!/usr/bin/env bash
#
# scripts/bench.sh — the benchmark entry point.
#
# Starts throw-away Redis and MinIO servers (as scripts/test.sh does), runs
# the benchmarks against them, prints go test's raw output, then a table per
# benchmark family comparing the hub with its baselines.
#
# Convention: in a family BenchmarkFoo/<sub> (or BenchmarkFoo/<case>/<sub>),
# the sub-benchmark named "hub" (or "hub-<variant>") is the hub's figure and every other sibling is a
# baseline measured in the same run, e.g.
#   BenchmarkObjectPutGet/hub            the hub's ObjectStore over MinIO
#   BenchmarkObjectPutGet/raw-minio-go   minio-go called directly
# and the table says "hub = 93.1 % of raw-minio-go" (hub ops/s ÷ baseline
# ops/s). Adding a benchmark that follows the convention is all it takes to
# appear here.
#
# Usage: scripts/bench.sh
#   BENCH=regexp  which benchmarks (go test -bench; default: all)
#   COUNT=n       runs of each benchmark (default 1; figures are averaged)
#   BENCHTIME=d   go test -benchtime (default: go's own, 1s)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh

if (($# > 0)); then
	echo "usage: scripts/bench.sh   (no arguments; set BENCH, COUNT, BENCHTIME)" >&2
	exit 2
fi

BENCH="${BENCH:-.}"
COUNT="${COUNT:-1}"
started=$SECONDS

ensure_redis
ensure_minio
start_services
echo "redis: $HUB_TEST_REDIS_URL"
echo "minio: http://$HUB_TEST_MINIO_ENDPOINT"

args=(-run '^$' -bench "$BENCH" -benchmem -count="$COUNT")
if [[ -n ${BENCHTIME:-} ]]; then args+=(-benchtime="$BENCHTIME"); fi

echo
echo "=== go test ${args[*]} ./..."
raw="$LICENSEHUB_SERVICES_DIR/bench.out"
set +e
go test "${args[@]}" ./... 2>&1 | tee "$raw"
status=${PIPESTATUS[0]}
set -e

echo
echo "=== summary (hub vs baselines; figures averaged over $COUNT run(s))"
# The awk program reads go test's output:
#   pkg: github.com/licensehub/licensehub/store
#   BenchmarkObjectPutGet/hub-2   1234   956789 ns/op   1234 B/op   12 allocs/op
# It drops the "-N" GOMAXPROCS suffix (go adds it to every name when N > 1,
# so it is dropped only when every name carries the same one), groups
# names by everything before their last "/", and prints each family.
awk '
function fmt_ns(x) {
	return x < 10 ? sprintf("%.3f", x) : sprintf("%.1f", x)
}

function fmt_ops(x) {
	return x >= 1000 ? sprintf("%.0f", x) : sprintf("%.1f", x)
}

/^pkg: / { pkg = $2; next }

/^Benchmark/ && / ns\/op/ {
	name = $1
	ns = ""; bop = ""; allocs = ""
	for (i = 3; i <= NF; i++) {
		if ($i == "ns/op") ns = $(i - 1)
		if ($i == "B/op") bop = $(i - 1)
		if ($i == "allocs/op") allocs = $(i - 1)
	}
	if (ns == "") next
	# GOMAXPROCS suffix: remember whether all names share one.
	if (match(name, /-[0-9]+$/)) {
		sfx = substr(name, RSTART)
		if (suffix == "") suffix = sfx
		else if (suffix != sfx) mixed = 1
	} else {
		mixed = 1
	}
	key = pkg SUBSEP name
	if (!(key in runs)) { order[++n] = key; keypkg[key] = pkg; keyname[key] = name }
	runs[key]++
	sum_ns[key] += ns
	if (bop != "") sum_b[key] += bop
	if (allocs != "") sum_a[key] += allocs
	next
}

END {
	if (n == 0) { print "no benchmark results"; exit }
	strip = (!mixed && suffix != "")

	# Group into families, keeping first-seen order.
	for (k = 1; k <= n; k++) {
		key = order[k]
		name = keyname[key]
		if (strip) name = substr(name, 1, length(name) - length(suffix))
		slash = 0
		for (i = length(name); i > 0; i--) if (substr(name, i, 1) == "/") { slash = i; break }
		fam = slash ? substr(name, 1, slash - 1) : name
		sub_ = slash ? substr(name, slash + 1) : name
		fkey = keypkg[key] SUBSEP fam
		if (!(fkey in fcount)) { forder[++nf] = fkey; fpkg[fkey] = keypkg[key]; fname[fkey] = fam }
		m = ++fcount[fkey]
		member[fkey, m] = key
		label[key] = sub_
		avg_ns[key] = sum_ns[key] / runs[key]
		ops[key] = avg_ns[key] > 0 ? 1e9 / avg_ns[key] : 0
		if (slash && (sub_ == "hub" || substr(sub_, 1, 4) == "hub-")) { hubk[fkey, ++hubn[fkey]] = key; ishub[key] = 1 }
	}

	for (f = 1; f <= nf; f++) {
		fkey = forder[f]
		printf "\n%s   (%s)\n", fname[fkey], fpkg[fkey]
		printf "  %-28s %14s %12s %10s %10s\n", "benchmark", "ns/op", "ops/s", "B/op", "allocs/op"
		for (m = 1; m <= fcount[fkey]; m++) {
			key = member[fkey, m]
			printf "  %-28s %14s %12s %10s %10s\n", label[key], fmt_ns(avg_ns[key]), fmt_ops(ops[key]),
				(key in sum_b) ? sprintf("%.0f", sum_b[key] / runs[key]) : "-",
				(key in sum_a) ? sprintf("%.0f", sum_a[key] / runs[key]) : "-"
		}
		if (!(fkey in hubn)) {
			if (fcount[fkey] > 1) print "  (no \"hub\" sub-benchmark: nothing to compare)"
			continue
		}
		if (fcount[fkey] == hubn[fkey]) { print "  (no baseline in this family)"; continue }
		for (j = 1; j <= hubn[fkey]; j++) {
			h = hubk[fkey, j]
			for (m = 1; m <= fcount[fkey]; m++) {
				key = member[fkey, m]
				if ((key in ishub) || ops[key] <= 0) continue
				printf "  %s = %.1f %% of %s\n", label[h], 100 * ops[h] / ops[key], label[key]
			}
		}
	}
}
' "$raw"

elapsed=$((SECONDS - started))
printf '\n=== done in %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))
if ((status != 0)); then
	echo "*** go test failed (exit $status): the figures above may be incomplete"
fi
exit "$status"
