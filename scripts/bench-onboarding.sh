#!/usr/bin/env bash
# On-boarding a validateer onto 10,000 existing sidechain blocks (target:
# under 30 s), measured at the enclave's level by
# BenchmarkOnboardTenThousandBlocks (enclave/onboard_bench_test.go): end to
# end it would take 10,000 sidechain slots (50 min) to author them. The
# benchmark builds the shard's blocks first (outside the timer, with
# progress), then times a joined validateer fetching and importing them.
# Its last line is machine-readable:
#   onboarded_blocks=10000 seconds=S blocks_per_s=N
# With several runs (-count N) it is the run of median seconds.
# Usage: scripts/bench-onboarding.sh [go test flags, e.g. -count 3]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$(mktemp "${TMPDIR:-/tmp}/integritee-bench-onboarding.XXXXXX")
trap 'rm -f "$OUT"' EXIT
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== go test -run '^\$' -bench BenchmarkOnboardTenThousandBlocks -benchtime 1x ${*:+$* }./enclave/"
go test -run '^$' -bench BenchmarkOnboardTenThousandBlocks -benchtime 1x "$@" ./enclave/ | tee "$OUT"
# The benchmark's result lines: "... N blocks/s  S s/onboarding".
awk '{ b = s = ""; for (i = 2; i <= NF; i++) { if ($i == "blocks/s") b = $(i-1); if ($i == "s/onboarding") s = $(i-1) } if (b != "" && s != "") print s, b }' "$OUT" |
	sort -g | awk '{ s[NR] = $1; b[NR] = $2 } END {
		if (NR == 0) { print "FAIL: no result line in the benchmark output" > "/dev/stderr"; exit 1 }
		m = int((NR + 1) / 2)
		printf "onboarded_blocks=10000 seconds=%.3f blocks_per_s=%.0f\n", s[m], b[m]
	}'
