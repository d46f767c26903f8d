#!/usr/bin/env bash
# Indirect invocations through the parentchain on this machine: a dev node,
# one validateer, and `integritee-cli trusted benchmark-indirect [flags]`,
# which funds fresh accounts, prepares every trusted call and the
# enclavebridge.invoke extrinsic carrying it, broadcasts them and watches
# the sidechain for their effects. Its last line is machine-readable:
#   indirect_per_s=N p50_ms=N p99_ms=N
# The ports differ from scripts/bench-sidechain.sh's, so that both can run
# at once.
# Usage: scripts/bench-indirect.sh [--accounts N --calls M --workers K ...]
source "$(dirname "$0")/lib.sh"
build
NODE_PORT=${NODE_PORT:-29944} NODE_P2P_PORT=${NODE_P2P_PORT:-29333} NODE_PROMETHEUS_PORT=${NODE_PROMETHEUS_PORT:-29615}
start_dev_node
export WORKER_PORT=${WORKER_PORT:-22000} WORKER_UNTRUSTED_PORT=${WORKER_UNTRUSTED_PORT:-22001} WORKER_MURA_PORT=${WORKER_MURA_PORT:-23443}
export WORKER_HTTP_PORT=${WORKER_HTTP_PORT:-24545} WORKER_METRICS_PORT=${WORKER_METRICS_PORT:-28787}
start_worker worker1 --dev
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
tcli trusted benchmark-indirect "$@"
