#!/usr/bin/env bash
# Sidechain direct transfers per second on this machine: a dev node, one
# validateer with Prometheus metrics, and `integritee-cli trusted benchmark
# [flags]`, the sidechain benchmark's load generator (reads the validateer's
# CPU and RSS from its metrics endpoint). Its last line is machine-readable:
#   executed_per_s=N p50_ms=N p99_ms=N ceiling_per_s=N ratio=R
# Usage: scripts/bench-sidechain.sh [--accounts N --transfers M --clients K --duration D --mode plain|encrypted ...]
# Ports: NODE_PORT (19944) and WORKER_PORT (12000) and the ones beside them.
source "$(dirname "$0")/lib.sh"
build
NODE_PORT=${NODE_PORT:-19944} NODE_P2P_PORT=${NODE_P2P_PORT:-19333} NODE_PROMETHEUS_PORT=${NODE_PROMETHEUS_PORT:-19615}
start_dev_node
export WORKER_PORT=${WORKER_PORT:-12000} WORKER_UNTRUSTED_PORT=${WORKER_UNTRUSTED_PORT:-12001} WORKER_MURA_PORT=${WORKER_MURA_PORT:-13443}
export WORKER_HTTP_PORT=${WORKER_HTTP_PORT:-14545} WORKER_METRICS_PORT=${WORKER_METRICS_PORT:-18787}
# start_worker runs the validateer with --enable-metrics -i $WORKER_METRICS_PORT;
# WORKER_FLAGS adds flags (e.g. --pprof, then
# go tool pprof http://127.0.0.1:$WORKER_METRICS_PORT/debug/pprof/profile?seconds=20).
# shellcheck disable=SC2086
start_worker worker1 --dev ${WORKER_FLAGS:-}
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3)"
tcli trusted benchmark --metrics "http://127.0.0.1:$WORKER_METRICS_PORT/metrics" "$@"
