#!/usr/bin/env bash
# Indirect invocation: a trusted call encrypted to the shard's shielding key
# and sent through the parentchain (enclavebridge.invoke); the validateer
# finds it in a verified block, executes it and confirms the block.
source "$(dirname "$0")/lib.sh"
build
NODE_PORT=${NODE_PORT:-9944}
start_dev_node
start_worker worker1 --dev
MRENCLAVE=$(tcli trusted get-fingerprint)
T="trusted --mrenclave $MRENCLAVE"

echo "== set //CharlieIncognito's balance as the sidechain root (//Alice), indirectly"
tcli $T set-balance //CharlieIncognito 7000000000
expect "//CharlieIncognito" "$(tcli $T balance //CharlieIncognito)" 7000000000
echo "== transfer 2500000000 to //DaveIncognito indirectly, the parentchain fee paid by //Charlie"
tcli $T --xt-signer //Charlie transfer //CharlieIncognito //DaveIncognito 2500000000
expect "//CharlieIncognito" "$(tcli $T balance //CharlieIncognito)" 4500000000
expect "//DaveIncognito" "$(tcli $T balance //DaveIncognito)" 2500000000
expect "//CharlieIncognito nonce" "$(tcli $T nonce //CharlieIncognito)" 1
echo "== an indirect call that cannot execute (overdraft) changes nothing"
if tcli $T --xt-signer //Charlie --timeout 20s transfer //DaveIncognito //CharlieIncognito 9000000000 2>"$WORK/err.txt"; then
	echo "FAIL: an overdraft went through" >&2; exit 1
fi
echo "refused: $(cat "$WORK/err.txt")"
expect "//DaveIncognito" "$(tcli $T balance //DaveIncognito)" 2500000000
echo "DEMO PASSED"
