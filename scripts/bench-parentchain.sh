#!/usr/bin/env bash
# Parentchain transfers per second through RPC on a dev node on this machine.
# Usage: scripts/bench-parentchain.sh [benchmark-transfers flags]
source "$(dirname "$0")/lib.sh"
build
NODE_PORT=${NODE_PORT:-19944} NODE_P2P_PORT=${NODE_P2P_PORT:-19333} NODE_PROMETHEUS_PORT=${NODE_PROMETHEUS_PORT:-19615}
start_dev_node
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
cli benchmark-transfers "$@"
