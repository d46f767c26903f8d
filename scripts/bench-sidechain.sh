#!/usr/bin/env bash
# Sidechain direct transfers per second on this machine: a dev node, one
# validateer, and `integritee-cli trusted benchmark [flags]`.
# Usage: scripts/bench-sidechain.sh [--accounts N --transfers M --concurrency K]
source "$(dirname "$0")/lib.sh"
build
NODE_PORT=${NODE_PORT:-19944} NODE_P2P_PORT=${NODE_P2P_PORT:-19333} NODE_PROMETHEUS_PORT=${NODE_PROMETHEUS_PORT:-19615}
start_dev_node
export WORKER_PORT=${WORKER_PORT:-12000} WORKER_UNTRUSTED_PORT=${WORKER_UNTRUSTED_PORT:-12001} WORKER_MURA_PORT=${WORKER_MURA_PORT:-13443}
export WORKER_HTTP_PORT=${WORKER_HTTP_PORT:-14545} WORKER_METRICS_PORT=${WORKER_METRICS_PORT:-18787}
start_worker worker1 --dev
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
tcli trusted benchmark "$@"
