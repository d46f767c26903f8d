package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/types"
)

// shardBalances reads what the judged flow checks on both chains.
type shardBalances struct {
	aliceL1, ferdieL1, bonding types.Balance
	aliceInc, bobInc, issuance string
}

func readBalances(t *testing.T, w *workerProc, shard, dir string) shardBalances {
	t.Helper()
	var b shardBalances
	b.aliceL1 = types.MustParseBalance(w.node.balance(t, "//Alice"))
	b.ferdieL1 = types.MustParseBalance(w.node.balance(t, "//Ferdie"))
	var bond enclavebridge.BondingAccountInfo
	w.node.query(t, "/enclavebridge/bonding_account/"+shard, &bond)
	b.bonding = bond.Free
	b.aliceInc = w.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", "//AliceIncognito")
	b.bobInc = w.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", "//BobIncognito")
	b.issuance = w.mustT(t, dir, "trusted", "--mrenclave", shard, "get-total-issuance")
	return b
}

func minus(a types.Balance, bs ...types.Balance) types.Balance {
	for _, b := range bs {
		a, _ = a.Sub(b)
	}
	return a
}

func planck(n uint64) types.Balance { return types.NewBalance(n) }

// TestShieldTransferUnshield is the judged flow: shield 50,000,000,000 from
// //Alice to an incognito account, transfer part directly and part
// indirectly, unshield to //Ferdie; every balance exact on both chains and
// the bonding account equal to the sidechain's total issuance.
func TestShieldTransferUnshield(t *testing.T) {
	n := startDevNode(t, "")
	w := startWorker(t, n, "")
	dir := t.TempDir()
	shard := w.mustT(t, dir, "trusted", "get-fingerprint")
	fee := node.DevTxFee
	start := readBalances(t, w, shard, dir)

	w.mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "50000000000", shard)
	b := readBalances(t, w, shard, dir)
	if b.aliceInc != "50000000000" || b.issuance != "50000000000" {
		t.Fatalf("after shielding: //AliceIncognito %s, issuance %s", b.aliceInc, b.issuance)
	}
	if want := minus(start.aliceL1, planck(50000000000), fee); b.aliceL1 != want {
		t.Fatalf("//Alice on the parentchain %s, want %s", b.aliceL1, want)
	}
	if b.bonding != planck(50000000000) {
		t.Fatalf("bonding account %s", b.bonding)
	}

	w.mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "transfer", "//AliceIncognito", "//BobIncognito", "12000000000")
	w.mustT(t, dir, "trusted", "--mrenclave", shard, "--xt-signer", "//Alice", "transfer", "//AliceIncognito", "//BobIncognito", "3000000000")
	b = readBalances(t, w, shard, dir)
	if b.aliceInc != "35000000000" || b.bobInc != "15000000000" {
		t.Fatalf("after the transfers: //AliceIncognito %s //BobIncognito %s", b.aliceInc, b.bobInc)
	}

	w.mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "unshield-funds", "//AliceIncognito", "//Ferdie", "20000000000")
	b = readBalances(t, w, shard, dir)
	if b.aliceInc != "15000000000" || b.bobInc != "15000000000" || b.issuance != "30000000000" {
		t.Fatalf("after unshielding: //AliceIncognito %s //BobIncognito %s issuance %s", b.aliceInc, b.bobInc, b.issuance)
	}
	if want, _ := start.ferdieL1.Add(planck(20000000000)); b.ferdieL1 != want {
		t.Fatalf("//Ferdie %s, want %s", b.ferdieL1, want)
	}
	if b.bonding.String() != b.issuance {
		t.Fatalf("bonding account %s, sidechain issuance %s", b.bonding, b.issuance)
	}
	// //Alice paid the shield and the indirect invocation's fees.
	if want := minus(start.aliceL1, planck(50000000000), fee, fee); b.aliceL1 != want {
		t.Fatalf("//Alice on the parentchain %s, want %s", b.aliceL1, want)
	}

	// Metrics and the header are there for operators.
	h := w.mustT(t, dir, "trusted", "--mrenclave", shard, "get-sidechain-header")
	if !strings.Contains(h, "number") {
		t.Errorf("header %q", h)
	}
	m := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", w.metrics))
	for _, want := range []string{"integritee_worker_enclave_sidechain_block_height", "integritee_worker_enclave_stf_runtime_total_issuance 3e+10", `integritee_worker_enclave_labels{fingerprint="` + shard + `"`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestValidateerRestartLosesNothing kills the validateer (SIGKILL) right
// after an unshielding is submitted and once more after a clean stop:
// keys, state and the pending unshielding survive, and //Ferdie is paid
// exactly once.
func TestValidateerRestartLosesNothing(t *testing.T) {
	n := startDevNode(t, "")
	data := t.TempDir() + "/worker"
	w := startWorker(t, n, data)
	dir := t.TempDir()
	shard := w.mustT(t, dir, "trusted", "get-fingerprint")
	w.mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "50000000000", shard)
	w.mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "transfer", "//AliceIncognito", "//BobIncognito", "1000000000")
	ferdie0 := types.MustParseBalance(n.balance(t, "//Ferdie"))

	// Submit an unshielding and kill the validateer without waiting.
	u := start(t, "integritee-cli", "--keystore", filepath.Join(dir, "my_keystore"), "-p", fmt.Sprint(n.rpc), "-P", fmt.Sprint(w.trusted), "trusted", "--mrenclave", shard, "--direct",
		"unshield-funds", "//AliceIncognito", "//Ferdie", "7000000000")
	// Blocks: #1 the shard's first, #2 the shielding, #3 the transfer, #4
	// the unshielding.
	waitFor(t, "the unshielding to be in a block", 30*time.Second, func() bool {
		return sidechainHeight(t, w) >= 4 || isDone(u)
	})
	w.stop(syscall.SIGKILL)
	u.stop(syscall.SIGKILL)

	w2 := startWorker(t, n, data)
	if got := w2.mustT(t, dir, "trusted", "get-fingerprint"); got != shard {
		t.Fatalf("mrenclave changed across restart: %s then %s", shard, got)
	}
	waitFor(t, "//Ferdie to be paid", 60*time.Second, func() bool {
		return types.MustParseBalance(n.balance(t, "//Ferdie")) != ferdie0
	})
	want, _ := ferdie0.Add(planck(7000000000))
	if got := types.MustParseBalance(n.balance(t, "//Ferdie")); got != want {
		t.Fatalf("//Ferdie %s, want %s", got, want)
	}
	if got := w2.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", "//AliceIncognito"); got != "42000000000" {
		t.Fatalf("//AliceIncognito %s after restart, want 42000000000", got)
	}
	// Restart once more (clean stop): nothing is paid again.
	w2.stop(syscall.SIGTERM)
	w3 := startWorker(t, n, data)
	n.waitHeight(t, n.height()+5, 30*time.Second)
	if got := types.MustParseBalance(n.balance(t, "//Ferdie")); got != want {
		t.Fatalf("//Ferdie %s after a second restart, want %s (paid twice?)", got, want)
	}
	if got := w3.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", "//BobIncognito"); got != "1000000000" {
		t.Fatalf("//BobIncognito %s after restarts", got)
	}
	var bond enclavebridge.BondingAccountInfo
	n.query(t, "/enclavebridge/bonding_account/"+shard, &bond)
	if iss := w3.mustT(t, dir, "trusted", "--mrenclave", shard, "get-total-issuance"); bond.Free.String() != iss {
		t.Fatalf("bonding %s, issuance %s", bond.Free, iss)
	}
}
