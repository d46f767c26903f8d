package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/types"
	sc "github.com/integritee-go/integritee/sidechain"
)

// xtEnv is a dev node and a validateer, with a typed client of the node for
// reading the parentchain transactions that carry indirect invocations.
type xtEnv struct {
	t     *testing.T
	n     *nodeProc
	w     *workerProc
	c     *client.Client
	dir   string
	shard string
}

// l1 returns id's parentchain account (zero if the chain never saw it).
func (e *xtEnv) l1(id account.ID) balances.AccountInfo {
	e.t.Helper()
	var a balances.AccountInfo
	e.n.query(e.t, "/balances/account/"+id.Hex(), &a)
	return a
}

// search returns the hashes (upper-case hex) of the committed transactions
// matching a tx_search query.
func (e *xtEnv) search(query string) []string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	perPage := 100
	res, err := e.c.RPC().TxSearch(ctx, query, false, nil, &perPage, "asc")
	if err != nil {
		e.t.Fatalf("tx_search %q: %v", query, err)
	}
	var hs []string
	for _, r := range res.Txs {
		hs = append(hs, r.Hash.String())
	}
	return hs
}

// trusted runs `integritee-cli trusted --mrenclave SHARD args...`.
func (e *xtEnv) trusted(args ...string) string {
	e.t.Helper()
	return e.w.mustT(e.t, e.dir, append([]string{"trusted", "--mrenclave", e.shard}, args...)...)
}

var invokedTx = regexp.MustCompile(`invoked in parentchain block (\d+) \(tx ([0-9A-F]{64})`)

// invokeTx finds, from the CLI's report of an indirect invocation, the
// parentchain transaction that carried it, and checks it is a well-signed
// enclavebridge.invoke for the shard, signed by want (its signer, the
// signature and the IndirectInvocationRegistered event's sender).
func (e *xtEnv) invokeTx(out string, want account.ID) string {
	e.t.Helper()
	m := invokedTx.FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("the CLI reported no parentchain transaction: %q", out)
	}
	hash, err := hex.DecodeString(m[2])
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.c.RPC().Tx(ctx, hash, false)
	if err != nil {
		e.t.Fatalf("tx %s: %v", m[2], err)
	}
	if got := fmt.Sprint(res.Height); got != m[1] {
		e.t.Errorf("tx %s is in block %s; the CLI said %s", m[2], got, m[1])
	}
	codec := types.NewCodec()
	tx, err := codec.DecodeTx(res.Tx)
	if err != nil {
		e.t.Fatalf("tx %s: %v", m[2], err)
	}
	if err := codec.VerifySignature(tx, e.n.chain(e.t).Genesis); err != nil {
		e.t.Errorf("tx %s: %v", m[2], err)
	}
	if tx.Body.Call.String() != "enclavebridge.invoke" {
		e.t.Fatalf("tx %s is %s, want enclavebridge.invoke", m[2], tx.Body.Call)
	}
	var args enclavebridge.InvokeArgs
	if err := codec.Unmarshal(tx.Body.Call.Args, &args); err != nil {
		e.t.Fatalf("tx %s: invoke arguments: %v", m[2], err)
	}
	if args.Shard.String() != e.shard {
		e.t.Errorf("tx %s invokes shard %s, want %s", m[2], args.Shard, e.shard)
	}
	if tx.Body.Signer != want {
		e.t.Errorf("enclavebridge.invoke tx %s signed by %s, want %s", m[2], tx.Body.Signer, want)
	}
	sender := ""
	for _, ev := range res.TxResult.Events {
		if ev.Type != "enclavebridge.IndirectInvocationRegistered" {
			continue
		}
		for _, a := range ev.Attributes {
			if a.Key == "sender" {
				sender = a.Value
			}
		}
	}
	if sender != want.String() {
		e.t.Errorf("tx %s: IndirectInvocationRegistered sender %q, want %s", m[2], sender, want)
	}
	return m[2]
}

// neverOnL1 checks that the parentchain has no trace of id: no account, no
// nonce, no transaction signed by it, no invocation sent by it.
func (e *xtEnv) neverOnL1(what string, id account.ID) {
	e.t.Helper()
	if a := e.l1(id); a.Nonce != 0 || !a.Free.IsZero() {
		e.t.Errorf("%s has a parentchain account: free %s, nonce %d", what, a.Free, a.Nonce)
	}
	for _, q := range []string{
		fmt.Sprintf("tx.signer='%s'", id),
		fmt.Sprintf("enclavebridge.IndirectInvocationRegistered.sender='%s'", id),
	} {
		if hs := e.search(q); len(hs) != 0 {
			e.t.Errorf("%s appears on the parentchain: %s matches %v", what, q, hs)
		}
	}
}

// TestIndirectXtSigner: an indirect trusted transfer from an incognito
// account that has no parentchain funds goes through, its enclavebridge.invoke
// extrinsic signed and paid by the xt-signer: //Alice by default, //Bob with
// -a //Bob. The incognito account never appears on the parentchain, while
// the trusted call is still its own (its trusted nonce moves).
func TestIndirectXtSigner(t *testing.T) {
	n := startDevNode(t, "")
	w := startWorker(t, n, "")
	c, err := client.Dial(fmt.Sprintf("http://127.0.0.1:%d", n.rpc))
	if err != nil {
		t.Fatal(err)
	}
	e := &xtEnv{t: t, n: n, w: w, c: c, dir: t.TempDir()}
	e.shard = w.mustT(t, e.dir, "trusted", "get-fingerprint")
	shard, err := sc.ParseShardID(e.shard)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the validateer to announce its shard on the parentchain", 60*time.Second, func() bool {
		var s []enclavebridge.ShardSignerStatus
		n.query(t, "/enclavebridge/shard_status/"+shard.String(), &s)
		return len(s) > 0
	})

	alice, bob := mustDevPair(t, "//Alice").ID(), mustDevPair(t, "//Bob").ID()
	inc := mustDevPair(t, "//AliceIncognito").ID()
	fee := node.DevTxFee

	// //AliceIncognito is funded on the sidechain only (set-balance by the
	// sidechain root, directly: nothing touches the parentchain).
	e.trusted("--direct", "set-balance", "//AliceIncognito", "10000000000")
	if got := e.trusted("balance", "//AliceIncognito"); got != "10000000000" {
		t.Fatalf("//AliceIncognito on the sidechain: %s", got)
	}
	e.neverOnL1("//AliceIncognito", inc)

	// 1. No --xt-signer: //Alice signs and pays for enclavebridge.invoke.
	a0, b0 := e.l1(alice), e.l1(bob)
	out := e.trusted("transfer", "//AliceIncognito", "//BobIncognito", "3000000000")
	hash := e.invokeTx(out, alice)
	waitFor(t, "//Alice's parentchain nonce to advance", 30*time.Second, func() bool { return e.l1(alice).Nonce > a0.Nonce })
	if a := e.l1(alice); a.Nonce != a0.Nonce+1 || a.Free != minus(a0.Free, fee) {
		t.Errorf("//Alice on the parentchain: free %s nonce %d; want %s, %d (one fee)", a.Free, a.Nonce, minus(a0.Free, fee), a0.Nonce+1)
	}
	if b := e.l1(bob); b != b0 {
		t.Errorf("//Bob changed on the parentchain: %+v, was %+v", b, b0)
	}
	if hs := e.search(fmt.Sprintf("tx.signer='%s' AND tx.call='enclavebridge.invoke'", alice)); !hasHash(hs, hash) {
		t.Errorf("tx_search finds //Alice's invocations %v, without %s", hs, hash)
	}
	e.neverOnL1("//AliceIncognito", inc)
	if got := e.trusted("balance", "//AliceIncognito"); got != "7000000000" {
		t.Errorf("//AliceIncognito on the sidechain: %s, want 7000000000", got)
	}
	if got := e.trusted("balance", "//BobIncognito"); got != "3000000000" {
		t.Errorf("//BobIncognito on the sidechain: %s, want 3000000000", got)
	}
	if got := e.trusted("nonce", "//AliceIncognito"); got != "1" {
		t.Errorf("//AliceIncognito's trusted nonce %s, want 1: the trusted call is not its own", got)
	}

	// 2. -a //Bob: //Bob signs and pays; //Alice is untouched.
	a1, b1 := e.l1(alice), e.l1(bob)
	out = e.trusted("-a", "//Bob", "transfer", "//AliceIncognito", "//BobIncognito", "1000000000")
	hash = e.invokeTx(out, bob)
	waitFor(t, "//Bob's parentchain nonce to advance", 30*time.Second, func() bool { return e.l1(bob).Nonce > b1.Nonce })
	if b := e.l1(bob); b.Nonce != b1.Nonce+1 || b.Free != minus(b1.Free, fee) {
		t.Errorf("//Bob on the parentchain: free %s nonce %d; want %s, %d (one fee)", b.Free, b.Nonce, minus(b1.Free, fee), b1.Nonce+1)
	}
	if a := e.l1(alice); a != a1 {
		t.Errorf("//Alice changed on the parentchain with -a //Bob: %+v, was %+v", a, a1)
	}
	if hs := e.search(fmt.Sprintf("tx.signer='%s' AND tx.call='enclavebridge.invoke'", bob)); len(hs) != 1 || hs[0] != hash {
		t.Errorf("tx_search finds //Bob's invocations %v, want just %s", hs, hash)
	}
	e.neverOnL1("//AliceIncognito", inc)
	if got := e.trusted("balance", "//AliceIncognito"); got != "6000000000" {
		t.Errorf("//AliceIncognito on the sidechain: %s, want 6000000000", got)
	}
	if got := e.trusted("balance", "//BobIncognito"); got != "4000000000" {
		t.Errorf("//BobIncognito on the sidechain: %s, want 4000000000", got)
	}
	if got := e.trusted("nonce", "//AliceIncognito"); got != "2" {
		t.Errorf("//AliceIncognito's trusted nonce %s, want 2", got)
	}
}

func hasHash(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
