package e2e

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/modules/sidechain"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/types"
	sc "github.com/integritee-go/integritee/sidechain"
)

// bridgeEnv is a dev node with a typed client, for driving the teerex,
// enclave-bridge and sidechain modules with real signed transactions.
type bridgeEnv struct {
	t     *testing.T
	n     *nodeProc
	c     *client.Client
	codec *types.Codec
}

func newBridgeEnv(t *testing.T) *bridgeEnv {
	t.Helper()
	n := startDevNode(t, "")
	c, err := client.Dial(fmt.Sprintf("http://127.0.0.1:%d", n.rpc))
	if err != nil {
		t.Fatal(err)
	}
	return &bridgeEnv{t: t, n: n, c: c, codec: types.NewCodec()}
}

func mustDevPair(t *testing.T, uri string) *account.Pair {
	t.Helper()
	p, err := account.DevPair(uri)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mrenclaveOf is a made-up measurement named by s.
func mrenclaveOf(s string) attestation.MrEnclave {
	return attestation.MrEnclave(sha256.Sum256([]byte("e2e mrenclave " + s)))
}

func hash32(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// bind returns report data binding id in its first 32 bytes.
func bind(id account.ID) [64]byte {
	var rd [64]byte
	copy(rd[:], id[:])
	return rd
}

func (e *bridgeEnv) call(module, method string, args any) types.Call {
	e.t.Helper()
	c, err := types.NewCall(e.codec, module, method, args)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// submit signs call as p with its committed nonce, sends it and waits for
// its block; a refusal is a *client.TxError.
func (e *bridgeEnv) submit(p *account.Pair, call types.Call) (*client.Included, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.c.Submit(ctx, p, call)
}

func (e *bridgeEnv) mustSubmit(p *account.Pair, call types.Call) *client.Included {
	e.t.Helper()
	inc, err := e.submit(p, call)
	if err != nil {
		e.t.Fatalf("%s by %s: %v", call, p.ID(), err)
	}
	return inc
}

// submitAll signs each call with its signer's next nonce (counting the
// earlier calls of the batch), broadcasts them all and waits for every one,
// so that independent set-up calls share blocks.
func (e *bridgeEnv) submitAll(signers []*account.Pair, calls []types.Call) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nonces := map[account.ID]uint64{}
	var hashes [][32]byte
	for i, p := range signers {
		n, ok := nonces[p.ID()]
		if !ok {
			n = e.account(p.ID()).Nonce
		}
		nonces[p.ID()] = n + 1
		tx := e.codec.Sign(p, e.n.chain(e.t), n, calls[i])
		if err := e.c.Broadcast(ctx, tx); err != nil {
			e.t.Fatalf("%s by %s: %v", calls[i], p.ID(), err)
		}
		hashes = append(hashes, types.TxHash(tx))
	}
	for i, h := range hashes {
		if _, err := e.c.WaitTx(ctx, h); err != nil {
			e.t.Fatalf("%s by %s: %v", calls[i], signers[i].ID(), err)
		}
	}
}

func (e *bridgeEnv) account(id account.ID) balances.AccountInfo {
	e.t.Helper()
	var a balances.AccountInfo
	e.n.query(e.t, "/balances/account/"+id.Hex(), &a)
	return a
}

func (e *bridgeEnv) free(id account.ID) types.Balance { e.t.Helper(); return e.account(id).Free }

func (e *bridgeEnv) bonding(shard sc.ShardID) enclavebridge.BondingAccountInfo {
	e.t.Helper()
	var b enclavebridge.BondingAccountInfo
	e.n.query(e.t, "/enclavebridge/bonding_account/"+shard.Hex(), &b)
	return b
}

func (e *bridgeEnv) enclaves() []teerex.Enclave {
	e.t.Helper()
	var l []teerex.Enclave
	e.n.query(e.t, "/teerex/enclaves", &l)
	return l
}

func (e *bridgeEnv) flags() teerex.SecurityFlags {
	e.t.Helper()
	var f teerex.SecurityFlags
	e.n.query(e.t, "/teerex/security_flags", &f)
	return f
}

func (e *bridgeEnv) shardStatus(shard sc.ShardID) []enclavebridge.ShardSignerStatus {
	e.t.Helper()
	var s []enclavebridge.ShardSignerStatus
	e.n.query(e.t, "/enclavebridge/shard_status/"+shard.String(), &s)
	return s
}

func (e *bridgeEnv) latest(shard sc.ShardID) sidechain.LatestInfo {
	e.t.Helper()
	var l sidechain.LatestInfo
	e.n.query(e.t, "/sidechain/latest/"+shard.String(), &l)
	return l
}

// raw returns the answer to an abci_query as text: the JSON value, or the
// code and log of a failed query. For comparing state before and after.
func (e *bridgeEnv) raw(path string) string {
	e.t.Helper()
	res, rerr, err := rpcCall(e.n.rpc, "abci_query", map[string]any{"path": path})
	if err != nil || rerr != nil {
		e.t.Fatalf("abci_query %s: %v %v", path, err, rerr)
	}
	var q struct {
		Response struct {
			Code      int    `json:"code"`
			Codespace string `json:"codespace"`
			Log       string `json:"log"`
			Value     []byte `json:"value"`
		} `json:"response"`
	}
	if err := json.Unmarshal(res, &q); err != nil {
		e.t.Fatal(err)
	}
	if q.Response.Code != 0 {
		return fmt.Sprintf("error %s/%d: %s", q.Response.Codespace, q.Response.Code, q.Response.Log)
	}
	return string(q.Response.Value)
}

// registerCall registers p as an enclave running mr with a fresh sim quote.
func (e *bridgeEnv) registerCall(p *account.Pair, mr attestation.MrEnclave, url string) types.Call {
	return e.call(teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{
		Proof: sim.NewQuote(mr, false, bind(p.ID()), time.Now()), URL: url, Method: sim.Method})
}

func (e *bridgeEnv) transferCall(to account.ID, amount types.Balance) types.Call {
	return e.call(balances.ModuleName, "transfer", balances.TransferArgs{Dest: to, Amount: amount})
}

// metric returns the value of an unlabelled Prometheus metric of the node,
// or "" if it is not exported.
func (e *bridgeEnv) metric(name string) string {
	e.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", e.n.prom))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (e *bridgeEnv) waitMetric(name, want string) {
	e.t.Helper()
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got = e.metric(name); got == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("metric %s = %q, want %q", name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantTxErr fails unless err is a *client.TxError matching target, and
// returns it.
func wantTxErr(t *testing.T, what string, err error, target *types.Error) *client.TxError {
	t.Helper()
	var te *client.TxError
	if !errors.As(err, &te) {
		t.Errorf("%s: got %v, want the transaction refused with %s.%s", what, err, target.Module, target.Name)
		return nil
	}
	if !errors.Is(err, target) || !strings.Contains(te.Log, target.Module+"."+target.Name) {
		t.Errorf("%s: refused with %s/%d %q, want %s.%s", what, te.Codespace, te.Code, te.Log, target.Module, target.Name)
	}
	return te
}

func add(t *testing.T, a, b types.Balance) types.Balance {
	t.Helper()
	r, err := a.Add(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sub(t *testing.T, a, b types.Balance) types.Balance {
	t.Helper()
	r, ok := a.Sub(b)
	if !ok {
		t.Fatalf("%s - %s underflows", a, b)
	}
	return r
}

func hasEvent(inc *client.Included, typ string, attrs ...string) bool {
	for _, ev := range inc.Events {
		if ev.Type() != typ {
			continue
		}
		got := map[string]string{}
		for _, a := range ev.Attrs {
			got[a.Key] = a.Value
		}
		ok := true
		for i := 0; i+1 < len(attrs); i += 2 {
			if got[attrs[i]] != attrs[i+1] {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// TestBridgeEnclaveLifecycle registers an enclave, makes its shard known,
// shields funds into it, unshields some out (once only) and anchors
// sidechain blocks, with exact balances at every step.
func TestBridgeEnclaveLifecycle(t *testing.T) {
	t.Parallel()
	e := newBridgeEnv(t)
	alice := mustDevPair(t, "//Alice")
	bob := mustDevPair(t, "//Bob")
	ferdie := mustDevPair(t, "//Ferdie")
	enc := mustDevPair(t, "//EnclaveOne")
	mr := mrenclaveOf("one")
	shard := sc.ShardID(mr)
	fee := node.DevTxFee
	const url = "wss://enclave-one.example:2000"

	// Fund the enclave's account and register it.
	e.mustSubmit(alice, e.transferCall(enc.ID(), types.TEER(1)))
	if got := e.free(enc.ID()); got.Cmp(types.TEER(1)) != 0 {
		t.Fatalf("enclave account holds %s, want %s", got, types.TEER(1))
	}
	quoteTime := time.Now()
	inc := e.mustSubmit(enc, e.call(teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{
		Proof: sim.NewQuote(mr, false, bind(enc.ID()), quoteTime), URL: url, Method: sim.Method}))
	if !hasEvent(inc, "teerex.EnclaveRegistered", "signer", enc.ID().String(), "mr_enclave", mr.String(), "url", url) {
		t.Errorf("registration events %+v lack teerex.EnclaveRegistered", inc.Events)
	}
	var got teerex.Enclave
	e.n.query(t, "/teerex/enclave/"+enc.ID().String(), &got)
	want := teerex.Enclave{Signer: enc.ID(), MrEnclave: mr, Method: sim.Method, Timestamp: quoteTime.UnixMilli(), URL: url, RegisteredAt: inc.Height}
	if got != want {
		t.Errorf("registered enclave %+v, want %+v", got, want)
	}
	out := e.n.mustCLI(t, t.TempDir(), "list-workers")
	for _, w := range []string{"number of workers registered: 1", enc.ID().String(), mr.String(), url} {
		if !strings.Contains(out, w) {
			t.Errorf("list-workers output lacks %q:\n%s", w, out)
		}
	}
	e.waitMetric("integritee_node_enclaves", "1")

	// The shard (id = mrenclave) becomes known once its enclave confirms a
	// processed parentchain block.
	var shards []sc.ShardID
	e.n.query(t, "/enclavebridge/shards", &shards)
	if len(shards) != 0 {
		t.Fatalf("shards before any activity: %v", shards)
	}
	pHash := hash32("parentchain block")
	inc = e.mustSubmit(enc, e.call(enclavebridge.ModuleName, "confirm_processed_parentchain_block",
		enclavebridge.ConfirmProcessedParentchainBlockArgs{Shard: shard, BlockHash: pHash, BlockNumber: inc.Height, CallsRoot: hash32("calls")}))
	if !hasEvent(inc, "enclavebridge.ProcessedParentchainBlock", "shard", shard.String(), "signer", enc.ID().String(), "block_hash", "0x"+hex.EncodeToString(pHash[:])) {
		t.Errorf("confirmation events %+v lack enclavebridge.ProcessedParentchainBlock", inc.Events)
	}
	e.n.query(t, "/enclavebridge/shards", &shards)
	if len(shards) != 1 || shards[0] != shard {
		t.Fatalf("shards %v, want [%s]", shards, shard)
	}
	status := e.shardStatus(shard)
	if len(status) != 1 || status[0].Signer != enc.ID() || status[0].Fingerprint != mr || status[0].LastActivity != inc.Height {
		t.Fatalf("shard status %+v, want the enclave active at %d", status, inc.Height)
	}

	// //Bob shields funds into the shard's bonding account.
	const shieldAmt, unshieldAmt = 5_000_000, 2_000_000
	bond0 := e.bonding(shard)
	if bond0.Account != enclavebridge.BondingAccount(shard) || !bond0.Free.IsZero() {
		t.Fatalf("bonding account before shielding: %+v", bond0)
	}
	bob0 := e.free(bob.ID())
	var sum0 balances.Summary
	e.n.query(t, "/balances/summary", &sum0)
	beneficiary := []byte("opaque ciphertext: the sidechain beneficiary, encrypted to the shard")
	inc = e.mustSubmit(bob, e.call(enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{
		Shard: shard, EncryptedBeneficiary: beneficiary, Amount: types.NewBalance(shieldAmt)}))
	if !hasEvent(inc, "enclavebridge.ShieldFunds", "shard", shard.String(), "amount", fmt.Sprint(shieldAmt), "from", bob.ID().String(),
		"encrypted_beneficiary", "0x"+hex.EncodeToString(beneficiary)) {
		t.Errorf("shield events %+v lack enclavebridge.ShieldFunds", inc.Events)
	}
	bond1 := e.bonding(shard)
	if want := add(t, bond0.Free, types.NewBalance(shieldAmt)); bond1.Free.Cmp(want) != 0 {
		t.Errorf("bonding account holds %s after shielding, want %s", bond1.Free, want)
	}
	if want := sub(t, bob0, add(t, types.NewBalance(shieldAmt), fee)); e.free(bob.ID()).Cmp(want) != 0 {
		t.Errorf("//Bob has %s after shielding, want %s (before - amount - fee)", e.free(bob.ID()), want)
	}
	var sum1 balances.Summary
	e.n.query(t, "/balances/summary", &sum1)
	if burned := sub(t, sum0.TotalIssuance, sum1.TotalIssuance); burned.Cmp(fee) != 0 {
		t.Errorf("shielding changed the total issuance by %s, want only the fee %s burned", burned, fee)
	}

	// The enclave unshields part of it to //Ferdie.
	callHash := hash32("trusted call: unshield 2_000_000 to //Ferdie")
	hashHex := "0x" + hex.EncodeToString(callHash[:])
	ferdie0 := e.free(ferdie.ID())
	unshield := e.call(enclavebridge.ModuleName, "unshield_funds", enclavebridge.UnshieldFundsArgs{
		Shard: shard, Beneficiary: ferdie.ID(), Amount: types.NewBalance(unshieldAmt), CallHash: callHash})
	var ue enclavebridge.UnshieldInfo
	e.n.query(t, "/enclavebridge/unshield_executed/"+shard.String()+"/"+hashHex, &ue)
	if ue.Executed {
		t.Fatalf("unshielding executed before it was sent: %+v", ue)
	}
	inc = e.mustSubmit(enc, unshield)
	if !hasEvent(inc, "enclavebridge.UnshieldedFunds", "beneficiary", ferdie.ID().String(), "amount", fmt.Sprint(unshieldAmt), "call_hash", hashHex) {
		t.Errorf("unshield events %+v lack enclavebridge.UnshieldedFunds", inc.Events)
	}
	if want := add(t, ferdie0, types.NewBalance(unshieldAmt)); e.free(ferdie.ID()).Cmp(want) != 0 {
		t.Errorf("//Ferdie has %s after unshielding, want %s", e.free(ferdie.ID()), want)
	}
	bond2 := e.bonding(shard)
	if want := sub(t, bond1.Free, types.NewBalance(unshieldAmt)); bond2.Free.Cmp(want) != 0 {
		t.Errorf("bonding account holds %s after unshielding, want %s", bond2.Free, want)
	}
	e.n.query(t, "/enclavebridge/unshield_executed/"+shard.Hex()+"/"+hashHex, &ue)
	if !ue.Executed || ue.Height != inc.Height {
		t.Errorf("unshield_executed %+v, want executed at %d", ue, inc.Height)
	}

	// The same unshielding again is refused and moves nothing.
	enc0 := e.account(enc.ID())
	_, err := e.submit(enc, unshield)
	te := wantTxErr(t, "repeated unshield", err, enclavebridge.ErrUnshieldAlreadyProcessed)
	if got := e.free(ferdie.ID()); got.Cmp(add(t, ferdie0, types.NewBalance(unshieldAmt))) != 0 {
		t.Errorf("//Ferdie has %s after the repeated unshield", got)
	}
	if got := e.bonding(shard); got.Free.Cmp(bond2.Free) != 0 {
		t.Errorf("bonding account holds %s after the repeated unshield, want %s", got.Free, bond2.Free)
	}
	if te != nil && te.Stage == "check" {
		if got := e.account(enc.ID()); got != enc0 {
			t.Errorf("refused at check, yet the enclave's account changed: %+v -> %+v", enc0, got)
		}
	}

	// The enclave, the shard's primary, anchors sidechain blocks.
	confirm := func(anc *sidechain.BlockConfirmation, num uint64, h [32]byte) types.Call {
		return e.call(sidechain.ModuleName, "confirm_imported_sidechain_block", sidechain.ConfirmImportedSidechainBlockArgs{
			Shard: shard, Ancestor: anc, Candidate: sidechain.BlockConfirmation{Number: num, Hash: h}})
	}
	b1 := sidechain.BlockConfirmation{Number: 1, Hash: hash32("sidechain block 1")}
	b5 := sidechain.BlockConfirmation{Number: 5, Hash: hash32("sidechain block 5")}
	if r := e.raw("/sidechain/latest/" + shard.String()); !strings.Contains(r, "query.NotFound") && !strings.Contains(r, "error query/3") {
		t.Errorf("latest before any confirmation: %s", r)
	}
	inc = e.mustSubmit(enc, confirm(nil, b1.Number, b1.Hash))
	if !hasEvent(inc, "sidechain.FinalizedSidechainBlock", "block_number", "1", "by", enc.ID().String()) {
		t.Errorf("sidechain events %+v lack sidechain.FinalizedSidechainBlock", inc.Events)
	}
	if l := e.latest(shard); l.Shard != shard || l.Number != 1 || l.Hash != "0x"+hex.EncodeToString(b1.Hash[:]) {
		t.Errorf("latest %+v, want block 1", l)
	}
	e.mustSubmit(enc, confirm(&b1, b5.Number, b5.Hash))
	wantLatest := sidechain.LatestInfo{Shard: shard, Number: 5, Hash: "0x" + hex.EncodeToString(b5.Hash[:])}
	if l := e.latest(shard); l != wantLatest {
		t.Errorf("latest %+v, want %+v", l, wantLatest)
	}
	_, err = e.submit(enc, confirm(&b1, 6, hash32("sidechain block 6 on a stale ancestor")))
	wantTxErr(t, "stale ancestor", err, sidechain.ErrAncestorMismatch)
	wrongHash := sidechain.BlockConfirmation{Number: 5, Hash: hash32("another block 5")}
	_, err = e.submit(enc, confirm(&wrongHash, 6, hash32("sidechain block 6 on a forged ancestor")))
	wantTxErr(t, "ancestor of the wrong hash", err, sidechain.ErrAncestorMismatch)
	_, err = e.submit(enc, confirm(nil, 6, hash32("sidechain block 6 without ancestor")))
	wantTxErr(t, "no ancestor after a confirmation", err, sidechain.ErrAncestorMismatch)
	_, err = e.submit(enc, confirm(&b5, 5, hash32("sidechain block 5 again")))
	wantTxErr(t, "candidate not above its ancestor", err, sidechain.ErrNotDescendant)
	if l := e.latest(shard); l != wantLatest {
		t.Errorf("refused confirmations changed latest: %+v, want %+v", l, wantLatest)
	}
}

// bridgeCase is one call that must be refused with a named error.
type bridgeCase struct {
	name   string
	signer *account.Pair
	call   types.Call
	want   *types.Error
	// raw sends the transaction with the harness's broadcast_tx_sync
	// instead of the client.
	raw bool
}

// TestBridgeRefusesBadInput sends forged and unauthorised calls to teerex,
// the enclave bridge, the sidechain module and sudo; each must be refused
// with its named error and leave the state unchanged.
func TestBridgeRefusesBadInput(t *testing.T) {
	t.Parallel()
	e := newBridgeEnv(t)
	alice := mustDevPair(t, "//Alice")
	bob := mustDevPair(t, "//Bob")
	ferdie := mustDevPair(t, "//Ferdie")
	enc1 := mustDevPair(t, "//EnclaveOne")    // runs mr, the shard's primary
	enc2 := mustDevPair(t, "//EnclaveTwo")    // runs mr, second in the shard's status
	other := mustDevPair(t, "//EnclaveOther") // runs mrOther
	mallory := mustDevPair(t, "//Mallory")    // funded, never registered
	mr, mrOther := mrenclaveOf("one"), mrenclaveOf("other")
	shard := sc.ShardID(mr)
	unknown := sc.ShardID(hash32("a shard nobody uses"))

	// Set-up: fund, register three enclaves, make the shard known with
	// enc1 then enc2, and shield something into it.
	e.submitAll([]*account.Pair{alice, alice, alice, alice}, []types.Call{
		e.transferCall(enc1.ID(), types.TEER(1)), e.transferCall(enc2.ID(), types.TEER(1)),
		e.transferCall(other.ID(), types.TEER(1)), e.transferCall(mallory.ID(), types.TEER(1))})
	e.submitAll([]*account.Pair{enc1, enc2, other}, []types.Call{
		e.registerCall(enc1, mr, "wss://one"), e.registerCall(enc2, mr, "wss://two"), e.registerCall(other, mrOther, "wss://other")})
	processed := func(shard sc.ShardID) types.Call {
		return e.call(enclavebridge.ModuleName, "confirm_processed_parentchain_block",
			enclavebridge.ConfirmProcessedParentchainBlockArgs{Shard: shard, BlockHash: hash32("p"), BlockNumber: 1})
	}
	e.mustSubmit(enc1, processed(shard))
	e.mustSubmit(enc2, processed(shard))
	e.mustSubmit(bob, e.call(enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{
		Shard: shard, EncryptedBeneficiary: []byte{1, 2, 3}, Amount: types.NewBalance(1_000_000)}))
	if st := e.shardStatus(shard); len(st) != 2 || st[0].Signer != enc1.ID() || st[1].Signer != enc2.ID() {
		t.Fatalf("shard status %+v, want enc1 then enc2", st)
	}
	e.waitMetric("integritee_node_enclaves", "3")

	pairs := []*account.Pair{alice, bob, ferdie, enc1, enc2, other, mallory}
	state := func() map[string]string {
		s := map[string]string{}
		for _, p := range []string{
			"/teerex/enclaves", "/teerex/security_flags", "/teerex/params",
			"/enclavebridge/shards",
			"/enclavebridge/shard_status/" + shard.String(),
			"/enclavebridge/shard_config/" + shard.String(),
			"/enclavebridge/bonding_account/" + shard.String(),
			"/enclavebridge/bonding_account/" + unknown.String(),
			"/enclavebridge/shard_status/" + unknown.String(),
			"/sidechain/latest/" + shard.String(),
			"/sidechain/latest/" + unknown.String(),
			"/sudo/key",
			"/balances/summary",
		} {
			s[p] = e.raw(p)
		}
		for _, p := range pairs {
			s[p.ID().Hex()] = e.raw("/balances/account/" + p.ID().Hex())
		}
		return s
	}

	quote := func(signer account.ID, mr attestation.MrEnclave, debug bool, at time.Time) []byte {
		return sim.NewQuote(mr, debug, bind(signer), at)
	}
	register := func(proof []byte, url string) types.Call {
		return e.call(teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{Proof: proof, URL: url, Method: sim.Method})
	}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	forged := sim.Quote{Version: sim.Version, MrEnclave: mr, ReportData: bind(mallory.ID()), Timestamp: time.Now().UnixMilli()}
	forged.Signature = ed25519.Sign(otherKey, forged.SigningBytes())
	bigProof := make([]byte, teerex.MaxProofSize+1)
	copy(bigProof, quote(mallory.ID(), mr, false, time.Now()))
	unshield := func(shard sc.ShardID, amount uint64, h string) types.Call {
		return e.call(enclavebridge.ModuleName, "unshield_funds", enclavebridge.UnshieldFundsArgs{
			Shard: shard, Beneficiary: ferdie.ID(), Amount: types.NewBalance(amount), CallHash: hash32(h)})
	}
	sidechainConfirm := e.call(sidechain.ModuleName, "confirm_imported_sidechain_block", sidechain.ConfirmImportedSidechainBlockArgs{
		Shard: shard, Candidate: sidechain.BlockConfirmation{Number: 1, Hash: hash32("s1")}})
	setFlags := func(f teerex.SecurityFlags) types.Call {
		return e.call(teerex.ModuleName, "set_security_flags", teerex.SetSecurityFlagsArgs{Flags: f})
	}
	sudoCall := func(c types.Call) types.Call {
		return e.call(sudo.ModuleName, "sudo", sudo.SudoArgs{Call: c})
	}
	unregister := func(id account.ID) types.Call {
		return e.call(teerex.ModuleName, "unregister_enclave", teerex.UnregisterEnclaveArgs{Signer: id})
	}
	allOff := teerex.SecurityFlags{}

	run := func(cases []bridgeCase) {
		t.Helper()
		for _, c := range cases {
			before := state()
			stage := ""
			if c.raw {
				nonce := e.account(c.signer.ID()).Nonce
				r := broadcast(t, e.n, e.codec.Sign(c.signer, e.n.chain(t), nonce, c.call))
				if r.Code == 0 || !strings.Contains(r.Log, c.want.Module+"."+c.want.Name) {
					t.Errorf("%s: code %d log %q, want refused with %s.%s", c.name, r.Code, r.Log, c.want.Module, c.want.Name)
				}
				stage = "check"
			} else {
				_, err := e.submit(c.signer, c.call)
				if te := wantTxErr(t, c.name, err, c.want); te != nil {
					stage = te.Stage
				}
			}
			after := state()
			signer := c.signer.ID().Hex()
			if stage == "block" {
				// Only the fee is charged and the nonce used.
				var a, b balances.AccountInfo
				json.Unmarshal([]byte(before[signer]), &a)
				json.Unmarshal([]byte(after[signer]), &b)
				if want := sub(t, a.Free, node.DevTxFee); b.Free.Cmp(want) != 0 || b.Nonce != a.Nonce+1 {
					t.Errorf("%s: failed in block; signer %+v -> %+v, want only the fee charged", c.name, a, b)
				}
				delete(before, signer)
				delete(after, signer)
				delete(before, "/balances/summary")
				delete(after, "/balances/summary")
			}
			for k, v := range before {
				if after[k] != v {
					t.Errorf("%s (refused at %s) changed %s:\nbefore %s\nafter  %s", c.name, stage, k, v, after[k])
				}
			}
		}
	}

	now := time.Now()
	run([]bridgeCase{
		// teerex.register_enclave
		{"quote signed by another key", mallory, register(forged.Encode(), "wss://m"), teerex.ErrBadProof, false},
		{"garbage quote", mallory, register([]byte("not a quote"), "wss://m"), teerex.ErrBadProof, false},
		{"report data bound to another account", mallory, register(quote(bob.ID(), mr, false, now), "wss://m"), teerex.ErrReportDataMismatch, false},
		{"enclave re-registering with a quote bound to another", enc1, register(quote(mallory.ID(), mrOther, false, now), "wss://evil"), teerex.ErrReportDataMismatch, false},
		{"quote an hour old", mallory, register(quote(mallory.ID(), mr, false, now.Add(-time.Hour)), "wss://m"), teerex.ErrQuoteExpired, false},
		{"quote an hour ahead", mallory, register(quote(mallory.ID(), mr, false, now.Add(time.Hour)), "wss://m"), teerex.ErrQuoteFromFuture, false},
		{"URL over 256 bytes", mallory, register(quote(mallory.ID(), mr, false, now), "wss://"+strings.Repeat("u", teerex.MaxURLLen)), teerex.ErrURLTooLong, false},
		{"empty URL", mallory, register(quote(mallory.ID(), mr, false, now), ""), teerex.ErrEmptyURL, false},
		{"proof over 16 KiB", mallory, register(bigProof, "wss://m"), teerex.ErrProofTooLarge, false},
		{"proof over 16 KiB, raw JSON-RPC", mallory, register(bigProof, "wss://m"), teerex.ErrProofTooLarge, true},
		{"unknown attestation method", mallory, e.call(teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{
			Proof: quote(mallory.ID(), mr, false, now), URL: "wss://m", Method: "tdx"}), teerex.ErrUnknownAttestationMethod, false},

		// teerex.unregister_enclave
		{"unregister someone else's fresh enclave", bob, unregister(enc1.ID()), teerex.ErrUnregisterTooEarly, false},
		{"enclave unregistering another enclave", other, unregister(enc2.ID()), teerex.ErrUnregisterTooEarly, false},
		{"unregister an unknown signer", bob, unregister(mallory.ID()), teerex.ErrEnclaveNotRegistered, false},

		// enclavebridge
		{"shield to an unknown shard", bob, e.call(enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{
			Shard: unknown, EncryptedBeneficiary: []byte{1}, Amount: types.NewBalance(1000)}), enclavebridge.ErrUnknownShard, false},
		{"invoke an unknown shard", bob, e.call(enclavebridge.ModuleName, "invoke", enclavebridge.InvokeArgs{
			Shard: unknown, Ciphertext: []byte{1}}), enclavebridge.ErrUnknownShard, false},
		{"shield zero", bob, e.call(enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{
			Shard: shard, EncryptedBeneficiary: []byte{1}, Amount: types.NewBalance(0)}), enclavebridge.ErrZeroAmount, false},
		{"shield without beneficiary", bob, e.call(enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{
			Shard: shard, Amount: types.NewBalance(1)}), enclavebridge.ErrEmptyPayload, false},
		{"shield more than the sender holds", bob, e.call(enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{
			Shard: shard, EncryptedBeneficiary: []byte{1}, Amount: types.TEER(5000)}), balances.ErrInsufficientBalance, false},
		{"unshield by an unregistered account", mallory, unshield(shard, 1000, "u1"), enclavebridge.ErrEnclaveNotRegistered, false},
		{"unshield by an enclave of another mrenclave", other, unshield(shard, 1000, "u2"), enclavebridge.ErrNotAuthorised, false},
		{"unshield more than the bonding account holds", enc1, unshield(shard, 1_000_001, "u3"), enclavebridge.ErrInsufficientBonding, false},
		{"unshield from an unknown shard", enc1, unshield(unknown, 1, "u4"), enclavebridge.ErrNotAuthorised, false},
		{"confirm a processed block for a shard of another mrenclave", other, processed(shard), enclavebridge.ErrNotAuthorised, false},
		{"confirm a processed block unregistered", mallory, processed(shard), enclavebridge.ErrEnclaveNotRegistered, false},

		// sidechain
		{"sidechain confirmation by the second enclave", enc2, sidechainConfirm, sidechain.ErrNotPrimary, false},
		{"sidechain confirmation by an enclave of another mrenclave", other, sidechainConfirm, sidechain.ErrNotPrimary, false},
		{"sidechain confirmation by an unregistered account", mallory, sidechainConfirm, sidechain.ErrNotPrimary, false},
		{"sidechain confirmation with an ancestor before any", enc1, e.call(sidechain.ModuleName, "confirm_imported_sidechain_block", sidechain.ConfirmImportedSidechainBlockArgs{
			Shard: shard, Ancestor: &sidechain.BlockConfirmation{Number: 1}, Candidate: sidechain.BlockConfirmation{Number: 2}}), sidechain.ErrUnexpectedAncestor, false},

		// sudo and root calls
		{"set_security_flags without sudo", alice, setFlags(allOff), types.ErrBadOrigin, false},
		{"sudo by a non-sudo account", bob, sudoCall(setFlags(allOff)), sudo.ErrRequireSudo, false},
		{"sudo by an enclave", enc1, sudoCall(setFlags(allOff)), sudo.ErrRequireSudo, false},
	})

	// The sudo key forbids debug enclaves: a debug quote is refused.
	noDebug := teerex.SecurityFlags{AllowSkip: true, AllowSim: true}
	inc := e.mustSubmit(alice, sudoCall(setFlags(noDebug)))
	if !hasEvent(inc, "teerex.SecurityFlagsSet", "allow_debug", "false", "allow_sim", "true") || !hasEvent(inc, "sudo.Sudid") {
		t.Errorf("sudo set_security_flags events %+v", inc.Events)
	}
	if f := e.flags(); f != noDebug {
		t.Fatalf("flags %+v after sudo, want %+v", f, noDebug)
	}
	run([]bridgeCase{
		{"debug quote while debug is forbidden", mallory, register(quote(mallory.ID(), mr, true, time.Now()), "wss://m"), teerex.ErrDebugNotAllowed, false},
		{"enclave renewing as debug while debug is forbidden", enc1, register(quote(enc1.ID(), mr, true, time.Now()), "wss://one"), teerex.ErrDebugNotAllowed, false},
	})

	// Then simulation quotes: a sim quote is refused.
	noSim := teerex.SecurityFlags{AllowDebug: true}
	e.mustSubmit(alice, sudoCall(setFlags(noSim)))
	if f := e.flags(); f != noSim {
		t.Fatalf("flags %+v after sudo, want %+v", f, noSim)
	}
	run([]bridgeCase{
		{"sim quote while sim is forbidden", mallory, register(quote(mallory.ID(), mr, false, time.Now()), "wss://m"), teerex.ErrMethodNotAllowed, false},
		{"enclave renewing with sim while sim is forbidden", enc1, register(quote(enc1.ID(), mr, false, time.Now()), "wss://one"), teerex.ErrMethodNotAllowed, false},
		{"skip while skip is forbidden", mallory, e.call(teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{
			Proof: mr[:], URL: "wss://m", Method: teerex.MethodSkip}), teerex.ErrSkipNotAllowed, false},
	})
	if got := e.enclaves(); len(got) != 3 {
		t.Errorf("%d enclaves registered at the end, want 3: %+v", len(got), got)
	}
	e.waitMetric("integritee_node_enclaves", "3")
}

// TestBridgeEnclaveCountMetric checks that the node's integritee_node_enclaves
// gauge follows registrations and unregistrations.
func TestBridgeEnclaveCountMetric(t *testing.T) {
	t.Parallel()
	e := newBridgeEnv(t)
	alice := mustDevPair(t, "//Alice")
	a := mustDevPair(t, "//MetricEnclaveA")
	b := mustDevPair(t, "//MetricEnclaveB")
	e.waitMetric("integritee_node_enclaves", "0")

	e.submitAll([]*account.Pair{alice, alice}, []types.Call{e.transferCall(a.ID(), types.TEER(1)), e.transferCall(b.ID(), types.TEER(1))})
	e.submitAll([]*account.Pair{a, b}, []types.Call{e.registerCall(a, mrenclaveOf("a"), "wss://a"), e.registerCall(b, mrenclaveOf("b"), "wss://b")})
	e.waitMetric("integritee_node_enclaves", "2")

	// Renewal does not count twice.
	e.mustSubmit(a, e.registerCall(a, mrenclaveOf("a2"), "wss://a2"))
	e.waitMetric("integritee_node_enclaves", "2")
	var en teerex.Enclave
	e.n.query(t, "/teerex/enclave/"+a.ID().Hex(), &en)
	if en.MrEnclave != mrenclaveOf("a2") || en.URL != "wss://a2" {
		t.Errorf("renewed enclave %+v", en)
	}

	// An enclave may unregister itself at any time.
	inc := e.mustSubmit(b, e.call(teerex.ModuleName, "unregister_enclave", teerex.UnregisterEnclaveArgs{Signer: b.ID()}))
	if !hasEvent(inc, "teerex.EnclaveUnregistered", "signer", b.ID().String(), "by", b.ID().String()) {
		t.Errorf("unregister events %+v", inc.Events)
	}
	e.waitMetric("integritee_node_enclaves", "1")
	if l := e.enclaves(); len(l) != 1 || l[0].Signer != a.ID() {
		t.Errorf("enclaves after unregistering b: %+v", l)
	}
	if r := e.raw("/teerex/enclave/" + b.ID().Hex()); !strings.Contains(r, "NotFound") && !strings.Contains(r, "query/3") {
		t.Errorf("unregistered enclave still answers: %s", r)
	}
}
