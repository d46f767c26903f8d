package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/types"
)

const aliceStart = "1000000000000000" // 1,000 TEER in planck

func TestDevNodeTransferExactBalances(t *testing.T) {
	n := startDevNode(t, "")
	dir := t.TempDir()
	if got := n.balance(t, "//Alice"); got != aliceStart {
		t.Fatalf("//Alice starts with %s, want %s", got, aliceStart)
	}
	if got := n.balance(t, "//Ferdie"); got != "0" {
		t.Fatalf("//Ferdie starts with %s, want 0", got)
	}
	var before balances.Summary
	n.query(t, "/balances/summary", &before)
	fee := node.DevTxFee

	out := n.mustCLI(t, dir, "transfer", "//Alice", "//Ferdie", "123456789")
	if !strings.Contains(out, "in block") {
		t.Errorf("transfer output %q names no block", out)
	}
	if got := n.balance(t, "//Ferdie"); got != "123456789" {
		t.Errorf("//Ferdie has %s, want 123456789", got)
	}
	want, _ := types.MustParseBalance(aliceStart).Sub(types.NewBalance(123456789))
	want, _ = want.Sub(fee)
	if got := n.balance(t, "//Alice"); got != want.String() {
		t.Errorf("//Alice has %s, want %s (start - amount - fee %s)", got, want, fee)
	}
	var after balances.Summary
	n.query(t, "/balances/summary", &after)
	burned, _ := before.TotalIssuance.Sub(after.TotalIssuance)
	if burned.Cmp(fee) != 0 {
		t.Errorf("total issuance fell by %s, want the fee %s", burned, fee)
	}

	// A new account from the keystore, funded by the faucet, pays //Bob.
	addr := n.mustCLI(t, dir, "new-account")
	if _, err := account.ParseID(addr); err != nil {
		t.Fatalf("new-account printed %q: %v", addr, err)
	}
	if got := n.mustCLI(t, dir, "list-accounts"); got != addr {
		t.Errorf("list-accounts = %q, want %q", got, addr)
	}
	n.mustCLI(t, dir, "faucet", "--amount", "5000000000", addr)
	n.mustCLI(t, dir, "transfer", addr, "//Bob", "1000")
	if got := n.balance(t, addr); got != fmt.Sprint(5000000000-1000-fee.Big().Int64()) {
		t.Errorf("new account has %s", got)
	}
	bob, _ := types.ParseBalance(n.balance(t, "//Bob"))
	if bob.Cmp(types.MustParseBalance("1000000000001000")) != 0 {
		t.Errorf("//Bob has %s, want 1000000000001000", bob)
	}
}

// snapshot is the state the bad-input tests must leave unchanged.
type snapshot struct {
	alice, bob balances.AccountInfo
	summary    balances.Summary
}

func takeSnapshot(t *testing.T, n *nodeProc) snapshot {
	var s snapshot
	a, _ := account.DevPair("//Alice")
	b, _ := account.DevPair("//Bob")
	n.query(t, "/balances/account/"+a.ID().Hex(), &s.alice)
	n.query(t, "/balances/account/"+b.ID().Hex(), &s.bob)
	n.query(t, "/balances/summary", &s.summary)
	return s
}

func (s snapshot) String() string {
	return fmt.Sprintf("alice %s/%d bob %s/%d issuance %s", s.alice.Free, s.alice.Nonce, s.bob.Free, s.bob.Nonce, s.summary.TotalIssuance)
}

type checkTxResult struct {
	Code      int    `json:"code"`
	Codespace string `json:"codespace"`
	Log       string `json:"log"`
}

func broadcast(t *testing.T, n *nodeProc, tx []byte) checkTxResult {
	t.Helper()
	res, rerr, err := rpcCall(n.rpc, "broadcast_tx_sync", map[string]any{"tx": base64.StdEncoding.EncodeToString(tx)})
	if err != nil {
		t.Fatal(err)
	}
	if rerr != nil {
		return checkTxResult{Code: -1, Log: rerr.Message + " " + rerr.Data}
	}
	var r checkTxResult
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDevNodeRefusesBadTransactions(t *testing.T) {
	n := startDevNode(t, "")
	chain := n.chain(t)
	if chain.ID != node.DevChainID {
		t.Fatalf("dev chain id %q", chain.ID)
	}
	codec := types.NewCodec()
	alice, _ := account.DevPair("//Alice")
	bob, _ := account.DevPair("//Bob")
	ferdie, _ := account.DevPair("//Ferdie")
	transfer := func(to account.ID, amount types.Balance) types.Call {
		c, err := types.NewCall(codec, "balances", "transfer", balances.TransferArgs{Dest: to, Amount: amount})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := codec.Sign(alice, chain, 0, transfer(bob.ID(), types.NewBalance(1)))
	badSig := codec.Sign(alice, chain, 0, transfer(bob.ID(), types.NewBalance(1)))
	badSig[len(badSig)-1] ^= 1
	sudoCall, _ := types.NewCall(codec, "sudo", "sudo", map[int]any{1: transfer(bob.ID(), types.NewBalance(1))})
	setBal, _ := types.NewCall(codec, "balances", "set_balance", balances.SetBalanceArgs{Who: bob.ID(), Free: types.TEER(1)})

	cases := []struct {
		name, want string
		tx         []byte
	}{
		{"garbage bytes", "tx.Malformed", []byte("not a transaction")},
		{"truncated", "tx.Malformed", good[:len(good)-5]},
		{"oversize", "tx.TooLarge", make([]byte, types.MaxTxBytes+1)},
		{"signed for another genesis (same chain id)", "tx.BadSignature", codec.Sign(alice, types.Chain{ID: chain.ID, Genesis: types.GenesisHash(chain.ID, []byte("other validators"))}, 0, transfer(bob.ID(), types.NewBalance(1)))},
		{"wrong chain id", "tx.WrongChainID", codec.Sign(alice, types.Chain{ID: "another-chain", Genesis: chain.Genesis}, 0, transfer(bob.ID(), types.NewBalance(1)))},
		{"bad signature", "tx.BadSignature", badSig},
		{"future nonce", "tx.FutureNonce", codec.Sign(alice, chain, 7, transfer(bob.ID(), types.NewBalance(1)))},
		{"insufficient funds", "balances.InsufficientBalance", codec.Sign(alice, chain, 0, transfer(bob.ID(), types.TEER(1001)))},
		{"cannot pay fee", "tx.CannotPayFee", codec.Sign(ferdie, chain, 0, transfer(bob.ID(), types.NewBalance(1)))},
		{"unknown module", "tx.UnknownModule", codec.Sign(alice, chain, 0, types.Call{Module: "nope", Method: "x", Args: []byte{0xa0}})},
		{"unknown call", "tx.UnknownCall", codec.Sign(alice, chain, 0, types.Call{Module: "balances", Method: "steal", Args: []byte{0xa0}})},
		{"bad arguments", "tx.BadArguments", codec.Sign(alice, chain, 0, types.Call{Module: "balances", Method: "transfer", Args: []byte{0x01}})},
		{"unauthorised sudo", "sudo.RequireSudo", codec.Sign(bob, chain, 0, sudoCall)},
		{"root call without sudo", "tx.BadOrigin", codec.Sign(alice, chain, 0, setBal)},
	}
	before := takeSnapshot(t, n)
	for _, c := range cases {
		r := broadcast(t, n, c.tx)
		if r.Code == 0 || !strings.Contains(r.Log, c.want) {
			t.Errorf("%s: code %d log %q, want an error naming %s", c.name, r.Code, r.Log, c.want)
		}
	}
	// Replay: the good transfer goes in once; sending the same bytes again,
	// or another transaction with the used nonce, is refused.
	if r := broadcast(t, n, good); r.Code != 0 {
		t.Fatalf("good transfer refused: %s", r.Log)
	}
	waitFor(t, "the transfer to be committed", 30*time.Second, func() bool {
		return takeSnapshot(t, n).alice.Nonce == 1
	})
	mid := takeSnapshot(t, n)
	for _, tx := range [][]byte{good, codec.Sign(alice, chain, 0, transfer(bob.ID(), types.NewBalance(2)))} {
		if r := broadcast(t, n, tx); r.Code == 0 || !(strings.Contains(r.Log, "tx.StaleNonce") || strings.Contains(r.Log, "already exists in cache")) {
			t.Errorf("replay: code %d log %q, want StaleNonce or the mempool's duplicate refusal", r.Code, r.Log)
		}
	}
	n.waitHeight(t, n.height()+2, 30*time.Second)
	if after := takeSnapshot(t, n); after != mid {
		t.Errorf("bad input changed state:\nbefore %s\nafter  %s", mid, after)
	}
	wantBob, _ := before.bob.Free.Add(types.NewBalance(1))
	if mid.bob.Free != wantBob {
		t.Errorf("bob has %s after the one good transfer, want %s", mid.bob.Free, wantBob)
	}

	// Malformed JSON-RPC gets a JSON-RPC error, not a crash.
	if _, rerr, err := rpcRaw(n.rpc, []byte(`{"jsonrpc":"2.0","id":1,"method":"broadcast_tx_sync","params":{"tx":"%%%"}}`)); err != nil || rerr == nil {
		t.Errorf("bad base64 tx: err %v rpc error %v", err, rerr)
	}
	if _, rerr, err := rpcRaw(n.rpc, []byte(`{"jsonrpc":"2.0","id":1,"method":`)); err != nil || rerr == nil {
		t.Errorf("truncated JSON: err %v rpc error %v", err, rerr)
	}
	if n.height() < 0 {
		t.Fatal("node stopped answering")
	}
}

func TestCLIRefusesGarbageArguments(t *testing.T) {
	n := startDevNode(t, "")
	dir := t.TempDir()
	alice, _ := account.DevPair("//Alice")
	addr := alice.ID().String()
	broken := addr[:len(addr)-1] + "v"
	before := takeSnapshot(t, n)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"balance", broken}, "bad SS58 checksum"},
		{[]string{"balance", "0x1234"}, "public key is 2 bytes"},
		{[]string{"transfer", "//Alice", "//Bob", "--", "-5"}, "non-negative integer"},
		{[]string{"transfer", "//Alice", "//Bob", "1.5"}, "non-negative integer"},
		{[]string{"transfer", "//Alice", "//Bob", "340282366920938463463374607431768211456"}, "below 2^128"},
		{[]string{"transfer", "//Alice", broken, "1"}, "bad SS58 checksum"},
		{[]string{"transfer", addr, "//Bob", "1"}, "no key for this account"},
		{[]string{"transfer", "//Alice", "//Bob"}, "accepts 3 arg(s)"},
		{[]string{"transfer", "//Alice", "//Bob", "2000000000000000"}, "balances.InsufficientBalance"},
		{[]string{"faucet", "nonsense"}, "not an account"},
		{[]string{"balance", "0OIl"}, "neither an SS58 address"},
		{[]string{"listen", "-b", "-1"}, "non-negative"},
	}
	for _, c := range cases {
		r := n.cli(t, dir, c.args...)
		if r.code == 0 || !strings.Contains(r.err, c.want) {
			t.Errorf("integritee-cli %v: exit %d, stderr %q; want failure naming %q", c.args, r.code, r.err, c.want)
		}
	}
	if after := takeSnapshot(t, n); after != before {
		t.Errorf("garbage arguments changed state:\nbefore %s\nafter  %s", before, after)
	}
}

func TestDevNodeSurvivesRestart(t *testing.T) {
	base := t.TempDir()
	n := startDevNode(t, base)
	n.mustCLI(t, t.TempDir(), "transfer", "//Alice", "//Ferdie", "777")
	h := n.height()
	hash := n.appHashAt(t, h-1)
	n.stop(syscall.SIGKILL)

	n2 := startDevNode(t, base)
	n2.waitHeight(t, h+1, 30*time.Second)
	if got := n2.balance(t, "//Ferdie"); got != "777" {
		t.Errorf("after SIGKILL and restart //Ferdie has %s, want 777", got)
	}
	if got := n2.appHashAt(t, h-1); got != hash {
		t.Errorf("app hash after height %d changed across restart: %s then %s", h-1, hash, got)
	}
	n2.mustCLI(t, t.TempDir(), "transfer", "//Alice", "//Ferdie", "1")
	if got := n2.balance(t, "//Ferdie"); got != "778" {
		t.Errorf("//Ferdie has %s, want 778", got)
	}
	n2.stop(syscall.SIGTERM)
	n3 := startDevNode(t, base)
	if got := n3.balance(t, "//Ferdie"); got != "778" {
		t.Errorf("after a clean restart //Ferdie has %s, want 778", got)
	}
}

func TestListenPrintsEventsAndMetricsCountThem(t *testing.T) {
	n := startDevNode(t, "")
	dir := t.TempDir()
	l := start(t, "integritee-cli", "-p", fmt.Sprint(n.rpc), "listen", "-e", "3")
	waitFor(t, "listen to subscribe", 10*time.Second, func() bool {
		b, _ := os.ReadFile(l.log)
		return strings.Contains(string(b), "subscribed")
	})
	n.mustCLI(t, dir, "transfer", "//Alice", "//Bob", "42")
	select {
	case <-l.done:
	case <-time.After(30 * time.Second):
		t.Fatal("listen -e 3 did not stop after a transfer's events")
	}
	b, _ := io.ReadAll(mustOpen(t, l.log))
	out := string(b)
	for _, want := range []string{"event #", "tx call=balances.transfer", "balances.Transfer", "amount=42"} {
		if !strings.Contains(out, want) {
			t.Errorf("listen output lacks %q:\n%s", want, out)
		}
	}
	if l.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("listen exited %d", l.cmd.ProcessState.ExitCode())
	}

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", n.prom))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`integritee_node_transactions_total{call="transfer",module="balances",result="ok"} 1`,
		"integritee_node_accounts 5",
		"integritee_node_total_issuance_planck",
		"cometbft_consensus_height",
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
