#!/usr/bin/env bash
# The single-validateer demo: a dev parentchain node and one validateer; shielding onto the
# sidechain, a private (direct) transfer, an indirect one through the
# parentchain, unshielding to //Ferdie, and a replayed nonce refused.
# Exits non-zero on any unexpected balance.
source "$(dirname "$0")/lib.sh"
build
start_dev_node
start_worker worker1 --dev

MRENCLAVE=$(tcli trusted get-fingerprint)
echo "mrenclave (= shard) $MRENCLAVE"
FEE=1000000000

echo "== shield 50000000000 planck from //Alice to //AliceIncognito"
ALICE0=$(cli balance //Alice)
tcli shield-funds //Alice //AliceIncognito 50000000000 "$MRENCLAVE"
expect "//AliceIncognito (sidechain)" "$(tcli trusted --mrenclave "$MRENCLAVE" balance //AliceIncognito)" 50000000000
expect "//Alice (parentchain)" "$(cli balance //Alice)" $((ALICE0 - 50000000000 - FEE))

echo "== private transfer of 10000000000 to //BobIncognito (direct invocation)"
tcli trusted --mrenclave "$MRENCLAVE" --direct transfer //AliceIncognito //BobIncognito 10000000000
expect "//AliceIncognito" "$(tcli trusted --mrenclave "$MRENCLAVE" balance //AliceIncognito)" 40000000000
expect "//BobIncognito" "$(tcli trusted --mrenclave "$MRENCLAVE" balance //BobIncognito)" 10000000000

echo "== transfer of 5000000000 back (indirect invocation through the parentchain, fee paid by //Bob)"
tcli trusted --mrenclave "$MRENCLAVE" -a //Bob transfer //BobIncognito //AliceIncognito 5000000000
expect "//BobIncognito" "$(tcli trusted --mrenclave "$MRENCLAVE" balance //BobIncognito)" 5000000000
expect "//AliceIncognito" "$(tcli trusted --mrenclave "$MRENCLAVE" balance //AliceIncognito)" 45000000000

echo "== unshield 20000000000 from //AliceIncognito to //Ferdie"
FERDIE0=$(cli balance //Ferdie)
tcli trusted --mrenclave "$MRENCLAVE" --direct unshield-funds //AliceIncognito //Ferdie 20000000000
expect "//AliceIncognito" "$(tcli trusted --mrenclave "$MRENCLAVE" balance //AliceIncognito)" 25000000000
expect "//Ferdie (parentchain)" "$(cli balance //Ferdie)" $((FERDIE0 + 20000000000))

echo "== the shard's bonding account holds exactly the sidechain's total issuance"
ISSUANCE=$(tcli trusted --mrenclave "$MRENCLAVE" get-total-issuance)
BONDED=$(curl -sf "http://127.0.0.1:$NODE_PORT/abci_query?path=%22/enclavebridge/bonding_account/$MRENCLAVE%22" | python3 -c 'import sys,json,base64; r=json.load(sys.stdin)["result"]["response"]; print(json.loads(base64.b64decode(r["value"]))["free"])')
expect "sidechain total issuance" "$ISSUANCE" 30000000000
expect "bonding account" "$BONDED" "$ISSUANCE"

echo "== a replayed nonce is refused"
NONCE=$(tcli trusted --mrenclave "$MRENCLAVE" nonce //AliceIncognito)
if tcli trusted --mrenclave "$MRENCLAVE" --direct transfer --nonce $((NONCE - 1)) //AliceIncognito //BobIncognito 1 2>"$WORK/err.txt"; then
	echo "FAIL: a replayed nonce was accepted" >&2; exit 1
fi
echo "refused: $(cat "$WORK/err.txt")"
expect "//AliceIncognito" "$(tcli trusted --mrenclave "$MRENCLAVE" balance //AliceIncognito)" 25000000000

echo "== sidechain head"
tcli trusted --mrenclave "$MRENCLAVE" get-sidechain-header
echo "DEMO PASSED"
