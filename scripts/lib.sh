# Shared by the demo scripts: build, start and stop the binaries, check values.
# shellcheck shell=bash
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/integritee-demo.XXXXXX")
PIDS=()

cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ "${KEEP_WORK:-}" = "" ]; then rm -rf "$WORK"; else echo "logs and data kept in $WORK"; fi
}
trap cleanup EXIT

build() {
	if [ -n "${SKIP_BUILD:-}" ]; then echo "== using the binaries in $BIN (SKIP_BUILD)"; return; fi
	echo "== building into $BIN"
	(cd "$ROOT" && go build -o "$BIN/" ./cmd/...)
}

# wait_until DESCRIPTION SECONDS COMMAND...: poll COMMAND every 0.2 s.
wait_until() {
	local what=$1 secs=$2; shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then echo "FAIL: timed out waiting for $what" >&2; return 1; fi
		sleep 0.2
	done
}

# start_dev_node: a throw-away dev node on NODE_PORT (default 9944).
start_dev_node() {
	NODE_PORT=${NODE_PORT:-9944}
	echo "== starting integritee-node --dev (rpc $NODE_PORT, log $WORK/node.log)"
	"$BIN/integritee-node" --dev --base-path "$WORK/node" --rpc-port "$NODE_PORT" \
		--port "${NODE_P2P_PORT:-30333}" --prometheus-port "${NODE_PROMETHEUS_PORT:-9615}" >"$WORK/node.log" 2>&1 &
	PIDS+=($!)
	wait_until "the node's first block" 60 curl -sf "http://127.0.0.1:$NODE_PORT/block?height=1"
}

cli() { (cd "$WORK" && "$BIN/integritee-cli" -p "$NODE_PORT" "$@"); }

# expect NAME ACTUAL WANT
expect() {
	if [ "$2" != "$3" ]; then echo "FAIL: $1 is $2, expected $3" >&2; exit 1; fi
	echo "ok: $1 = $2"
}

# start_worker NAME [run flags...]: a validateer with data dir $WORK/NAME on
# WORKER_PORT (trusted, default 2000) and the ports after it, against the node.
start_worker() {
	local name=$1; shift
	WORKER_PORT=${WORKER_PORT:-2000}
	export INTEGRITEE_SIM_HOST_SECRET=${INTEGRITEE_SIM_HOST_SECRET:-$WORK/sim-host-secret}
	local http=${WORKER_HTTP_PORT:-4545}
	echo "== starting integritee-service $name (trusted $WORKER_PORT, log $WORK/$name.log)"
	"$BIN/integritee-service" -p "$NODE_PORT" -d "$WORK/$name" -P "$WORKER_PORT" -w "${WORKER_UNTRUSTED_PORT:-2001}" \
		-r "${WORKER_MURA_PORT:-3443}" -h "$http" --enable-metrics -i "${WORKER_METRICS_PORT:-8787}" \
		run "$@" >"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
	wait_until "the validateer to be initialised" 90 curl -sf "http://127.0.0.1:$http/is_initialized"
}

tcli() { (cd "$WORK" && "$BIN/integritee-cli" -p "$NODE_PORT" -P "${WORKER_PORT:-2000}" "$@"); }
