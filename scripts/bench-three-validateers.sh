#!/usr/bin/env bash
# Sidechain direct transfers with three validateers on two nodes
# (scripts/bench-three-validateers.json, on ports apart from the demo's, started by integritee-localnet):
# `integritee-cli trusted benchmark` spreads its clients over the three
# validateers' trusted RPC and reads the three validateers' metrics; at the
# end every validateer must report the same head and state hash.
# Usage: scripts/bench-three-validateers.sh [trusted benchmark flags]
source "$(dirname "$0")/lib.sh"
build
CONFIG=${CONFIG:-$ROOT/scripts/bench-three-validateers.json}
echo "== starting the local network ($CONFIG, logs in $WORK/net/logs)"
"$BIN/integritee-localnet" --config "$CONFIG" --work-dir "$WORK/net" --bin-dir "$BIN" >"$WORK/localnet.out" 2>&1 &
PIDS+=($!)
if ! wait_until "the local network" 240 grep -q "all processes healthy" "$WORK/localnet.out"; then
	tail -40 "$WORK/localnet.out" >&2; exit 1
fi
VALIDATEERS=(32000 32010 32020)
METRICS=(38787 38797 38807)
workers=$(printf 'wss://127.0.0.1:%s,' "${VALIDATEERS[@]}"); workers=${workers%,}
metrics=$(printf 'http://127.0.0.1:%s/metrics,' "${METRICS[@]}"); metrics=${metrics%,}
NODE_PORT=39944
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
(cd "$WORK" && "$BIN/integritee-cli" -p "$NODE_PORT" -P "${VALIDATEERS[0]}" trusted benchmark \
	--workers "$workers" --metrics "$metrics" "$@") | tee "$WORK/bench.out"
# Every validateer ends on the same head and state hash (waiting for the
# last block to reach all of them).
header() { (cd "$WORK" && "$BIN/integritee-cli" -p "$NODE_PORT" -P "$1" trusted get-sidechain-header) | tr -d ' \n' | grep -o '"hash":"[^"]*"\|"stateHash":"[^"]*"' | tr '\n' ' '; }
same_heads() {
	local first; first=$(header "${VALIDATEERS[0]}")
	for v in "${VALIDATEERS[@]:1}"; do [ "$(header "$v")" = "$first" ] || return 1; done
	echo "$first"
}
if ! wait_until "the three validateers to agree on head and state" 60 same_heads; then
	for v in "${VALIDATEERS[@]}"; do echo "validateer $v: $(header "$v")" >&2; done
	exit 1
fi
echo "ok: the three validateers hold the same head and state: $(same_heads)"
tail -1 "$WORK/bench.out"
