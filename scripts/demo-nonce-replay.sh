#!/usr/bin/env bash
# Replay protection: a trusted call is signed over (call, nonce, mrenclave,
# shard); once executed, the same nonce is refused, directly or indirectly.
source "$(dirname "$0")/lib.sh"
build
NODE_PORT=${NODE_PORT:-9944}
start_dev_node
start_worker worker1 --dev
MRENCLAVE=$(tcli trusted get-fingerprint)
T="trusted --mrenclave $MRENCLAVE"

tcli $T --direct set-balance //EveIncognito 1000000000
tcli $T --direct transfer //EveIncognito //FerdieIncognito 100000000
expect "//EveIncognito nonce" "$(tcli $T nonce //EveIncognito)" 1
echo "== the same nonce again, directly"
if tcli $T --direct transfer --nonce 0 //EveIncognito //FerdieIncognito 100000000 2>"$WORK/err.txt"; then
	echo "FAIL: replayed nonce accepted" >&2; exit 1
fi
echo "refused: $(cat "$WORK/err.txt")"
grep -q "StaleNonce" "$WORK/err.txt" || { echo "FAIL: the refusal does not name stf.StaleNonce" >&2; exit 1; }
echo "== balances show the transfer once"
expect "//FerdieIncognito" "$(tcli $T balance //FerdieIncognito)" 100000000
expect "//EveIncognito" "$(tcli $T balance //EveIncognito)" 900000000
echo "DEMO PASSED"
