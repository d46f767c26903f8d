#!/usr/bin/env bash
# The demo: a local network of two parentchain nodes and three validateers
# sharing one shard (local-setup/two-nodes-three-validateers.json, started
# by integritee-localnet): shielding, private transfers sent to each
# validateer, indirect transfers through each node, unshielding to //Ferdie,
# then every validateer must report the same balances, head and state.
# Exits non-zero on any unexpected value.
source "$(dirname "$0")/lib.sh"
build
CONFIG=${CONFIG:-$ROOT/local-setup/two-nodes-three-validateers.json}
echo "== starting the local network ($CONFIG, logs in $WORK/net/logs)"
"$BIN/integritee-localnet" --config "$CONFIG" --work-dir "$WORK/net" --bin-dir "$BIN" >"$WORK/localnet.out" 2>&1 &
PIDS+=($!)
if ! wait_until "the local network" 240 grep -q "all processes healthy" "$WORK/localnet.out"; then
	tail -40 "$WORK/localnet.out" >&2; exit 1
fi
grep -E "^(PROCESS|node|validateer)" "$WORK/localnet.out" || true

NODES=(9944 9945)          # node0, node1 (rpc)
VALIDATEERS=(2000 2010 2020) # validateer0..2 (trusted rpc); 0 and 2 beside node0, 1 beside node1
node_of() { case $1 in 2010) echo 9945;; *) echo 9944;; esac; }
vcli() { local v=$1; shift; (cd "$WORK" && "$BIN/integritee-cli" -p "$(node_of "$v")" -P "$v" "$@"); }
ncli() { local n=$1; shift; (cd "$WORK" && "$BIN/integritee-cli" -p "$n" "$@"); }
NODE_PORT=9944

MRENCLAVE=$(vcli 2000 trusted get-fingerprint)
echo "mrenclave (= shard) $MRENCLAVE"
KEY0=$(vcli 2000 trusted get-shielding-key)
for v in "${VALIDATEERS[@]}"; do
	expect "validateer $v's fingerprint" "$(vcli "$v" trusted get-fingerprint)" "$MRENCLAVE"
	expect "validateer $v's shielding key (shared over mutual attestation)" "$(vcli "$v" trusted get-shielding-key)" "$KEY0"
done
t() { local v=$1; shift; vcli "$v" trusted --mrenclave "$MRENCLAVE" "$@"; }
balances_everywhere() { # ACCOUNT WANT
	# The other validateers hold the block once they imported it from its
	# author (a broadcast, milliseconds later): wait for it, then check.
	for v in "${VALIDATEERS[@]}"; do
		wait_until "$1 on validateer $v to be $2" 20 test "$(t "$v" balance "$1")" = "$2" || true
		expect "$1 on validateer $v" "$(t "$v" balance "$1")" "$2"
	done
}

echo "== shield 50000000000 planck from //Alice to //AliceIncognito (through node1)"
ncli 9945 shield-funds //Alice //AliceIncognito 50000000000 "$MRENCLAVE"
balances_everywhere //AliceIncognito 50000000000

echo "== private transfers of 1000000000 to //BobIncognito, one to each validateer (direct invocation)"
for v in "${VALIDATEERS[@]}"; do
	echo "-- through validateer $v"
	t "$v" --direct transfer //AliceIncognito //BobIncognito 1000000000
done
balances_everywhere //AliceIncognito 47000000000
balances_everywhere //BobIncognito 3000000000

echo "== transfers of 500000000 back, one through each node (indirect invocation, fee paid by //Bob)"
for n in "${NODES[@]}"; do
	v=2000; [ "$n" = 9945 ] && v=2010
	echo "-- through node $n"
	vcli "$v" trusted --mrenclave "$MRENCLAVE" -a //Bob transfer //BobIncognito //AliceIncognito 500000000
done
balances_everywhere //BobIncognito 2000000000
balances_everywhere //AliceIncognito 48000000000

echo "== unshield 20000000000 from //AliceIncognito to //Ferdie (through validateer 2020)"
FERDIE0=$(ncli 9944 balance //Ferdie)
t 2020 --direct unshield-funds //AliceIncognito //Ferdie 20000000000
expect "//Ferdie (parentchain, node0)" "$(ncli 9944 balance //Ferdie)" $((FERDIE0 + 20000000000))
wait_until "node1 to agree" 30 test "$(ncli 9945 balance //Ferdie)" = $((FERDIE0 + 20000000000))
expect "//Ferdie (parentchain, node1)" "$(ncli 9945 balance //Ferdie)" $((FERDIE0 + 20000000000))
balances_everywhere //AliceIncognito 28000000000

echo "== the shard's bonding account holds exactly the sidechain's total issuance"
ISSUANCE=$(t 2000 get-total-issuance)
BONDED=$(curl -sf "http://127.0.0.1:9944/abci_query?path=%22/enclavebridge/bonding_account/$MRENCLAVE%22" | python3 -c 'import sys,json,base64; r=json.load(sys.stdin)["result"]["response"]; print(json.loads(base64.b64decode(r["value"]))["free"])')
expect "sidechain total issuance" "$ISSUANCE" 30000000000
expect "bonding account" "$BONDED" "$ISSUANCE"

echo "== one chain: every validateer holds the same head"
header() { t "$1" get-sidechain-header | python3 -c 'import sys,json; h=json.load(sys.stdin); print(h["number"], h["hash"])'; }
# The chain may still take a block (the paid unshielding leaves the outbox
# in the block after its payout is proven): wait until all three agree.
same_heads() { [ "$(header 2000)" = "$(header 2010)" ] && [ "$(header 2010)" = "$(header 2020)" ]; }
wait_until "every validateer to hold the same head" 30 same_heads
HEAD0=$(header 2000)
for v in 2010 2020; do
	expect "validateer $v's head" "$(header "$v")" "$HEAD0"
done
echo "== blocks authored per validateer"
AUTHORS=0
for m in 8787 8797 8807; do
	P=$(curl -sf "http://127.0.0.1:$m/metrics" | awk '/^integritee_worker_enclave_sidechain_blocks_proposed_total/ {print $2}')
	echo "validateer (metrics $m): ${P:-0} blocks proposed"
	if [ "${P:-0}" != 0 ]; then AUTHORS=$((AUTHORS + 1)); fi
done
if [ $AUTHORS -lt 2 ]; then echo "FAIL: fewer than two validateers authored blocks" >&2; exit 1; fi
echo "DEMO PASSED"
