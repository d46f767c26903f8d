#!/usr/bin/env bash
# Parentchain transfers per second through RPC on a dev node on this machine.
# Usage: scripts/bench-parentchain.sh [benchmark-transfers flags]
# NODE_FLAGS adds flags to the node, e.g. NODE_FLAGS="--pprof-addr 127.0.0.1:6060"
# to profile it during the run (go tool pprof http://127.0.0.1:6060/debug/pprof/profile).
source "$(dirname "$0")/lib.sh"
# Only the node and the CLI: the benchmark needs nothing else.
if [ -n "${SKIP_BUILD:-}" ]; then
	echo "== using the binaries in $BIN (SKIP_BUILD)"
else
	echo "== building integritee-node and integritee-cli into $BIN"
	(cd "$ROOT" && go build -o "$BIN/" ./cmd/integritee-node ./cmd/integritee-cli)
fi
NODE_PORT=${NODE_PORT:-19944} NODE_P2P_PORT=${NODE_P2P_PORT:-19333} NODE_PROMETHEUS_PORT=${NODE_PROMETHEUS_PORT:-19615}
echo "== starting integritee-node --dev ${NODE_FLAGS:+$NODE_FLAGS }(rpc $NODE_PORT, log $WORK/node.log)"
# shellcheck disable=SC2086 # NODE_FLAGS is a list of flags
"$BIN/integritee-node" --dev --base-path "$WORK/node" --rpc-port "$NODE_PORT" \
	--port "$NODE_P2P_PORT" --prometheus-port "$NODE_PROMETHEUS_PORT" ${NODE_FLAGS:-} >"$WORK/node.log" 2>&1 &
PIDS+=($!)
wait_until "the node's first block" 60 curl -sf "http://127.0.0.1:$NODE_PORT/block?height=1"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
cli benchmark-transfers "$@"
