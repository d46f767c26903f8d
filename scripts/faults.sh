#!/usr/bin/env bash
# The fault-injection scenarios of docs/RELIABILITY.md, each under load and
# each ending with `integritee-cli check-invariants`:
#   kill-validateer stop-validateer partition clock-ahead kill-node
#   parentchain-halt benchmark-stop wipe-validateer   (go test ./e2e -run 'TestFault/<name>')
#   io-error                           (go test ./service -run TestFaultBlockStore)
# Usage: scripts/faults.sh [NAME|all] [RUNS]   (default: all, 1 run)
# The e2e scenarios run their long versions (INTEGRITEE_FAULTS_LONG=1; FAULTS_SHORT=1
# runs the short ones `make test` runs); the fault network's ports start at
# 51944 (nodes) and 52000 (validateers), 52500 (proxies). Each run's output is kept
# in FAULTS_OUT (default: a fresh temporary directory); the last lines summarise
# every scenario's outcome per run. Exits 1 if any run of any scenario failed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=${1:-all}
RUNS=${2:-1}
SCENARIOS=(kill-validateer stop-validateer partition clock-ahead kill-node parentchain-halt benchmark-stop wipe-validateer)
case "$NAME" in
all | io-error) ;;
*)
	if ! printf '%s\n' "${SCENARIOS[@]}" | grep -qx -- "$NAME"; then
		echo "unknown scenario $NAME: want all, io-error or one of ${SCENARIOS[*]}" >&2
		exit 2
	fi
	;;
esac
if ! [[ "$RUNS" =~ ^[1-9][0-9]*$ ]]; then
	echo "RUNS must be a positive integer, got $RUNS" >&2
	exit 2
fi
OUT=${FAULTS_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/integritee-faults.XXXXXX")}
mkdir -p "$OUT"
if [ -z "${FAULTS_SHORT:-}" ]; then export INTEGRITEE_FAULTS_LONG=1; fi
export INTEGRITEE_E2E_KEEP_LOGS=${INTEGRITEE_E2E_KEEP_LOGS:-$OUT/logs}
echo "== machine: $(nproc) cores, $(go version | cut -d' ' -f3); $(date -u +%Y-%m-%dT%H:%MZ); output in $OUT"
if [ "$NAME" = all ]; then e2e_run='^TestFault$'; else e2e_run="^TestFault\$/^${NAME}\$"; fi
failed=0
for run in $(seq 1 "$RUNS"); do
	if [ "$NAME" != io-error ]; then
		log="$OUT/run$run-e2e.log"
		echo "== run $run/$RUNS: go test ./e2e -run '$e2e_run' (log $log)"
		if ! (cd "$ROOT" && go test ./e2e -run "$e2e_run" -count=1 -v -timeout 90m) >"$log" 2>&1; then failed=1; fi
		grep -E '^\s*--- (PASS|FAIL|SKIP): TestFault|check-invariants: FAILED|KNOWN BUG' "$log" | sed 's/^ *//' || true
	fi
	if [ "$NAME" = all ] || [ "$NAME" = io-error ]; then
		log="$OUT/run$run-io-error.log"
		echo "== run $run/$RUNS: go test ./service -run TestFaultBlockStore (log $log)"
		if ! (cd "$ROOT" && go test ./service -run 'TestFaultBlockStore' -count=1 -v -timeout 10m) >"$log" 2>&1; then failed=1; fi
		grep -E '^\s*--- (PASS|FAIL|SKIP): TestFaultBlockStore' "$log" | sed 's/^ *//' || true
	fi
done
echo "== summary ($RUNS run(s); outputs in $OUT)"
for log in "$OUT"/run*.log; do
	grep -hE '^\s*--- (PASS|FAIL|SKIP): TestFault' "$log" | sed "s|^ *|$(basename "$log" .log): |" || true
done
if [ "$failed" != 0 ]; then
	echo "FAIL: a scenario failed; see the logs in $OUT" >&2
	exit 1
fi
echo "ok: every scenario passed in every run"
