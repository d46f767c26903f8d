package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	coretypes "github.com/cometbft/cometbft/rpc/core/types"
	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/types"
)

// The validateer's host (its operator) attacks its own enclave: it restores
// old copies of the data dir, and points a fresh enclave at a chain of its
// own. None of it may pay the same funds twice, credit a deposit twice, or
// yield a signature the real chain accepts.

// haltLog is what the enclave logs when the parentchain knows more of its
// shard than its state (enclave.StateBehindChain).
const haltLog = "halting: the parentchain knows more of this shard than the enclave's state"

// copyTree copies the directory src to dst (which must not exist) with
// `cp -a`, as an operator backs up a stopped validateer.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}

// restoreTree replaces dst with a copy of src: the operator's rollback.
func restoreTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	copyTree(t, src, dst)
}

// bondingOf reads the shard's bonding account on n.
func bondingOf(t *testing.T, n *nodeProc, shard string) types.Balance {
	t.Helper()
	var bond enclavebridge.BondingAccountInfo
	n.query(t, "/enclavebridge/bonding_account/"+shard, &bond)
	return bond.Free
}

// unshieldTxs returns the committed enclavebridge.unshield_funds
// transactions of n, oldest first.
func unshieldTxs(t *testing.T, n *nodeProc) []*coretypes.ResultTx {
	t.Helper()
	c, err := client.Dial(fmt.Sprintf("http://127.0.0.1:%d", n.rpc))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	perPage := 100
	res, err := c.RPC().TxSearch(ctx, "tx.call='enclavebridge.unshield_funds'", false, nil, &perPage, "asc")
	if err != nil {
		t.Fatalf("tx_search on %s (rpc %d): %v", n.name, n.rpc, err)
	}
	return res.Txs
}

// describeTxs summarises transactions and their results for messages.
func describeTxs(txs []*coretypes.ResultTx) string {
	var parts []string
	for _, r := range txs {
		res := "ok"
		if r.TxResult.Code != 0 {
			res = r.TxResult.Log
		}
		parts = append(parts, fmt.Sprintf("height %d tx %s: %s", r.Height, r.Hash, res))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// startState is how a validateer started on a doctored data dir ended up.
type startState int

const (
	startRefused startState = iota // the process exited
	startHalted                    // it logged the halt
	startServing                   // it serves (/is_initialized is 200) and has not halted
)

// awaitStart waits until w exits, halts or serves, whichever is first.
func awaitStart(t *testing.T, w *workerProc, timeout time.Duration) startState {
	t.Helper()
	var got startState
	eventually(t, w.name+" to exit, halt or serve", timeout, func() (bool, string) {
		switch {
		case isDone(w.proc):
			got = startRefused
		case len(logLines(w.proc, haltLog)) > 0:
			got = startHalted
		case w.initialized():
			got = startServing
		default:
			return false, "last log line: " + lastLine(procLog(w.proc))
		}
		return true, ""
	})
	return got
}

// TestRollbackFromACopiedDataDirPaysNothingTwice: the operator backs up the
// stopped validateer's whole data dir after a shielding, lets it unshield
// (//Ferdie is paid), then restores the backup and restarts it on the same
// ports and sealing secret. The restored enclave, whose state still holds
// the unshielded funds, halts with StateBehindChain once it verifies, in
// proven parentchain state, the sidechain block that carried the payout (or
// the payout itself), and a second unshielding of the same funds submitted to it
// is never paid: //Ferdie's balance rose once, the bonding account fell
// once, and the chain holds exactly one unshield_funds transaction.
func TestRollbackFromACopiedDataDirPaysNothingTwice(t *testing.T) {
	n := startDevNode(t, "")
	root := t.TempDir()
	data := filepath.Join(root, "worker")
	w := startWorker(t, n, data)
	dir := t.TempDir()
	shard := w.mustT(t, dir, "trusted", "get-fingerprint")
	w.mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "10000000000", shard)
	if got := w.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", "//AliceIncognito"); got != "10000000000" {
		t.Fatalf("//AliceIncognito %s after shielding 10000000000", got)
	}

	// The backup: the whole data dir of the cleanly stopped validateer.
	w.stop(syscall.SIGTERM)
	backup := filepath.Join(root, "backup")
	copyTree(t, data, backup)

	w2 := startValidateer(t, "validateer-after-backup", n, "", data, w.ports())
	waitInitialized(t, w2, 90*time.Second)
	ferdie0 := types.MustParseBalance(n.balance(t, "//Ferdie"))
	bond0 := bondingOf(t, n, shard)
	w2.mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "unshield-funds", "//AliceIncognito", "//Ferdie", "7000000000")
	ferdie1, _ := ferdie0.Add(planck(7000000000))
	bond1 := minus(bond0, planck(7000000000))
	if got := types.MustParseBalance(n.balance(t, "//Ferdie")); got != ferdie1 {
		t.Fatalf("//Ferdie %s after the unshielding of 7000000000, want %s", got, ferdie1)
	}
	if got := bondingOf(t, n, shard); got != bond1 {
		t.Fatalf("bonding account %s after the unshielding, want %s", got, bond1)
	}
	if got := w2.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", "//AliceIncognito"); got != "3000000000" {
		t.Fatalf("//AliceIncognito %s after unshielding 7000000000 of 10000000000", got)
	}
	headBefore, _ := cliHeader(t, w2, dir, shard)

	// The rollback: the backup replaces the data dir; same ports, same
	// sealing secret (it lives beside the data dir).
	w2.stop(syscall.SIGTERM)
	restoreTree(t, backup, data)
	w3 := startValidateer(t, "validateer-rolled-back", n, "", data, w.ports())
	switch st := awaitStart(t, w3, 90*time.Second); st {
	case startRefused:
		t.Fatalf("the rolled-back validateer exited instead of halting: %s", lastLine(procLog(w3.proc)))
	case startServing:
		t.Logf("the rolled-back validateer serves and has not halted yet")
	case startHalted:
		t.Logf("the rolled-back validateer halted while starting")
	}
	// The rollback is real: the restored state is the backup's, its head
	// older and the funds still there.
	headRestored, _ := cliHeader(t, w3, dir, shard)
	got := w3.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", "//AliceIncognito")
	t.Logf("the rolled-back validateer: head #%d (#%d before the rollback), //AliceIncognito %s", headRestored, headBefore, got)
	if headRestored >= headBefore || got != "10000000000" {
		t.Fatalf("the rolled-back validateer has head #%d and //AliceIncognito %s; want a head below #%d and the backup's 10000000000: the rollback did not take", headRestored, got, headBefore)
	}

	// A second unshielding of the same funds, to the restored state. It may
	// be accepted on the old state's sidechain but must never be paid.
	r := w3.tcli(t, dir, "trusted", "--mrenclave", shard, "--timeout", "12s", "--direct",
		"unshield-funds", "//AliceIncognito", "//Ferdie", "9000000000")
	t.Logf("second unshielding through the rolled-back validateer: exit %d: %s", r.code, trimOut(r.out+" "+r.err))
	if r.code == 0 {
		t.Errorf("the CLI reports the second unshielding paid: %s", trimOut(r.out))
	}
	n.waitHeight(t, n.height()+20, 60*time.Second)

	if got := types.MustParseBalance(n.balance(t, "//Ferdie")); got != ferdie1 {
		t.Errorf("//Ferdie %s after the rollback, want %s (paid once, 7000000000): the same funds were paid twice", got, ferdie1)
	}
	if got := bondingOf(t, n, shard); got != bond1 {
		t.Errorf("bonding account %s after the rollback, want %s (debited once)", got, bond1)
	}
	txs := unshieldTxs(t, n)
	if len(txs) != 1 || txs[0].TxResult.Code != 0 {
		t.Errorf("the parentchain holds unshield_funds transactions %s, want the one paid payout (a halted enclave sends nothing)", describeTxs(txs))
	}
	if isDone(w3.proc) {
		t.Errorf("the rolled-back validateer exited: %s", lastLine(procLog(w3.proc)))
	}
	halts := logLines(w3.proc, haltLog)
	if len(halts) == 0 {
		t.Fatalf("the rolled-back validateer never logged %q; last log line: %s", haltLog, lastLine(procLog(w3.proc)))
	}
	if !strings.Contains(halts[0], "StateBehindChain") {
		t.Errorf("the halt names no StateBehindChain: %s", halts[0])
	}
	t.Logf("halt: %s", halts[0])
}

// TestRestoredStateDirWithNewerBlocksCreditsNothingTwice: the operator backs
// up only the data dir's state/ (sealed sync records, snapshots) after a
// first shielding, lets a second shielding be credited, then puts the old
// state/ back under the newer blocks/ and restarts. Whatever the validateer
// does (refuse to start, halt, or go on), //AliceIncognito never holds more
// than the two deposits and the sidechain's total issuance never exceeds the
// bonding account.
func TestRestoredStateDirWithNewerBlocksCreditsNothingTwice(t *testing.T) {
	n := startDevNode(t, "")
	root := t.TempDir()
	data := filepath.Join(root, "worker")
	w := startWorker(t, n, data)
	dir := t.TempDir()
	shard := w.mustT(t, dir, "trusted", "get-fingerprint")
	balance := func(w *workerProc) string {
		return w.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", "//AliceIncognito")
	}
	w.mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "10000000000", shard)
	if got := balance(w); got != "10000000000" {
		t.Fatalf("//AliceIncognito %s after the first deposit of 10000000000", got)
	}

	w.stop(syscall.SIGTERM)
	stateDir := filepath.Join(data, "state")
	oldState := filepath.Join(root, "state-backup")
	copyTree(t, stateDir, oldState)

	w2 := startValidateer(t, "validateer-second-deposit", n, "", data, w.ports())
	waitInitialized(t, w2, 90*time.Second)
	w2.mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "5000000000", shard)
	waitFor(t, "the second deposit to be credited", 30*time.Second, func() bool { return balance(w2) == "15000000000" })
	const deposits = 15000000000
	if got := bondingOf(t, n, shard); got != planck(deposits) {
		t.Fatalf("bonding account %s after both deposits, want %d", got, deposits)
	}
	head, _ := cliHeader(t, w2, dir, shard)
	w2.stop(syscall.SIGTERM)

	// The old state/ under the newer blocks/ (and the same sealed/).
	restoreTree(t, oldState, stateDir)
	w3 := startValidateer(t, "validateer-old-state", n, "", data, w.ports())
	st := awaitStart(t, w3, 90*time.Second)
	if st == startRefused {
		msg, code := lastLine(procLog(w3.proc)), w3.cmd.ProcessState.ExitCode()
		t.Logf("observed: the validateer refuses to start on the old state/ under newer blocks (head #%d): exit %d: %s", head, code, msg)
		if code == 0 || !strings.Contains(msg, "Error") {
			t.Errorf("the validateer stopped with exit code %d and no error on its last log line: %s", code, msg)
		}
		if got := bondingOf(t, n, shard); got != planck(deposits) {
			t.Errorf("bonding account %s, want %d", got, deposits)
		}
		return
	}
	// It runs: let it verify the parentchain past both deposits, then check
	// it credited nothing twice.
	n.waitHeight(t, n.height()+10, 30*time.Second)
	halted := len(logLines(w3.proc, haltLog)) > 0
	inc := w3.tcli(t, dir, "trusted", "--mrenclave", shard, "balance", "//AliceIncognito")
	iss := w3.tcli(t, dir, "trusted", "--mrenclave", shard, "get-total-issuance")
	bond := bondingOf(t, n, shard)
	t.Logf("observed: the validateer runs on the old state/ (halted: %v); //AliceIncognito: exit %d %s; issuance: exit %d %s; bonding %s; head #%d before the restore",
		halted, inc.code, trimOut(inc.out+inc.err), iss.code, trimOut(iss.out+iss.err), bond, head)
	if bond != planck(deposits) {
		t.Errorf("bonding account %s, want %d", bond, deposits)
	}
	if inc.code == 0 {
		if b, err := types.ParseBalance(trimOut(inc.out)); err != nil || b.Cmp(planck(deposits)) > 0 {
			t.Errorf("//AliceIncognito holds %s on the restored validateer, more than the two deposits (%d): a deposit was credited twice", trimOut(inc.out), deposits)
		}
	}
	if iss.code == 0 {
		if b, err := types.ParseBalance(trimOut(iss.out)); err != nil || b.Cmp(bond) > 0 {
			t.Errorf("the sidechain's total issuance %s exceeds the bonding account %s", trimOut(iss.out), bond)
		}
	}
}

// TestFakeChainSignaturesAreWorthlessOnTheRealChain: the operator starts a
// fresh validateer against a dev chain of its own, with the real chain's id
// but its own validators, and has it pay out there. The enclave's own
// unshield_funds transaction, broadcast byte for byte to the real chain, is
// refused with tx.BadSignature: its signature covers the fake chain's
// genesis hash. //Ferdie gets nothing on the real chain.
func TestFakeChainSignaturesAreWorthlessOnTheRealChain(t *testing.T) {
	realNode := startDevNode(t, "")
	fakeNode := startDevNode(t, "")
	realChain, fakeChain := realNode.chain(t), fakeNode.chain(t)
	if realChain.ID != fakeChain.ID {
		t.Fatalf("chain ids differ: real %q, fake %q; the attack needs the same id", realChain.ID, fakeChain.ID)
	}
	if realChain.Genesis == fakeChain.Genesis {
		t.Fatalf("both dev chains have genesis hash %x: separate base paths should make separate validators", realChain.Genesis)
	}

	w := startWorker(t, fakeNode, "")
	dir := t.TempDir()
	shard := w.mustT(t, dir, "trusted", "get-fingerprint")
	w.mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "10000000000", shard)
	ferdieReal0 := types.MustParseBalance(realNode.balance(t, "//Ferdie"))
	realBond0 := bondingOf(t, realNode, shard)
	ferdieFake0 := types.MustParseBalance(fakeNode.balance(t, "//Ferdie"))
	w.mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "unshield-funds", "//AliceIncognito", "//Ferdie", "4000000000")
	if want, _ := ferdieFake0.Add(planck(4000000000)); types.MustParseBalance(fakeNode.balance(t, "//Ferdie")) != want {
		t.Fatalf("//Ferdie on the fake chain %s, want %s", fakeNode.balance(t, "//Ferdie"), want)
	}

	// The enclave's payout, as the fake chain committed it.
	txs := unshieldTxs(t, fakeNode)
	if len(txs) != 1 || txs[0].TxResult.Code != 0 {
		t.Fatalf("the fake chain holds unshield_funds transactions %s, want one that succeeded", describeTxs(txs))
	}
	raw := []byte(txs[0].Tx)
	codec := types.NewCodec()
	tx, err := codec.DecodeTx(raw)
	if err != nil {
		t.Fatalf("decode the fake chain's unshield_funds: %v", err)
	}
	var args enclavebridge.UnshieldFundsArgs
	if err := codec.Unmarshal(tx.Body.Call.Args, &args); err != nil {
		t.Fatalf("unshield_funds arguments: %v", err)
	}
	ferdie, _ := account.DevPair("//Ferdie")
	if tx.Body.Call.String() != "enclavebridge.unshield_funds" || args.Shard.String() != shard || args.Beneficiary != ferdie.ID() || args.Amount != planck(4000000000) {
		t.Fatalf("the fake chain's payout is %s of %s to %s on shard %s; want enclavebridge.unshield_funds of 4000000000 to //Ferdie on %s",
			tx.Body.Call, args.Amount, args.Beneficiary, args.Shard, shard)
	}
	var reg teerex.Enclave
	fakeNode.query(t, "/teerex/enclave/"+tx.Body.Signer.Hex(), &reg)
	if reg.MrEnclave.String() != shard {
		t.Fatalf("the payout's signer %s is registered with mrenclave %s, not the validateer's %s", tx.Body.Signer, reg.MrEnclave, shard)
	}
	if tx.Body.ChainID != realChain.ID {
		t.Fatalf("the payout names chain %q, want %q", tx.Body.ChainID, realChain.ID)
	}
	if err := codec.VerifySignature(tx, fakeChain.Genesis); err != nil {
		t.Fatalf("the enclave's signature does not verify under the fake chain's genesis: %v", err)
	}
	if err := codec.VerifySignature(tx, realChain.Genesis); err == nil {
		t.Fatalf("the enclave's signature on the fake chain verifies under the real chain's genesis %x", realChain.Genesis)
	}

	// The same bytes on the real chain.
	res := broadcast(t, realNode, raw)
	t.Logf("the real chain answers the fake chain's payout (nonce %d, signer %s): code %d %q", tx.Body.Nonce, tx.Body.Signer, res.Code, res.Log)
	if res.Code == 0 || !strings.Contains(res.Log, "tx.BadSignature") {
		t.Errorf("the real chain answered the fake chain's payout with code %d %q, want a refusal naming tx.BadSignature", res.Code, res.Log)
	}
	realNode.waitHeight(t, realNode.height()+5, 30*time.Second)
	if got := types.MustParseBalance(realNode.balance(t, "//Ferdie")); got != ferdieReal0 {
		t.Errorf("//Ferdie on the real chain %s, was %s", got, ferdieReal0)
	}
	if got := bondingOf(t, realNode, shard); got != realBond0 {
		t.Errorf("the shard's bonding account on the real chain %s, was %s", got, realBond0)
	}
	if got := unshieldTxs(t, realNode); len(got) != 0 {
		t.Errorf("the real chain committed unshield_funds transactions %s", describeTxs(got))
	}
}
