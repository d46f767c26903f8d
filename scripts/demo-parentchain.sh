#!/usr/bin/env bash
# The parentchain demo: a dev node, accounts, the faucet, transfers with the
# fee visible, events, and refusals of bad input. Exits non-zero on any
# unexpected value.
source "$(dirname "$0")/lib.sh"
build
start_dev_node

FEE=1000000000
echo "== dev accounts"
expect "//Alice balance" "$(cli balance //Alice)" 1000000000000000
expect "//Ferdie balance" "$(cli balance //Ferdie)" 0

echo "== a new account, funded by the faucet"
ACC=$(cli new-account)
echo "new account $ACC"
cli faucet --amount 2000000000000 "$ACC"
expect "new account balance" "$(cli balance "$ACC")" 2000000000000

echo "== transfer from the new account to //Ferdie (fee $FEE planck is burned)"
cli listen -e 4 >"$WORK/events.txt" 2>/dev/null &
LISTEN=$!
sleep 0.5
cli transfer "$ACC" //Ferdie 500000000000
expect "//Ferdie balance" "$(cli balance //Ferdie)" 500000000000
expect "new account balance" "$(cli balance "$ACC")" $((2000000000000 - 500000000000 - FEE))
wait $LISTEN || true
echo "events seen by 'listen -e 4':"
cat "$WORK/events.txt"

echo "== bad input is refused and changes nothing"
if cli transfer //Ferdie //Alice 600000000000 2>"$WORK/err.txt"; then echo "FAIL: overdraft accepted" >&2; exit 1; fi
echo "refused: $(cat "$WORK/err.txt")"
expect "//Ferdie balance" "$(cli balance //Ferdie)" 500000000000
if cli balance 5FA9nQDVg267DEd8m1ZypXLBnvN7SFxYwV7ndqSYGiN9TTpv 2>"$WORK/err.txt"; then echo "FAIL: bad checksum accepted" >&2; exit 1; fi
echo "refused: $(cat "$WORK/err.txt")"

echo "== registered enclaves"
cli list-workers
echo "DEMO PASSED"
