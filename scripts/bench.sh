#!/usr/bin/env bash
# Every benchmark scenario of docs/benchmarks.md, one after the other, each
# on a fresh network; then a summary of their machine-readable last lines.
# Usage: scripts/bench.sh [SECONDS]   (how long each load runs; default 30)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${1:-30}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/integritee-bench.XXXXXX")
declare -a NAMES=() LINES=()
run() { # NAME COMMAND...
	local name=$1; shift
	echo
	echo "######## $name: $*"
	local start=$SECONDS
	if "$@" 2>&1 | tee "$OUT/$name.log"; then
		LINES+=("$(tail -1 "$OUT/$name.log")")
	else
		LINES+=("FAILED (log $OUT/$name.log)")
	fi
	NAMES+=("$name ($((SECONDS - start)) s)")
}
cd "$ROOT"
go build -o bin/ ./cmd/...
run sidechain-10k-accounts scripts/bench-sidechain.sh --accounts 10000 --duration "${DUR}s"
run sidechain-1m-accounts scripts/bench-sidechain.sh --accounts 10000 --prefund 1000000 --duration "${DUR}s"
run sidechain-5000-clients scripts/bench-sidechain.sh --accounts 10000 --clients 5000 --window 4 --batch 4 --duration "${DUR}s"
run sidechain-three-validateers scripts/bench-three-validateers.sh --accounts 10000 --duration "${DUR}s"
run onboarding-10k-blocks scripts/bench-onboarding.sh
run indirect-invocations scripts/bench-indirect.sh
run parentchain-transfers scripts/bench-parentchain.sh
echo
echo "######## summary (machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), $(date -u +%F))"
for i in "${!NAMES[@]}"; do printf '%-40s %s\n' "${NAMES[$i]}" "${LINES[$i]}"; done
echo "logs in $OUT"
for l in "${LINES[@]}"; do case $l in FAILED*) exit 1;; esac; done
