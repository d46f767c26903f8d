package e2e

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/shielding"
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/pool"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	scmodule "github.com/integritee-go/integritee/parentchain/modules/sidechain"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// The bad-input catalogue: one dev node and one validateer, started once,
// receive every kind of bad input their users and peers can send — on the
// trusted RPC (JSON-RPC framing, parameters, ciphertexts, signatures,
// replays, getters, forwarded batches, size limits), sidechain block import,
// the untrusted RPC, the CLI, parentchain transactions, the mutual remote
// attestation port and the health and metrics ports. Each case names the
// error it must get; after each one the test checks that nothing changed
// (parentchain balances, nonces, registry and shard configuration; the
// sidechain head, state hash, balances, nonces and pool) except through the
// test's own valid operations, and that both programs still serve.

// catCase is one entry of the catalogue.
type catCase struct {
	area, name string

	// The input: exactly one of these.
	trusted   func(*catEnv) string   // a text frame for the trusted port
	untrusted string                 // a text frame for the untrusted port
	cli       func(*catEnv) []string // integritee-cli arguments (after -p and -P)
	tx        func(*catEnv) []byte   // a transaction for broadcast_tx_sync
	http      func(*catEnv) (port int, request string)
	probe     func(*catEnv) error // anything else: an error if the product misbehaves

	want catWant

	// effect applies the case's own valid operations to the state expected
	// after it (nil: nothing may change).
	effect func(e *catEnv, want *catState)
}

// catWant is the answer a case must get.
type catWant struct {
	// code is the JSON-RPC error code; 0 means a result.
	code int
	// err is the named error: the JSON-RPC error's data {module, name,
	// code}, or a refused transaction's codespace, code and log.
	err *types.Error
	// msg is a fragment of the JSON-RPC error message, the CLI's stderr or
	// the HTTP status line.
	msg string
	// id is the JSON-RPC id the answer must carry ("" : the request's).
	id string
	// result is the exact JSON result (code 0), raw the exact answer.
	result, raw string
	// status is the HTTP status.
	status int
}

// catEnv is the network the catalogue runs against.
type catEnv struct {
	t     *testing.T
	n     *nodeProc
	w     *workerProc
	dir   string // the CLI's working directory (keystores)
	pc    *client.Client
	codec *types.Codec
	chain types.Chain
	sc    *sidechain.Codec

	tc        *rpcclient.Client // checks and the test's own valid operations
	trustedWS *catConn          // the cases' raw trusted connection, kept open across cases
	untrWS    *catConn          // the cases' raw untrusted connection

	shard  sidechain.ShardID
	shardS string
	mr     attestation.MrEnclave
	pub    []byte // the shard's shielding key

	// parentchain accounts
	alice, bob, ferdie, mallory, payee *account.Pair
	// sidechain accounts and the stranger who signs forged blocks
	aliceI, bobI, stranger *account.Pair
	mrOther                attestation.MrEnclave // mallory's registered measurement

	nextID int
	lastID string

	// made by the cases, for the replays that follow them
	goodTransfer []byte // plain operation, executed
	unshield     []byte // plain operation, executed
}

// catState is what bad input must not change.
type catState struct {
	accounts map[string]balances.AccountInfo // parentchain, by name
	bonding  types.Balance
	registry map[string]string // raw answers of the registry and configuration queries
	height   int64

	head     trustedrpc.Header
	free     map[string]types.Balance // sidechain, by name
	nonce    map[string]uint64
	issuance string
	pending  int
	forks    float64

	// headMoves: (in an expected state) the case's own operations extend
	// the sidechain.
	headMoves bool
}

func (s catState) clone() catState {
	c := s
	c.accounts, c.registry, c.free, c.nonce = map[string]balances.AccountInfo{}, map[string]string{}, map[string]types.Balance{}, map[string]uint64{}
	for k, v := range s.accounts {
		c.accounts[k] = v
	}
	for k, v := range s.registry {
		c.registry[k] = v
	}
	for k, v := range s.free {
		c.free[k] = v
	}
	for k, v := range s.nonce {
		c.nonce[k] = v
	}
	c.headMoves = false
	return c
}

// TestBadInputCatalogue runs the catalogue (see catCases).
func TestBadInputCatalogue(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts a dev node and a validateer")
	}
	began := time.Now()
	e := newCatEnv(t)
	t.Logf("set-up took %s", time.Since(began).Round(time.Millisecond))

	cases := catCases()
	perArea := map[string]int{}
	var order []string
	for _, c := range cases {
		if perArea[c.area] == 0 {
			order = append(order, c.area)
		}
		perArea[c.area]++
	}
	var summary []string
	for _, a := range order {
		summary = append(summary, fmt.Sprintf("%s %d", a, perArea[a]))
	}
	t.Logf("%d cases: %s", len(cases), strings.Join(summary, ", "))
	if len(cases) < 60 {
		t.Fatalf("the catalogue has %d cases, want at least 60", len(cases))
	}

	base, err := e.snapshot()
	if err != nil {
		t.Fatalf("state before the catalogue: %v", err)
	}
	groupHeight, area := base.height, ""
	for i, c := range cases {
		if c.area != area {
			// The parentchain goes on producing blocks across each group.
			if area != "" {
				if err := e.waitHeightAbove(groupHeight); err != nil {
					t.Errorf("after the %s cases: %v", area, err)
				}
				groupHeight = e.n.height()
			}
			area = c.area
		}
		label := fmt.Sprintf("#%d %s: %s", i+1, c.area, c.name)
		start := time.Now()
		caseErr := e.run(c)
		if d := time.Since(start); d > 2*time.Second {
			t.Logf("%s took %s", label, d.Round(time.Millisecond))
		}
		after, snapErr := e.snapshot()
		if snapErr != nil {
			t.Fatalf("%s: the network no longer answers: %v", label, snapErr)
		}
		want := base.clone()
		if c.effect != nil {
			c.effect(e, &want)
		}
		stateErr := compareState(want, base, after)
		base = after
		for _, err := range []error{caseErr, stateErr} {
			if err != nil {
				t.Errorf("%s: %v", label, err)
			}
		}
	}
	if err := e.waitHeightAbove(groupHeight); err != nil {
		t.Errorf("after the %s cases: %v", area, err)
	}
	if isDone(e.w.proc) || isDone(e.n.proc) {
		t.Fatal("a process exited during the catalogue")
	}
	t.Logf("catalogue took %s", time.Since(began).Round(time.Millisecond))
}

// newCatEnv starts the node and the validateer and makes the state the
// cases start from: //Mallory registered as an enclave of other code, and
// funds shielded to //AliceIncognito.
func newCatEnv(t *testing.T) *catEnv {
	t.Helper()
	n := startDevNode(t, "")
	w := startWorker(t, n, "")
	e := &catEnv{t: t, n: n, w: w, dir: t.TempDir(), codec: types.NewCodec(), sc: sidechain.NewCodec()}
	var err error
	if e.pc, err = client.Dial(fmt.Sprintf("http://127.0.0.1:%d", n.rpc)); err != nil {
		t.Fatal(err)
	}
	e.chain = n.chain(t)
	e.alice, e.bob, e.ferdie = mustDevPair(t, "//Alice"), mustDevPair(t, "//Bob"), mustDevPair(t, "//Ferdie")
	e.mallory, e.payee = mustDevPair(t, "//CatalogueMallory"), mustDevPair(t, "//CataloguePayee")
	e.aliceI, e.bobI = mustDevPair(t, "//AliceIncognito"), mustDevPair(t, "//BobIncognito")
	e.stranger = mustDevPair(t, "//CatalogueStranger")
	e.mrOther = mrenclaveOf("catalogue other code")

	e.tc = dialWorker(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e.shardS, err = e.tc.String(ctx, "author_getShard"); err != nil {
		t.Fatal(err)
	}
	if e.shard, err = sidechain.ParseShardID(e.shardS); err != nil {
		t.Fatal(err)
	}
	e.mr = attestation.MrEnclave(e.shard)
	if e.pub, err = e.tc.ShieldingKey(ctx); err != nil {
		t.Fatal(err)
	}

	// //CatalogueMallory: funded, and registered as an enclave of other code.
	if _, err := e.pc.Submit(ctx, e.alice, e.call(balances.ModuleName, "transfer", balances.TransferArgs{Dest: e.mallory.ID(), Amount: types.TEER(1)})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pc.Submit(ctx, e.mallory, e.call(teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{
		Proof: sim.NewQuote(e.mrOther, false, bind(e.mallory.ID()), time.Now()), URL: "wss://mallory.example", Method: sim.Method})); err != nil {
		t.Fatal(err)
	}
	// Funds on the sidechain, shielded (so that an unshielding can pay out).
	if out := w.mustT(t, e.dir, "--insecure", "shield-funds", "//Alice", "//AliceIncognito", "1000000000", e.shardS); out == "" {
		t.Fatal("shield-funds printed nothing")
	}
	waitFor(t, "the shielded funds on the sidechain", 30*time.Second, func() bool {
		v, err := e.getter(e.aliceI, trusted.Getter{FreeBalance: ptr(e.aliceI.ID())})
		return err == nil && v == "1000000000"
	})

	e.trustedWS = e.mustDial(fmt.Sprintf("wss://127.0.0.1:%d", w.trusted))
	e.untrWS = e.mustDial(fmt.Sprintf("ws://127.0.0.1:%d", w.untrusted))
	return e
}

// ---------------------------------------------------------------------------
// The cases.

func catCases() []catCase {
	var cs []catCase
	cs = append(cs, catFramingCases()...)
	cs = append(cs, catTrustedCases()...)
	cs = append(cs, catImportCases()...)
	cs = append(cs, catUntrustedCases()...)
	cs = append(cs, catCLICases()...)
	cs = append(cs, catTxCases()...)
	cs = append(cs, catMuRaCases()...)
	cs = append(cs, catHTTPCases()...)
	return cs
}

func catRaw(s string) func(*catEnv) string { return func(*catEnv) string { return s } }

// catFramingCases: JSON-RPC 2.0 framing on the trusted port, answered with
// the specification's codes.
func catFramingCases() []catCase {
	const a = "trusted: framing"
	const parse, invalid, notFound, params = -32700, -32600, -32601, -32602
	return []catCase{
		{area: a, name: "truncated JSON", trusted: catRaw(`{"jsonrpc":"2.0","id":1,"method":`),
			want: catWant{code: parse, msg: "Parse error", id: "null"}},
		{area: a, name: "not JSON at all", trusted: catRaw(`hello validateer`),
			want: catWant{code: parse, msg: "Parse error", id: "null"}},
		{area: a, name: "JSON-RPC 1.0", trusted: catRaw(`{"jsonrpc":"1.0","id":1,"method":"system_version"}`),
			want: catWant{code: invalid, msg: `"jsonrpc" must be "2.0"`, id: "1"}},
		{area: a, name: "no jsonrpc member", trusted: catRaw(`{"id":2,"method":"system_version"}`),
			want: catWant{code: invalid, msg: `"jsonrpc" must be "2.0"`, id: "2"}},
		{area: a, name: "method a number", trusted: catRaw(`{"jsonrpc":"2.0","id":3,"method":7}`),
			want: catWant{code: invalid, msg: `"method" must be a non-empty string`, id: "3"}},
		{area: a, name: "method empty", trusted: catRaw(`{"jsonrpc":"2.0","id":4,"method":""}`),
			want: catWant{code: invalid, msg: `"method" must be a non-empty string`, id: "4"}},
		{area: a, name: "id an object", trusted: catRaw(`{"jsonrpc":"2.0","id":{"a":1},"method":"system_version"}`),
			want: catWant{code: invalid, msg: `"id" must be a string, a number or null`, id: "null"}},
		{area: a, name: "params a string", trusted: catRaw(`{"jsonrpc":"2.0","id":5,"method":"system_version","params":"x"}`),
			want: catWant{code: invalid, msg: `"params" must be an array or an object`, id: "5"}},
		{area: a, name: "a JSON string, not an object", trusted: catRaw(`"system_version"`),
			want: catWant{code: invalid, msg: "not a JSON object", id: "null"}},
		{area: a, name: "an empty batch", trusted: catRaw(`[]`),
			want: catWant{code: invalid, msg: "an empty batch", id: "null"}},
		{area: a, name: "a batch of one request is answered as a batch", trusted: catRaw(`[{"jsonrpc":"2.0","id":1,"method":"system_version"}]`),
			want: catWant{raw: `[{"jsonrpc":"2.0","result":"0.1.0","id":1}]`}},
		{area: a, name: "a binary frame", probe: func(e *catEnv) error {
			b, err := e.trustedWS.roundTrip(ws.BinaryMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"system_version"}`))
			if err != nil {
				return err
			}
			return checkRPC(b, catWant{code: invalid, msg: "messages must be text frames", id: "null"}, "")
		}},
		{area: a, name: "unknown method", trusted: func(e *catEnv) string { return e.req("author_stealFunds") },
			want: catWant{code: notFound, msg: "Method not found: author_stealFunds"}},
		{area: a, name: "an untrusted-port method on the trusted port", trusted: func(e *catEnv) string { return e.req("sidechain_fetchBlocksFromPeer", e.shardS, 1, 1) },
			want: catWant{code: notFound, msg: "Method not found: sidechain_fetchBlocksFromPeer"}},
		{area: a, name: "unknown method (raw)", trusted: catRaw(`{"jsonrpc":"2.0","id":1,"method":"no_such_method"}`),
			want: catWant{code: notFound, msg: "Method not found: no_such_method", id: "1"}},
		{area: a, name: "author_submitExtrinsic without a params member", trusted: catRaw(`{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic"}`),
			want: catWant{code: params, msg: "author_submitExtrinsic takes 2 params, got 0", id: "1"}},
		{area: a, name: "author_submitExtrinsic with empty params", trusted: func(e *catEnv) string { return e.req("author_submitExtrinsic") },
			want: catWant{code: params, msg: "author_submitExtrinsic takes 2 params, got 0"}},
		{area: a, name: "author_submitExtrinsic with one param", trusted: func(e *catEnv) string { return e.req("author_submitExtrinsic", e.shardS) },
			want: catWant{code: params, msg: "takes 2 params, got 1"}},
		{area: a, name: "author_submitExtrinsic with three params", trusted: func(e *catEnv) string { return e.req("author_submitExtrinsic", e.shardS, "0x00", "0x00") },
			want: catWant{code: params, msg: "takes 2 params, got 3"}},
		{area: a, name: "system_version with a param", trusted: func(e *catEnv) string { return e.req("system_version", 1) },
			want: catWant{code: params, msg: "system_version takes 0 params, got 1"}},
		{area: a, name: "shard a number", trusted: func(e *catEnv) string { return e.req("chain_getHeader", 7) },
			want: catWant{code: params, msg: "param 0"}},
		{area: a, name: "shard not base58", trusted: func(e *catEnv) string { return e.req("author_submitExtrinsic", "x", "0x00") },
			want: catWant{code: params, msg: "shard:"}},
		{area: a, name: "shard of 31 bytes", trusted: func(e *catEnv) string { return e.req("chain_getHeader", "0x"+strings.Repeat("ab", 31)) },
			want: catWant{code: params, msg: "shard:"}},
		{area: a, name: "payload not hex", trusted: func(e *catEnv) string { return e.req("author_submitExtrinsic", e.shardS, "0xzz") },
			want: catWant{code: params, msg: "payload:"}},
		{area: a, name: "payload without 0x", trusted: func(e *catEnv) string { return e.req("author_submitExtrinsic", e.shardS, "abcd") },
			want: catWant{code: params, msg: "want 0x-prefixed hex"}},
		{area: a, name: "payload of odd length", trusted: func(e *catEnv) string { return e.req("state_executeGetter", e.shardS, "0xabc") },
			want: catWant{code: params, msg: "payload:"}},
		{area: a, name: "params by name, a wrong name", trusted: func(e *catEnv) string {
			return e.reqNamed("chain_getHeader", map[string]any{"shardId": e.shardS})
		}, want: catWant{code: params, msg: `no "shard"`}},
		{area: a, name: "operations not an array", trusted: func(e *catEnv) string { return e.req("author_submitTrustedOperations", e.shardS, "0x00") },
			want: catWant{code: params, msg: "param 1"}},
	}
}

// catTrustedCases: the enclave's own refusals on the trusted port, each
// -32000 with the error's name in data.
func catTrustedCases() []catCase {
	const a = "trusted: operations"
	const app = -32000
	transfer := func(e *catEnv, amount uint64) trusted.Call {
		return trusted.Call{Transfer: &trusted.Transfer{From: e.aliceI.ID(), To: e.bobI.ID(), Amount: types.NewBalance(amount)}}
	}
	submitCT := func(shard func(*catEnv) string, ct func(*catEnv) []byte) func(*catEnv) string {
		return func(e *catEnv) string { return e.req("author_submitExtrinsic", shard(e), hex0x(ct(e))) }
	}
	ours := func(e *catEnv) string { return e.shardS }
	unknownShard := sidechain.ShardID{7}
	wantApp := func(err *types.Error) catWant { return catWant{code: app, err: err} }
	return []catCase{
		{area: a, name: "unknown shard: chain_getHeader", trusted: func(e *catEnv) string { return e.req("chain_getHeader", unknownShard.String()) },
			want: wantApp(enclave.ErrUnknownShard)},
		{area: a, name: "unknown shard: author_pendingExtrinsics", trusted: func(e *catEnv) string { return e.req("author_pendingExtrinsics", unknownShard.String()) },
			want: wantApp(enclave.ErrUnknownShard)},
		{area: a, name: "unknown shard: author_submitExtrinsic", trusted: submitCT(func(*catEnv) string { return unknownShard.String() },
			func(e *catEnv) []byte { return e.encrypt(e.signCall(e.aliceI, transfer(e, 1), 0, e.mr, unknownShard)) }),
			want: wantApp(enclave.ErrUnknownShard)},
		{area: a, name: "garbage ciphertext", trusted: submitCT(ours, func(*catEnv) []byte { return []byte("not a ciphertext") }),
			want: wantApp(enclave.ErrBadCiphertext)},
		{area: a, name: "empty ciphertext", trusted: submitCT(ours, func(*catEnv) []byte { return nil }),
			want: wantApp(enclave.ErrBadCiphertext)},
		{area: a, name: "ciphertext for another key", trusted: submitCT(ours, func(e *catEnv) []byte {
			k, err := hpke.MLKEM768X25519().GenerateKey()
			if err != nil {
				panic(err)
			}
			ct, err := shielding.Encrypt(k.PublicKey().Bytes(), e.signCall(e.aliceI, transfer(e, 1), 0, e.mr, e.shard))
			if err != nil {
				panic(err)
			}
			return ct
		}), want: wantApp(enclave.ErrBadCiphertext)},
		{area: a, name: "tampered ciphertext", trusted: submitCT(ours, func(e *catEnv) []byte {
			ct := e.encrypt(e.signCall(e.aliceI, transfer(e, 1), 0, e.mr, e.shard))
			ct[len(ct)/2] ^= 1
			return ct
		}), want: wantApp(enclave.ErrBadCiphertext)},
		{area: a, name: "truncated ciphertext", trusted: submitCT(ours, func(e *catEnv) []byte {
			return e.encrypt(e.signCall(e.aliceI, transfer(e, 1), 0, e.mr, e.shard))[:100]
		}), want: wantApp(enclave.ErrBadCiphertext)},
		{area: a, name: "encrypted garbage (not an operation)", trusted: submitCT(ours, func(e *catEnv) []byte { return e.encrypt([]byte("not CBOR")) }),
			want: wantApp(trusted.ErrMalformed)},
		{area: a, name: "wrong signature", trusted: submitCT(ours, func(e *catEnv) []byte {
			op := e.signedCall(e.aliceI, transfer(e, 1), 0, e.mr, e.shard)
			op.Signature[0] ^= 1
			return e.encrypt(encodeOp(&trusted.Operation{Call: op}))
		}), want: wantApp(trusted.ErrBadSignature)},
		{area: a, name: "call signed for another shard", trusted: submitCT(ours, func(e *catEnv) []byte {
			return e.encrypt(e.signCall(e.aliceI, transfer(e, 1), 0, e.mr, unknownShard))
		}), want: wantApp(trusted.ErrBadSignature)},
		{area: a, name: "call signed for another mrenclave", trusted: submitCT(ours, func(e *catEnv) []byte {
			return e.encrypt(e.signCall(e.aliceI, transfer(e, 1), 0, attestation.MrEnclave{9}, e.shard))
		}), want: wantApp(trusted.ErrBadSignature)},
		{area: a, name: "signer is not the account spent from", trusted: submitCT(ours, func(e *catEnv) []byte {
			return e.encrypt(e.signCall(e.bobI, transfer(e, 1), 0, e.mr, e.shard))
		}), want: wantApp(trusted.ErrSignerMismatch)},
		{area: a, name: "plain operation: not CBOR", trusted: func(e *catEnv) string {
			return e.req("author_submitTrustedOperation", e.shardS, hex0x([]byte{0xff, 0x00}))
		}, want: wantApp(trusted.ErrMalformed)},
		{area: a, name: "plain operation: over 4096 bytes", trusted: func(e *catEnv) string {
			return e.req("author_submitTrustedOperation", e.shardS, hex0x(make([]byte, trusted.MaxOperationBytes+1)))
		}, want: wantApp(trusted.ErrTooLarge)},
		{area: a, name: "plain operation: a getter", trusted: func(e *catEnv) string {
			return e.req("author_submitTrustedOperation", e.shardS, hex0x(e.signGetter(e.aliceI, trusted.Getter{FreeBalance: ptr(e.aliceI.ID())})))
		}, want: wantApp(enclave.ErrNotACall)},
		{area: a, name: "plain operation: a call with two variants", trusted: func(e *catEnv) string {
			c := transfer(e, 1)
			c.SetBalance = &trusted.SetBalance{Who: e.aliceI.ID(), Free: types.NewBalance(1)}
			sc := trusted.SignCall(e.aliceI, c, 0, e.mr, e.shard)
			b := canonicalCBOR(&trusted.Operation{Call: sc}) // Encode would refuse it
			return e.req("author_submitTrustedOperation", e.shardS, hex0x(b))
		}, want: wantApp(trusted.ErrInvalidVariant)},
		{area: a, name: "plain operation: wrong signature", trusted: func(e *catEnv) string {
			op := e.signedCall(e.aliceI, transfer(e, 1), 0, e.mr, e.shard)
			op.Signature[63] ^= 0x80
			return e.req("author_submitTrustedOperation", e.shardS, hex0x(encodeOp(&trusted.Operation{Call: op})))
		}, want: wantApp(trusted.ErrBadSignature)},
		{area: a, name: "transfer of more than the balance: Invalid in the block", probe: func(e *catEnv) error {
			return e.wantInvalid(e.signCall(e.aliceI, transfer(e, 1_000_000_001), 0, e.mr, e.shard), "stf.InsufficientBalance")
		}},
		{area: a, name: "unshielding of nothing: Invalid in the block", probe: func(e *catEnv) error {
			c := trusted.Call{Unshield: &trusted.Unshield{From: e.aliceI.ID(), To: e.payee.ID(), Amount: types.NewBalance(0), Shard: e.shard}}
			return e.wantInvalid(e.signCall(e.aliceI, c, 0, e.mr, e.shard), "stf.ZeroAmount")
		}},
		{area: a, name: "set_balance by a non-root account: Invalid in the block", probe: func(e *catEnv) error {
			c := trusted.Call{SetBalance: &trusted.SetBalance{Who: e.bobI.ID(), Free: types.TEER(1000)}}
			return e.wantInvalid(e.signCall(e.bobI, c, 0, e.mr, e.shard), "stf.NotRoot")
		}},
		{area: a, name: "unshielding from another shard: Invalid in the block", probe: func(e *catEnv) error {
			c := trusted.Call{Unshield: &trusted.Unshield{From: e.aliceI.ID(), To: e.payee.ID(), Amount: types.NewBalance(1), Shard: unknownShard}}
			return e.wantInvalid(e.signCall(e.aliceI, c, 0, e.mr, e.shard), "stf.WrongShard")
		}},
		{area: a, name: "(valid) a transfer of 5, then the same operation again: stale nonce", probe: func(e *catEnv) error {
			e.goodTransfer = e.signCall(e.aliceI, transfer(e, 5), 0, e.mr, e.shard)
			if err := e.execute(e.goodTransfer); err != nil {
				return err
			}
			return e.expectRPC(e.req("author_submitTrustedOperation", e.shardS, hex0x(e.goodTransfer)), wantApp(stf.ErrStaleNonce))
		}, effect: func(e *catEnv, s *catState) { s.sidechainTransfer(e, "aliceI", "bobI", 5) }},
		{area: a, name: "replay: the executed transfer re-encrypted", trusted: submitCT(ours, func(e *catEnv) []byte { return e.encrypt(e.goodTransfer) }),
			want: wantApp(stf.ErrStaleNonce)},
		{area: a, name: "replay: another call with the used nonce", trusted: submitCT(ours, func(e *catEnv) []byte {
			return e.encrypt(e.signCall(e.aliceI, transfer(e, 7), 0, e.mr, e.shard))
		}), want: wantApp(stf.ErrStaleNonce)},
		{area: a, name: "(valid) a batch holding one operation twice: the second is a duplicate", probe: func(e *catEnv) error {
			op := e.signCall(e.aliceI, transfer(e, 3), 1, e.mr, e.shard)
			b, err := e.trustedWS.roundTrip(ws.TextMessage, []byte(e.req("author_submitTrustedOperations", e.shardS, []string{hex0x(op), hex0x(op)})))
			if err != nil {
				return err
			}
			var res []trustedrpc.BatchResult
			if err := checkRPC(b, catWant{}, e.lastID, &res); err != nil {
				return err
			}
			if len(res) != 2 || res[0].Error != nil || res[0].Hash == "" {
				return fmt.Errorf("answer %s: want the first element pooled", b)
			}
			if err := batchErrIs(res[1], app, pool.ErrDuplicate); err != nil {
				return fmt.Errorf("second element: %v (answer %s)", err, b)
			}
			return e.waitNonce(e.aliceI, 2)
		}, effect: func(e *catEnv, s *catState) { s.sidechainTransfer(e, "aliceI", "bobI", 3) }},
		{area: a, name: "a batch with an element that is not hex", probe: func(e *catEnv) error {
			bad := e.signCall(e.aliceI, transfer(e, 1), 0, e.mr, e.shard) // stale by now
			b, err := e.trustedWS.roundTrip(ws.TextMessage, []byte(e.req("author_submitTrustedOperations", e.shardS, []string{"0xnothex", hex0x(bad)})))
			if err != nil {
				return err
			}
			var res []trustedrpc.BatchResult
			if err := checkRPC(b, catWant{}, e.lastID, &res); err != nil {
				return err
			}
			if len(res) != 2 {
				return fmt.Errorf("answer %s: want two elements", b)
			}
			if res[0].Error == nil || res[0].Error.Code != -32602 || !strings.Contains(res[0].Error.Message, "operation 0") {
				return fmt.Errorf("element 0 %+v: want -32602 naming operation 0", res[0])
			}
			return batchErrIs(res[1], app, stf.ErrStaleNonce)
		}},
		{area: a, name: "a batch of 1,025 operations (limit 1,024)", trusted: func(e *catEnv) string {
			ops := make([]string, trustedrpc.MaxBatchOperations+1)
			for i := range ops {
				ops[i] = "0x00"
			}
			return e.req("author_submitTrustedOperations", e.shardS, ops)
		}, want: catWant{code: -32602, msg: "1025 operations, at most 1024"}},
		{area: a, name: "getter signed by another account", trusted: func(e *catEnv) string {
			return e.req("state_executeGetter", e.shardS, hex0x(e.signGetter(e.bobI, trusted.Getter{FreeBalance: ptr(e.aliceI.ID())})))
		}, want: wantApp(trusted.ErrGetterNotOwner)},
		{area: a, name: "nonce getter signed by another account", trusted: func(e *catEnv) string {
			return e.req("state_executeGetter", e.shardS, hex0x(e.signGetter(e.bobI, trusted.Getter{Nonce: ptr(e.aliceI.ID())})))
		}, want: wantApp(trusted.ErrGetterNotOwner)},
		{area: a, name: "getter with a wrong signature", trusted: func(e *catEnv) string {
			g := trusted.SignGetter(e.aliceI, trusted.Getter{FreeBalance: ptr(e.aliceI.ID())}, e.shard)
			g.Signature[5] ^= 1
			return e.req("state_executeGetter", e.shardS, hex0x(encodeOp(&trusted.Operation{Getter: g})))
		}, want: wantApp(trusted.ErrBadSignature)},
		{area: a, name: "getter signed for another shard", trusted: func(e *catEnv) string {
			g := trusted.SignGetter(e.aliceI, trusted.Getter{FreeBalance: ptr(e.aliceI.ID())}, unknownShard)
			return e.req("state_executeGetter", e.shardS, hex0x(encodeOp(&trusted.Operation{Getter: g})))
		}, want: wantApp(trusted.ErrBadSignature)},
		{area: a, name: "a call sent as a getter", trusted: func(e *catEnv) string {
			return e.req("state_executeGetter", e.shardS, hex0x(e.signCall(e.aliceI, transfer(e, 1), 9, e.mr, e.shard)))
		}, want: wantApp(trusted.ErrInvalidVariant)},
		{area: a, name: "forged sidechain_forwardOperations batch", trusted: func(e *catEnv) string {
			return e.req("sidechain_forwardOperations", e.shardS, []string{hex0x([]byte("sealed by nobody: not an AES-GCM box of the shard's key"))})
		}, want: wantApp(enclave.ErrBadForward)},
		{area: a, name: "sidechain_forwardOperations of the operations in plain", trusted: func(e *catEnv) string {
			return e.req("sidechain_forwardOperations", e.shardS, []string{hex0x(e.signCall(e.aliceI, transfer(e, 1), 2, e.mr, e.shard))})
		}, want: wantApp(enclave.ErrBadForward)},
		{area: a, name: "sidechain_forwardOperations for an unknown shard", trusted: func(e *catEnv) string {
			return e.req("sidechain_forwardOperations", unknownShard.String(), []string{"0x00"})
		}, want: wantApp(enclave.ErrUnknownShard)},
		{area: a, name: "(valid) an unshielding, then a second submission of it", probe: func(e *catEnv) error {
			c := trusted.Call{Unshield: &trusted.Unshield{From: e.aliceI.ID(), To: e.payee.ID(), Amount: types.NewBalance(1000), Shard: e.shard}}
			e.unshield = e.signCall(e.aliceI, c, 2, e.mr, e.shard)
			if err := e.execute(e.unshield); err != nil {
				return err
			}
			executed := e.currentHead().Number
			if err := e.expectRPC(e.req("author_submitTrustedOperation", e.shardS, hex0x(e.unshield)), wantApp(stf.ErrStaleNonce)); err != nil {
				return err
			}
			// The parentchain pays it once, and a sidechain block then takes
			// the paid entry out of the enclave's outbox.
			if err := e.waitFree(e.payee, types.NewBalance(1000)); err != nil {
				return err
			}
			return e.waitHeadAbove(executed)
		}, effect: func(e *catEnv, s *catState) {
			s.free["aliceI"] = catSub(s.free["aliceI"], 1000)
			s.nonce["aliceI"]++
			s.issuance = catSubS(s.issuance, 1000)
			s.bonding = catSub(s.bonding, 1000)
			p := s.accounts["payee"]
			p.Free = types.NewBalance(1000)
			s.accounts["payee"] = p
			s.headMoves = true
		}},
		{area: a, name: "an oversize message (4 MiB + 1) closes only its connection", probe: func(e *catEnv) error {
			c, err := catDial(fmt.Sprintf("wss://127.0.0.1:%d", e.w.trusted))
			if err != nil {
				return err
			}
			defer c.c.Close()
			big := `{"jsonrpc":"2.0","id":1,"method":"system_version","params":["` + strings.Repeat("x", trustedrpc.MaxMessageBytes) + `"]}`
			_ = c.c.WriteMessage(ws.TextMessage, []byte(big))
			return catWantClose(c.c, ws.CloseMessageTooBig)
		}},
	}
}

// catImportCases: blocks a peer might send to sidechain_importBlock.
func catImportCases() []catCase {
	const a = "sidechain import"
	const app = -32000
	imp := func(f func(*catEnv) []byte) func(*catEnv) string {
		return func(e *catEnv) string { return e.req("sidechain_importBlock", hex0x(f(e))) }
	}
	wantApp := func(err *types.Error) catWant { return catWant{code: app, err: err} }
	return []catCase{
		{area: a, name: "garbage bytes", trusted: imp(func(*catEnv) []byte { return []byte("not a block") }),
			want: wantApp(enclave.ErrBadBlock)},
		{area: a, name: "truncated CBOR", trusted: imp(func(*catEnv) []byte { return []byte{0xa3, 0x01} }),
			want: wantApp(enclave.ErrBadBlock)},
		{area: a, name: "the head block, truncated", trusted: imp(func(e *catEnv) []byte { b := e.headBlock(); return b[:len(b)-10] }),
			want: wantApp(enclave.ErrBadBlock)},
		{area: a, name: "the head block with a byte of its data flipped", trusted: imp(func(e *catEnv) []byte {
			b := e.headBlock()
			b[len(b)/2] ^= 1
			return b
		}), want: wantApp(enclave.ErrBadBlock)},
		{area: a, name: "the head block with its signature flipped", trusted: imp(func(e *catEnv) []byte {
			b := e.headBlock()
			b[len(b)-1] ^= 1
			return b
		}), want: wantApp(enclave.ErrBadBlock)},
		{area: a, name: "a block of another shard", trusted: imp(func(e *catEnv) []byte {
			return e.forgeBlock(func(h *sidechain.Header, _ *sidechain.BlockData) { h.Shard = sidechain.ShardID{7} })
		}), want: wantApp(enclave.ErrUnknownShard)},
		{area: a, name: "a block extending the head, by a stranger", trusted: imp(func(e *catEnv) []byte { return e.forgeBlock(nil) }),
			want: catWant{code: app, err: enclave.ErrBadBlock, msg: "is not an enclave of the shard"}},
		{area: a, name: "a block with a wrong parent, by a stranger", trusted: imp(func(e *catEnv) []byte {
			return e.forgeBlock(func(h *sidechain.Header, _ *sidechain.BlockData) { h.ParentHash = sidechain.Hash{1} })
		}), want: catWant{code: app, err: enclave.ErrBadBlock, msg: "is not an enclave of the shard"}},
		{area: a, name: "a block far ahead of the head, by a stranger", trusted: imp(func(e *catEnv) []byte {
			return e.forgeBlock(func(h *sidechain.Header, _ *sidechain.BlockData) { h.Number += 10; h.ParentHash = sidechain.Hash{2} })
		}), want: catWant{code: app, err: enclave.ErrBadBlock, msg: "is not an enclave of the shard"}},
		{area: a, name: "a competing block at the head's height, by a stranger", probe: func(e *catEnv) error {
			const forks = "integritee_worker_enclave_sidechain_forks_total"
			before, _ := metric(e.w, forks)
			block := e.forgeBlock(func(h *sidechain.Header, _ *sidechain.BlockData) { h.Number-- })
			err := e.expectRPC(e.req("sidechain_importBlock", hex0x(block)), catWant{code: app, err: enclave.ErrBadBlock, msg: "is not an enclave of the shard"})
			// The host copies the enclave's fork count into the metric every
			// slot (300 ms): a block taken for a fork shows there. Wait for
			// it, so that the cases after this one do not see it.
			wait := time.Second
			if err != nil {
				wait = 20 * time.Second
			}
			for deadline := time.Now().Add(wait); time.Now().Before(deadline); {
				if after, _ := metric(e.w, forks); after != before {
					return errors.Join(err, fmt.Errorf("it counts as a fork (%s %v -> %v) and has the host fetch the peers' blocks to resolve it", forks, before, after))
				}
				time.Sleep(100 * time.Millisecond)
			}
			return err
		}},
		{area: a, name: "a replay of an imported block", trusted: imp(func(e *catEnv) []byte { return e.headBlock() }),
			want: catWant{result: "null"}},
		{area: a, name: "a replay of block 1", trusted: imp(func(e *catEnv) []byte { return e.fetchBlock(1) }),
			want: catWant{result: "null"}},
		{area: a, name: "block not hex", trusted: func(e *catEnv) string { return e.req("sidechain_importBlock", "0xgg") },
			want: catWant{code: -32602, msg: "block:"}},
	}
}

// catUntrustedCases: the untrusted port's sidechain_fetchBlocksFromPeer.
func catUntrustedCases() []catCase {
	const a = "untrusted"
	fetch := func(params string) string {
		return `{"jsonrpc":"2.0","id":"u","method":"sidechain_fetchBlocksFromPeer","params":` + params + `}`
	}
	bad := catWant{code: -32602, msg: "Invalid params", id: `"u"`}
	return []catCase{
		{area: a, name: "shard not base58", untrusted: fetch(`["0OIl",1,2]`), want: bad},
		{area: a, name: "from > to", untrusted: fetch(`["11111111111111111111111111111111",5,2]`), want: catWant{code: -32602, msg: "from <= to", id: `"u"`}},
		{area: a, name: "numbers as strings", untrusted: fetch(`["11111111111111111111111111111111","1","2"]`), want: bad},
		{area: a, name: "a negative number", untrusted: fetch(`["11111111111111111111111111111111",-1,2]`), want: bad},
		{area: a, name: "a fraction", untrusted: fetch(`["11111111111111111111111111111111",1.5,2]`), want: bad},
		{area: a, name: "two params", untrusted: fetch(`["11111111111111111111111111111111",1]`), want: catWant{code: -32602, msg: "want [shard, from, to]", id: `"u"`}},
		{area: a, name: "params by name", untrusted: fetch(`{"shard":"11111111111111111111111111111111","from":1,"to":2}`), want: catWant{code: -32602, msg: "want [shard, from, to]", id: `"u"`}},
		{area: a, name: "an unknown shard holds no blocks", untrusted: fetch(`["11111111111111111111111111111111",1,2]`), want: catWant{result: "[]", id: `"u"`}},
		{area: a, name: "unknown method", untrusted: `{"jsonrpc":"2.0","id":9,"method":"author_submitExtrinsic","params":[]}`, want: catWant{code: -32601, msg: "Method not found", id: "9"}},
		{area: a, name: "not JSON", untrusted: `{"jsonrpc":`, want: catWant{code: -32700, msg: "Parse error", id: "null"}},
	}
}

// catCLICases: integritee-cli's refusals: non-zero exit, the problem named
// on stderr, before anything is sent.
func catCLICases() []catCase {
	const a = "cli"
	alice := "5FA9nQDVg267DEd8m1ZypXLBnvN7SFxYwV7ndqSYGiN9TTpu"
	broken := alice[:len(alice)-1] + "v"
	args := func(s ...string) func(*catEnv) []string { return func(*catEnv) []string { return s } }
	cli := func(name, msg string, f func(*catEnv) []string) catCase {
		return catCase{area: a, name: name, cli: f, want: catWant{msg: msg}}
	}
	closed := func() string { return strconv.Itoa(catClosedPort()) }
	return []catCase{
		cli("balance of an address with a bad checksum", "bad SS58 checksum", args("balance", broken)),
		cli("balance of a word", `"Alice" is neither an SS58 address nor 0x-hex`, args("balance", "Alice")),
		cli("balance of a 2-byte key", "public key is 2 bytes", args("balance", "0x1234")),
		cli("balance of an address one byte long", "SS58 payload is 33 bytes", args("balance", alice+"5")),
		cli("transfer to a bad address", "bad SS58 checksum", args("transfer", "//Alice", broken, "1")),
		cli("transfer of a negative amount", "must be a non-negative integer of planck below 2^128", args("transfer", "//Alice", "//Bob", "--", "-5")),
		cli("transfer of a fraction", "must be a non-negative integer of planck below 2^128", args("transfer", "//Alice", "//Bob", "1.5")),
		cli("transfer of 1e3", "must be a non-negative integer of planck below 2^128", args("transfer", "//Alice", "//Bob", "1e3")),
		cli("transfer of 2^128", "must be a non-negative integer of planck below 2^128", args("transfer", "//Alice", "//Bob", "340282366920938463463374607431768211456")),
		cli("transfer of 2^128-1", "balances.InsufficientBalance", args("transfer", "//Alice", "//Bob", "340282366920938463463374607431768211455")),
		cli("transfer from an account not in the keystore", "no key for this account in the keystore", args("transfer", alice, "//Bob", "1")),
		cli("transfer with two arguments", "accepts 3 arg(s)", args("transfer", "//Alice", "//Bob")),
		cli("faucet to a word", "not an account", args("faucet", "nonsense")),
		cli("trusted transfer from an account not in the trusted keystore", "no key for this account in the keystore", func(e *catEnv) []string {
			return []string{"trusted", "--insecure", "--mrenclave", e.shardS, "--direct", "transfer", e.aliceI.ID().String(), "//BobIncognito", "1"}
		}),
		cli("trusted transfer of a negative amount", "must be a non-negative integer of planck below 2^128", func(e *catEnv) []string {
			return []string{"trusted", "--insecure", "--mrenclave", e.shardS, "--direct", "transfer", "//AliceIncognito", "//BobIncognito", "--", "-1"}
		}),
		cli("trusted set-balance of 2^128", "must be a non-negative integer of planck below 2^128", func(e *catEnv) []string {
			return []string{"trusted", "--insecure", "--mrenclave", e.shardS, "--direct", "set-balance", "//BobIncognito", "340282366920938463463374607431768211456"}
		}),
		cli("trusted with an mrenclave that is no mrenclave", "not an mrenclave", args("trusted", "--mrenclave", "nonsense", "get-fingerprint")),
		cli("trusted with an unknown mrenclave", "is not the requested --mrenclave", args("trusted", "--mrenclave", "11111111111111111111111111111111", "get-fingerprint")),
		cli("trusted with an unknown shard", "enclave.UnknownShard", args("trusted", "--insecure", "--shard", "11111111111111111111111111111111", "--direct", "balance", "//AliceIncognito")),
		cli("shield-funds to an unknown shard", "the worker serves shard", args("shield-funds", "//Alice", "//AliceIncognito", "100", "11111111111111111111111111111111")),
		cli("shield-funds of a negative amount", "must be a non-negative integer of planck below 2^128", func(e *catEnv) []string {
			return []string{"shield-funds", "//Alice", "//AliceIncognito", "--", "-100", e.shardS}
		}),
		{area: a, name: "node port not a number", cli: func(*catEnv) []string { return []string{"-p", "abc", "balance", "//Alice"} },
			want: catWant{msg: `invalid argument "abc" for "-p, --node-port" flag`}},
		{area: a, name: "node port 70000", cli: func(*catEnv) []string { return []string{"-p", "70000", "balance", "//Alice"} },
			want: catWant{msg: "invalid port"}},
		{area: a, name: "node port closed", cli: func(*catEnv) []string { return []string{"-p", closed(), "balance", "//Alice"} },
			want: catWant{msg: "connection refused"}},
		cli("worker port 70000", "--trusted-worker-port 70000: not a TCP port", args("-P", "70000", "trusted", "get-fingerprint")),
		{area: a, name: "worker port closed", cli: func(*catEnv) []string {
			return []string{"-P", closed(), "trusted", "--insecure", "get-fingerprint"}
		}, want: catWant{msg: "connection refused"}},
		{area: a, name: "worker port is the node's (no TLS)", cli: func(e *catEnv) []string {
			return []string{"-P", strconv.Itoa(e.n.rpc), "trusted", "--insecure", "get-fingerprint"}
		}, want: catWant{msg: "does not look like a TLS handshake"}},
	}
}

// catTxCases: parentchain transactions refused by the node's CheckTx, each
// with its module's named error, through broadcast_tx_sync.
func catTxCases() []catCase {
	const a = "parentchain"
	tx := func(name string, want *types.Error, f func(*catEnv) []byte) catCase {
		return catCase{area: a, name: name, tx: f, want: catWant{err: want}}
	}
	transfer := func(e *catEnv, amount types.Balance) types.Call {
		return e.call(balances.ModuleName, "transfer", balances.TransferArgs{Dest: e.bob.ID(), Amount: amount})
	}
	otherGenesis := func(e *catEnv) types.Chain {
		return types.Chain{ID: e.chain.ID, Genesis: types.GenesisHash(e.chain.ID, []byte("other validators"))}
	}
	unshield := func(e *catEnv) types.Call {
		return e.call(enclavebridge.ModuleName, "unshield_funds", enclavebridge.UnshieldFundsArgs{
			Shard: e.shard, Beneficiary: e.bob.ID(), Amount: types.NewBalance(1000), CallHash: hash32("catalogue: forged unshielding")})
	}
	register := func(e *catEnv, proof []byte) types.Call {
		return e.call(teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{Proof: proof, URL: "wss://forged.example", Method: sim.Method})
	}
	shardConfig := func(e *catEnv) types.Call {
		return e.call(enclavebridge.ModuleName, "update_shard_config", enclavebridge.UpdateShardConfigArgs{
			Shard: e.shard, Config: enclavebridge.ShardConfig{EnclaveFingerprint: e.mrOther}})
	}
	return []catCase{
		tx("undecodable bytes", types.ErrTxMalformed, func(*catEnv) []byte { return []byte("not a transaction") }),
		tx("a transaction truncated", types.ErrTxMalformed, func(e *catEnv) []byte {
			b := e.sign(e.alice, -1, transfer(e, types.NewBalance(1)))
			return b[:len(b)-5]
		}),
		tx("bad signature", types.ErrTxBadSignature, func(e *catEnv) []byte {
			b := e.sign(e.alice, -1, transfer(e, types.NewBalance(1)))
			b[len(b)-1] ^= 1
			return b
		}),
		tx("signed for another genesis with the same chain id", types.ErrTxBadSignature, func(e *catEnv) []byte {
			return e.codec.Sign(e.alice, otherGenesis(e), e.nonceOf(e.alice), transfer(e, types.NewBalance(1)))
		}),
		tx("wrong chain id", types.ErrTxWrongChain, func(e *catEnv) []byte {
			return e.codec.Sign(e.alice, types.Chain{ID: "another-chain", Genesis: e.chain.Genesis}, e.nonceOf(e.alice), transfer(e, types.NewBalance(1)))
		}),
		tx("stale nonce (a replay)", types.ErrTxStaleNonce, func(e *catEnv) []byte {
			return e.sign(e.alice, int64(e.nonceOf(e.alice))-1, transfer(e, types.NewBalance(1)))
		}),
		tx("nonce 0 again", types.ErrTxStaleNonce, func(e *catEnv) []byte { return e.sign(e.alice, 0, transfer(e, types.NewBalance(1))) }),
		tx("future nonce", types.ErrTxFutureNonce, func(e *catEnv) []byte {
			return e.sign(e.alice, int64(e.nonceOf(e.alice))+5, transfer(e, types.NewBalance(1)))
		}),
		tx("unknown module", types.ErrUnknownModule, func(e *catEnv) []byte {
			return e.sign(e.alice, -1, types.Call{Module: "treasury", Method: "spend", Args: []byte{0xa0}})
		}),
		tx("unknown method", types.ErrUnknownCall, func(e *catEnv) []byte {
			return e.sign(e.alice, -1, types.Call{Module: balances.ModuleName, Method: "steal", Args: []byte{0xa0}})
		}),
		tx("call arguments that do not decode", types.ErrBadArgs, func(e *catEnv) []byte {
			return e.sign(e.alice, -1, types.Call{Module: balances.ModuleName, Method: "transfer", Args: []byte{0x01}})
		}),
		tx("call arguments of the wrong shape", types.ErrBadArgs, func(e *catEnv) []byte {
			return e.sign(e.alice, -1, types.Call{Module: balances.ModuleName, Method: "transfer", Args: canonicalCBOR(map[int]any{1: "bob", 2: 5})})
		}),
		tx("a sender who cannot pay the fee", types.ErrTxCannotPayFee, func(e *catEnv) []byte { return e.sign(e.ferdie, -1, transfer(e, types.NewBalance(1))) }),
		tx("transfer of more than the balance", balances.ErrInsufficientBalance, func(e *catEnv) []byte {
			return e.sign(e.alice, -1, transfer(e, types.TEER(1_000_000)))
		}),
		tx("a root call without sudo", types.ErrBadOrigin, func(e *catEnv) []byte {
			return e.sign(e.alice, -1, e.call(balances.ModuleName, "set_balance", balances.SetBalanceArgs{Who: e.bob.ID(), Free: types.TEER(1_000_000)}))
		}),
		tx("sudo by a non-sudo account", sudo.ErrRequireSudo, func(e *catEnv) []byte {
			return e.sign(e.bob, -1, e.call(sudo.ModuleName, "sudo", sudo.SudoArgs{Call: e.call(balances.ModuleName, "set_balance", balances.SetBalanceArgs{Who: e.bob.ID(), Free: types.TEER(1_000_000)})}))
		}),
		tx("unshield_funds from a non-enclave", enclavebridge.ErrEnclaveNotRegistered, func(e *catEnv) []byte { return e.sign(e.bob, -1, unshield(e)) }),
		tx("unshield_funds from an enclave of other code", enclavebridge.ErrNotAuthorised, func(e *catEnv) []byte { return e.sign(e.mallory, -1, unshield(e)) }),
		tx("register_enclave with a quote signed by another key", teerex.ErrBadProof, func(e *catEnv) []byte {
			_, key, _ := ed25519.GenerateKey(nil)
			q := sim.Quote{Version: sim.Version, MrEnclave: e.mr, ReportData: bind(e.bob.ID()), Timestamp: time.Now().UnixMilli()}
			q.Signature = ed25519.Sign(key, q.SigningBytes())
			return e.sign(e.bob, -1, register(e, q.Encode()))
		}),
		tx("register_enclave with a garbage quote", teerex.ErrBadProof, func(e *catEnv) []byte {
			return e.sign(e.bob, -1, register(e, []byte("trust me, I am an enclave")))
		}),
		tx("register_enclave with the validateer's quote, bound to its key", teerex.ErrReportDataMismatch, func(e *catEnv) []byte {
			return e.sign(e.bob, -1, register(e, sim.NewQuote(e.mr, false, bind(e.enclaveAccount()), time.Now())))
		}),
		tx("update_shard_config by a non-enclave (hijack)", enclavebridge.ErrEnclaveNotRegistered, func(e *catEnv) []byte { return e.sign(e.bob, -1, shardConfig(e)) }),
		tx("update_shard_config by an enclave of other code (hijack)", enclavebridge.ErrShardClaimRefused, func(e *catEnv) []byte { return e.sign(e.mallory, -1, shardConfig(e)) }),
		tx("update_shard_config of a shard in use by root (hijack)", enclavebridge.ErrShardClaimRefused, func(e *catEnv) []byte {
			return e.sign(e.alice, -1, e.call(sudo.ModuleName, "sudo", sudo.SudoArgs{Call: shardConfig(e)}))
		}),
		tx("confirm_imported_sidechain_block by a non-primary", scmodule.ErrNotPrimary, func(e *catEnv) []byte {
			return e.sign(e.mallory, -1, e.call(scmodule.ModuleName, "confirm_imported_sidechain_block", scmodule.ConfirmImportedSidechainBlockArgs{
				Shard: e.shard, Candidate: scmodule.BlockConfirmation{Number: 1000, Hash: hash32("catalogue: forged head")}}))
		}),
		tx("shield_funds to an unknown shard", enclavebridge.ErrUnknownShard, func(e *catEnv) []byte {
			return e.sign(e.bob, -1, e.call(enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{
				Shard: sidechain.ShardID{7}, EncryptedBeneficiary: []byte{1}, Amount: types.NewBalance(1000)}))
		}),
		tx("invoke with an empty payload", enclavebridge.ErrEmptyPayload, func(e *catEnv) []byte {
			return e.sign(e.bob, -1, e.call(enclavebridge.ModuleName, "invoke", enclavebridge.InvokeArgs{Shard: e.shard}))
		}),
		tx("a transaction over 64 KiB (the application's bound)", types.ErrTxTooLarge, func(*catEnv) []byte { return make([]byte, types.MaxTxBytes+1) }),
		{area: a, name: "a transaction over 65 KiB (the mempool's bound, before CheckTx)", probe: func(e *catEnv) error {
			_, rerr, err := rpcCall(e.n.rpc, "broadcast_tx_sync", map[string]any{"tx": base64.StdEncoding.EncodeToString(make([]byte, node.MaxTxBytes+1))})
			if err != nil {
				return err
			}
			if want := fmt.Sprintf("Tx too large. Max size is %d, but got %d", node.MaxTxBytes, node.MaxTxBytes+1); rerr == nil || rerr.Data != want {
				return fmt.Errorf("answer %+v, want the error %q", rerr, want)
			}
			return nil
		}},
		{area: a, name: "broadcast_tx_sync with a tx that is not base64", probe: func(e *catEnv) error {
			_, rerr, err := rpcRaw(e.n.rpc, []byte(`{"jsonrpc":"2.0","id":1,"method":"broadcast_tx_sync","params":{"tx":"%%%"}}`))
			if err != nil {
				return err
			}
			if rerr == nil || rerr.Code != -32602 {
				return fmt.Errorf("answer %+v, want a -32602 error", rerr)
			}
			return nil
		}},
	}
}

// catMuRaCases: connections to the mutual remote attestation port that are
// no attested peer: refused, logged, and the validateer serves on.
func catMuRaCases() []catCase {
	const a = "mu-ra"
	return []catCase{
		{area: a, name: "garbage bytes", probe: func(e *catEnv) error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", e.w.mura), 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			local := c.LocalAddr().String()
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\x02garbage")); err != nil {
				return err
			}
			if err := catWantEOF(c); err != nil {
				return err
			}
			return e.wantLog("mutual attestation: peer not provisioned", "peer="+local, "handshake")
		}},
		{area: a, name: "a TLS client without a certificate", probe: func(e *catEnv) error {
			return e.muraTLS(nil, 0, "certificate required")
		}},
		{area: a, name: "a TLS client with a self-signed certificate without a quote", probe: func(e *catEnv) error {
			return e.muraTLS([]tls.Certificate{selfSigned(e.t)}, 0, "bad certificate")
		}},
		{area: a, name: "a TLS 1.2 client", probe: func(e *catEnv) error {
			return e.muraTLS(nil, tls.VersionTLS12, "protocol version")
		}},
		{area: a, name: "a connection closed at once", probe: func(e *catEnv) error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", e.w.mura), 5*time.Second)
			if err != nil {
				return err
			}
			local := c.LocalAddr().String()
			c.Close()
			return e.wantLog("mutual attestation: peer not provisioned", "peer="+local)
		}},
	}
}

// catHTTPCases: the health and metrics ports.
func catHTTPCases() []catCase {
	const a = "http"
	health := func(req string) func(*catEnv) (int, string) {
		return func(e *catEnv) (int, string) { return e.w.http, req }
	}
	metrics := func(req string) func(*catEnv) (int, string) {
		return func(e *catEnv) (int, string) { return e.w.metrics, req }
	}
	return []catCase{
		{area: a, name: "health: unknown path", http: health("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"), want: catWant{status: 404}},
		{area: a, name: "health: a path below /is_initialized", http: health("GET /is_initialized/x HTTP/1.1\r\nHost: x\r\n\r\n"), want: catWant{status: 404}},
		{area: a, name: "health: /metrics is not here", http: health("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), want: catWant{status: 404}},
		{area: a, name: "health: POST /is_initialized", http: health("POST /is_initialized HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
			want: catWant{status: 405}},
		{area: a, name: "health: DELETE /is_initialized", http: health("DELETE /is_initialized HTTP/1.1\r\nHost: x\r\n\r\n"),
			want: catWant{status: 405}},
		{area: a, name: "health: a garbage request line", http: health("GARBAGE\r\n\r\n"), want: catWant{status: 400}},
		{area: a, name: "health: HTTP/1.1 without Host", http: health("GET /is_initialized HTTP/1.1\r\n\r\n"), want: catWant{status: 400}},
		{area: a, name: "metrics: unknown path", http: metrics("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"), want: catWant{status: 404}},
		{area: a, name: "metrics: pprof without --pprof", http: metrics("GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\n\r\n"), want: catWant{status: 404}},
		{area: a, name: "metrics: POST /metrics", http: metrics("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
			want: catWant{status: 405}},
		{area: a, name: "metrics: a garbage request line", http: metrics("\x16\x03\x01 not http\r\n\r\n"), want: catWant{status: 400}},
	}
}

// ---------------------------------------------------------------------------
// Running a case.

func (e *catEnv) run(c catCase) error {
	switch {
	case c.trusted != nil:
		return e.expectRPC(c.trusted(e), c.want)
	case c.untrusted != "":
		b, err := e.untrWS.roundTrip(ws.TextMessage, []byte(c.untrusted))
		if err != nil {
			e.untrWS = e.mustDial(fmt.Sprintf("ws://127.0.0.1:%d", e.w.untrusted))
			return err
		}
		return checkRPC(b, c.want, "")
	case c.cli != nil:
		args := append([]string{"-P", strconv.Itoa(e.w.trusted)}, c.cli(e)...)
		r := runCLI(e.n.rpc, e.dir, time.Minute, args...)
		if r.code == 0 || r.code == -1 {
			return fmt.Errorf("integritee-cli %q: exit %d (stdout %q, stderr %q), want a failure", args, r.code, r.out, r.err)
		}
		if !strings.Contains(r.err, c.want.msg) {
			return fmt.Errorf("integritee-cli %q: exit %d, stderr %q does not name %q", args, r.code, r.err, c.want.msg)
		}
		return nil
	case c.tx != nil:
		return e.expectTx(c.tx(e), c.want.err)
	case c.http != nil:
		port, req := c.http(e)
		return catHTTP(port, req, c.want.status)
	case c.probe != nil:
		return c.probe(e)
	}
	return errors.New("the case has no input")
}

// expectRPC sends msg on the trusted connection and checks the answer.
func (e *catEnv) expectRPC(msg string, want catWant) error {
	b, err := e.trustedWS.roundTrip(ws.TextMessage, []byte(msg))
	if err != nil {
		e.trustedWS = e.mustDial(fmt.Sprintf("wss://127.0.0.1:%d", e.w.trusted))
		return fmt.Errorf("the trusted port dropped the connection: %v", err)
	}
	id := want.id
	if id == "" {
		id = e.lastID
	}
	return checkRPC(b, want, id)
}

// checkRPC checks a JSON-RPC answer against want; id is the id it must
// carry ("" : want.id). A result is decoded into out[0] if given.
func checkRPC(b []byte, want catWant, id string, out ...any) error {
	if want.raw != "" {
		if string(b) != want.raw {
			return fmt.Errorf("answer %s, want exactly %s", b, want.raw)
		}
		return nil
	}
	var ans struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
		Error   *struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return fmt.Errorf("answer %.300s: %v", b, err)
	}
	if id == "" {
		id = want.id
	}
	switch {
	case ans.JSONRPC != "2.0":
		return fmt.Errorf("answer %.300s: jsonrpc %q", b, ans.JSONRPC)
	case id != "" && string(ans.ID) != id:
		return fmt.Errorf("answer %.300s: id %s, want %s", b, ans.ID, id)
	}
	if want.code == 0 {
		if ans.Error != nil {
			return fmt.Errorf("answer %.300s: want a result", b)
		}
		if want.result != "" && string(ans.Result) != want.result {
			return fmt.Errorf("result %.300s, want %s", ans.Result, want.result)
		}
		if len(out) > 0 {
			return json.Unmarshal(ans.Result, out[0])
		}
		return nil
	}
	if ans.Error == nil {
		return fmt.Errorf("answer %.300s: want error %d", b, want.code)
	}
	if ans.Error.Code != want.code {
		return fmt.Errorf("answer %.300s: code %d, want %d", b, ans.Error.Code, want.code)
	}
	if !strings.Contains(ans.Error.Message, want.msg) {
		return fmt.Errorf("answer %.300s: message does not say %q", b, want.msg)
	}
	if want.err != nil {
		var d struct {
			Module string `json:"module"`
			Name   string `json:"name"`
			Code   uint32 `json:"code"`
		}
		if err := json.Unmarshal(ans.Error.Data, &d); err != nil || d.Module != want.err.Module || d.Name != want.err.Name || d.Code != want.err.Code {
			return fmt.Errorf("answer %.300s: data %s, want {module %s, name %s, code %d}", b, ans.Error.Data, want.err.Module, want.err.Name, want.err.Code)
		}
	}
	return nil
}

// batchErrIs checks a refused batch element.
func batchErrIs(r trustedrpc.BatchResult, code int, want *types.Error) error {
	if r.Error == nil {
		return fmt.Errorf("element %+v accepted, want %s.%s", r, want.Module, want.Name)
	}
	var d struct {
		Module, Name string
		Code         uint32
	}
	_ = json.Unmarshal(r.Error.Data, &d)
	if int(r.Error.Code) != code || d.Module != want.Module || d.Name != want.Name || d.Code != want.Code {
		return fmt.Errorf("element error %d %q %s, want %d %s.%s (%d)", r.Error.Code, r.Error.Message, r.Error.Data, code, want.Module, want.Name, want.Code)
	}
	return nil
}

// expectTx broadcasts tx and checks CheckTx refuses it with want.
func (e *catEnv) expectTx(tx []byte, want *types.Error) error {
	res, rerr, err := rpcCall(e.n.rpc, "broadcast_tx_sync", map[string]any{"tx": base64.StdEncoding.EncodeToString(tx)})
	if err != nil {
		return err
	}
	var r struct {
		Code      uint32 `json:"code"`
		Codespace string `json:"codespace"`
		Log       string `json:"log"`
	}
	if rerr != nil {
		// CometBFT v1 answers a transaction CheckTx refuses with an error
		// whose data carries CheckTx's code, log and codespace.
		m := catCheckTxErr.FindStringSubmatch(rerr.Data)
		if m == nil {
			return fmt.Errorf("JSON-RPC error %+v, want CheckTx's %s.%s", rerr, want.Module, want.Name)
		}
		code, _ := strconv.ParseUint(m[1], 10, 32)
		r.Code, r.Log, r.Codespace = uint32(code), m[2], m[3]
	} else if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if r.Code != want.Code || r.Codespace != want.Module || !strings.HasPrefix(r.Log, want.Module+"."+want.Name+":") {
		return fmt.Errorf("refused with %s/%d %q, want %s/%d %s.%s", r.Codespace, r.Code, r.Log, want.Module, want.Code, want.Module, want.Name)
	}
	return nil
}

// catCheckTxErr is the data of CometBFT's error for a transaction CheckTx
// refused.
var catCheckTxErr = regexp.MustCompile(`^broadcast error on transaction validation: tx [0-9A-F]{64} is invalid: code=(\d+), data=[^,]*, log='(.*)', codespace='(\w*)'$`)

// catHTTP sends a raw request and checks the response's status.
func catHTTP(port int, req string, status int) error {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no status line: %v", err)
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[1] != strconv.Itoa(status) {
		return fmt.Errorf("%q answered %q, want status %d", strings.SplitN(req, "\r\n", 2)[0], strings.TrimSpace(line), status)
	}
	return nil
}

// ---------------------------------------------------------------------------
// The state.

func (e *catEnv) snapshot() (catState, error) {
	s := catState{accounts: map[string]balances.AccountInfo{}, registry: map[string]string{}, free: map[string]types.Balance{}, nonce: map[string]uint64{}}
	for name, p := range map[string]*account.Pair{"alice": e.alice, "bob": e.bob, "ferdie": e.ferdie, "mallory": e.mallory, "payee": e.payee} {
		var a balances.AccountInfo
		if err := e.query("/balances/account/"+p.ID().Hex(), &a); err != nil {
			return s, err
		}
		s.accounts[name] = a
	}
	var b enclavebridge.BondingAccountInfo
	if err := e.query("/enclavebridge/bonding_account/"+e.shard.Hex(), &b); err != nil {
		return s, err
	}
	s.bonding = b.Free
	for _, p := range []string{"/teerex/enclaves", "/teerex/security_flags", "/sudo/key", "/enclavebridge/shards",
		"/enclavebridge/shard_config/" + e.shard.String(), "/enclavebridge/shard_config/" + sidechain.ShardID{7}.String(),
		"/sidechain/latest/" + sidechain.ShardID{7}.String()} {
		var raw json.RawMessage
		if err := e.query(p, &raw); err != nil {
			s.registry[p] = "error: " + err.Error()
		} else {
			s.registry[p] = string(raw)
		}
	}
	if s.height = e.n.height(); s.height < 1 {
		return s, errors.New("the node does not answer status")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	if s.head, err = e.tc.Header(ctx, e.shard); err != nil {
		return s, fmt.Errorf("chain_getHeader: %w", err)
	}
	for name, p := range map[string]*account.Pair{"aliceI": e.aliceI, "bobI": e.bobI} {
		v, err := e.getter(p, trusted.Getter{FreeBalance: ptr(p.ID())})
		if err != nil {
			return s, err
		}
		if s.free[name], err = types.ParseBalance(v); err != nil {
			return s, err
		}
		if v, err = e.getter(p, trusted.Getter{Nonce: ptr(p.ID())}); err != nil {
			return s, err
		}
		if s.nonce[name], err = strconv.ParseUint(v, 10, 64); err != nil {
			return s, err
		}
	}
	if s.issuance, err = e.getter(e.bobI, trusted.Getter{TotalIssuance: &trusted.TotalIssuanceQuery{}}); err != nil {
		return s, err
	}
	var pending []string
	if err := e.tc.Call(ctx, "author_pendingExtrinsics", []any{e.shardS}, &pending); err != nil {
		return s, err
	}
	s.pending = len(pending)
	var health json.RawMessage
	if err := e.tc.Call(ctx, "system_health", nil, &health); err != nil {
		return s, fmt.Errorf("system_health: %w", err)
	}
	if !e.w.initialized() {
		return s, errors.New("/is_initialized does not answer 200")
	}
	s.forks, _ = metric(e.w, "integritee_worker_enclave_sidechain_forks_total")
	return s, nil
}

// compareState checks after against want (computed from before).
func compareState(want, before, after catState) error {
	var diffs []string
	for k, v := range want.accounts {
		if a := after.accounts[k]; a.Free.Cmp(v.Free) != 0 || a.Nonce != v.Nonce {
			diffs = append(diffs, fmt.Sprintf("parentchain %s: %s/nonce %d, want %s/nonce %d", k, a.Free, a.Nonce, v.Free, v.Nonce))
		}
	}
	if after.bonding.Cmp(want.bonding) != 0 {
		diffs = append(diffs, fmt.Sprintf("bonding account %s, want %s", after.bonding, want.bonding))
	}
	for k, v := range want.registry {
		if after.registry[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: %s, want %s", k, after.registry[k], v))
		}
	}
	if after.height < before.height {
		diffs = append(diffs, fmt.Sprintf("parentchain height %d, was %d", after.height, before.height))
	}
	if want.headMoves {
		if after.head.Number <= before.head.Number {
			diffs = append(diffs, fmt.Sprintf("sidechain head #%d, want above #%d", after.head.Number, before.head.Number))
		}
	} else if after.head.Hash != before.head.Hash || after.head.StateHash != before.head.StateHash {
		diffs = append(diffs, fmt.Sprintf("sidechain head #%d %s (state %s), was #%d %s (state %s)", after.head.Number, after.head.Hash, after.head.StateHash,
			before.head.Number, before.head.Hash, before.head.StateHash))
	}
	for k, v := range want.free {
		if after.free[k].Cmp(v) != 0 {
			diffs = append(diffs, fmt.Sprintf("sidechain %s: %s, want %s", k, after.free[k], v))
		}
	}
	for k, v := range want.nonce {
		if after.nonce[k] != v {
			diffs = append(diffs, fmt.Sprintf("sidechain nonce of %s: %d, want %d", k, after.nonce[k], v))
		}
	}
	if after.issuance != want.issuance {
		diffs = append(diffs, fmt.Sprintf("sidechain total issuance %s, want %s", after.issuance, want.issuance))
	}
	if after.pending != 0 {
		diffs = append(diffs, fmt.Sprintf("%d operations pooled", after.pending))
	}
	if after.forks != want.forks {
		diffs = append(diffs, fmt.Sprintf("enclave_sidechain_forks_total %v, was %v", after.forks, want.forks))
	}
	if len(diffs) > 0 {
		return errors.New("state changed: " + strings.Join(diffs, "; "))
	}
	return nil
}

// sidechainTransfer is the effect of a transfer the case makes itself.
func (s *catState) sidechainTransfer(_ *catEnv, from, to string, amount uint64) {
	s.free[from] = catSub(s.free[from], amount)
	a, err := s.free[to].Add(types.NewBalance(amount))
	if err != nil {
		panic(err)
	}
	s.free[to] = a
	s.nonce[from]++
	s.headMoves = true
}

func catSub(b types.Balance, n uint64) types.Balance {
	r, ok := b.Sub(types.NewBalance(n))
	if !ok {
		return types.Balance{}
	}
	return r
}

func catSubS(s string, n uint64) string {
	b, err := types.ParseBalance(s)
	if err != nil {
		return s
	}
	return catSub(b, n).String()
}

func (e *catEnv) waitHeightAbove(h int64) error {
	deadline := time.Now().Add(20 * time.Second)
	for e.n.height() <= h {
		if time.Now().After(deadline) {
			return fmt.Errorf("the parentchain stayed at height %d", h)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Helpers.

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

// req returns a request of method with positional params and a fresh id.
func (e *catEnv) req(method string, params ...any) string {
	if params == nil {
		params = []any{}
	}
	return e.request(method, params)
}

func (e *catEnv) reqNamed(method string, params map[string]any) string {
	return e.request(method, params)
}

func (e *catEnv) request(method string, params any) string {
	e.nextID++
	e.lastID = strconv.Itoa(e.nextID)
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": e.nextID, "method": method, "params": params})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (e *catEnv) call(module, method string, args any) types.Call {
	c, err := types.NewCall(e.codec, module, method, args)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// sign signs call as p with nonce, or with p's next nonce if nonce < 0.
func (e *catEnv) sign(p *account.Pair, nonce int64, call types.Call) []byte {
	if nonce < 0 {
		nonce = int64(e.nonceOf(p))
	}
	return e.codec.Sign(p, e.chain, uint64(nonce), call)
}

func (e *catEnv) nonceOf(p *account.Pair) uint64 {
	var a balances.AccountInfo
	if err := e.query("/balances/account/"+p.ID().Hex(), &a); err != nil {
		e.t.Fatal(err)
	}
	return a.Nonce
}

func (e *catEnv) query(path string, out any) error {
	res, rerr, err := rpcCall(e.n.rpc, "abci_query", map[string]any{"path": path})
	if err != nil {
		return err
	}
	if rerr != nil {
		return fmt.Errorf("abci_query %s: %+v", path, rerr)
	}
	var q struct {
		Response struct {
			Code  int    `json:"code"`
			Log   string `json:"log"`
			Value []byte `json:"value"`
		} `json:"response"`
	}
	if err := json.Unmarshal(res, &q); err != nil {
		return err
	}
	if q.Response.Code != 0 {
		return fmt.Errorf("abci_query %s: %s", path, q.Response.Log)
	}
	return json.Unmarshal(q.Response.Value, out)
}

// enclaveAccount is the validateer's enclave account (its signing key).
func (e *catEnv) enclaveAccount() account.ID {
	var l []teerex.Enclave
	if err := e.query("/teerex/enclaves", &l); err != nil {
		e.t.Fatal(err)
	}
	for _, en := range l {
		if en.MrEnclave == e.mr {
			return en.Signer
		}
	}
	e.t.Fatal("the validateer's enclave is not registered")
	return account.ID{}
}

func encodeOp(op *trusted.Operation) []byte {
	b, err := op.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

func (e *catEnv) signedCall(p *account.Pair, c trusted.Call, nonce uint64, mr attestation.MrEnclave, shard sidechain.ShardID) *trusted.SignedCall {
	return trusted.SignCall(p, c, nonce, mr, shard)
}

// signCall returns the encoded operation of c signed by p.
func (e *catEnv) signCall(p *account.Pair, c trusted.Call, nonce uint64, mr attestation.MrEnclave, shard sidechain.ShardID) []byte {
	return encodeOp(&trusted.Operation{Call: e.signedCall(p, c, nonce, mr, shard)})
}

func (e *catEnv) signGetter(p *account.Pair, g trusted.Getter) []byte {
	return encodeOp(&trusted.Operation{Getter: trusted.SignGetter(p, g, e.shard)})
}

func (e *catEnv) encrypt(plain []byte) []byte {
	ct, err := shielding.Encrypt(e.pub, plain)
	if err != nil {
		panic(err)
	}
	return ct
}

func (e *catEnv) getter(p *account.Pair, g trusted.Getter) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return e.tc.ExecuteGetter(ctx, e.shard, e.signGetter(p, g))
}

// execute submits a valid operation with a watch and waits for its block.
func (e *catEnv) execute(op []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, ch, err := e.tc.SubmitAndWatchOperation(ctx, e.shard, op)
	if err != nil {
		return fmt.Errorf("a valid operation refused: %w", err)
	}
	for {
		select {
		case s, ok := <-ch:
			switch {
			case !ok:
				return errors.New("the watch ended before the operation was in a block")
			case s.Kind == trustedrpc.InSidechainBlock || s.Kind == trustedrpc.Finalized:
				return nil
			case s.Final():
				return fmt.Errorf("a valid operation ended %+v", s)
			}
		case <-ctx.Done():
			return errors.New("a valid operation was not in a block within 30 s")
		}
	}
}

// wantInvalid submits an operation that passes the submission checks but
// fails in the block, and checks its watch ends Invalid naming reason.
func (e *catEnv) wantInvalid(op []byte, reason string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, ch, err := e.tc.SubmitAndWatchOperation(ctx, e.shard, op)
	if err != nil {
		return fmt.Errorf("refused at submission (%w), want pooled and then Invalid", err)
	}
	var seen []string
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				return fmt.Errorf("the watch ended after %v without Invalid", seen)
			}
			seen = append(seen, s.Kind)
			if !s.Final() {
				continue
			}
			if s.Kind != trustedrpc.Invalid || !strings.HasPrefix(s.Reason, reason+":") {
				return fmt.Errorf("ended %+v, want Invalid naming %s", s, reason)
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("statuses %v and no Invalid within 30 s", seen)
		}
	}
}

func (e *catEnv) waitNonce(p *account.Pair, n uint64) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := e.getter(p, trusted.Getter{Nonce: ptr(p.ID())})
		if err == nil && v == strconv.FormatUint(n, 10) {
			// The pool's nonce counts pooled operations: wait for the block too.
			var pending []string
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = e.tc.Call(ctx, "author_pendingExtrinsics", []any{e.shardS}, &pending)
			cancel()
			if err == nil && len(pending) == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sidechain nonce of %s is %s (%v), want %d", p.ID(), v, err, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *catEnv) waitHeadAbove(n uint64) error {
	deadline := time.Now().Add(30 * time.Second)
	for e.currentHead().Number <= n {
		if time.Now().After(deadline) {
			return fmt.Errorf("the sidechain stayed at #%d", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func (e *catEnv) waitFree(p *account.Pair, want types.Balance) error {
	deadline := time.Now().Add(45 * time.Second)
	for {
		var a balances.AccountInfo
		err := e.query("/balances/account/"+p.ID().Hex(), &a)
		if err == nil && a.Free.Cmp(want) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("parentchain %s holds %s (%v), want %s", p.ID(), a.Free, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fetchBlock returns block n from the untrusted port.
func (e *catEnv) fetchBlock(n uint64) []byte {
	c, err := catDial(fmt.Sprintf("ws://127.0.0.1:%d", e.w.untrusted))
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.c.Close()
	b, err := c.roundTrip(ws.TextMessage, []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"sidechain_fetchBlocksFromPeer","params":["%s",%d,%d]}`, e.shardS, n, n)))
	if err != nil {
		e.t.Fatal(err)
	}
	var blocks []string
	if err := checkRPC(b, catWant{}, "1", &blocks); err != nil || len(blocks) != 1 {
		e.t.Fatalf("fetch block %d: %s (%v)", n, b, err)
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(blocks[0], "0x"))
	if err != nil {
		e.t.Fatal(err)
	}
	return raw
}

func (e *catEnv) currentHead() trustedrpc.Header {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := e.tc.Header(ctx, e.shard)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// headBlock returns the encoding of the validateer's head block.
func (e *catEnv) headBlock() []byte { return e.fetchBlock(e.currentHead().Number) }

// forgeBlock returns a block that extends the head, copied from the head
// block, signed by the stranger, after edit.
func (e *catEnv) forgeBlock(edit func(*sidechain.Header, *sidechain.BlockData)) []byte {
	head, err := e.sc.Decode(e.headBlock())
	if err != nil {
		e.t.Fatal(err)
	}
	h := head.Header
	h.Number, h.ParentHash = h.Number+1, e.sc.Hash(head)
	d := head.Data
	d.Timestamp = time.Now().UnixMilli()
	d.StateHashBefore = d.StateHashAfter
	if edit != nil {
		edit(&h, &d)
	}
	return e.sc.Encode(e.sc.Seal(e.stranger, h, d))
}

// wantLog waits until the validateer's log has a line with every part.
func (e *catEnv) wantLog(parts ...string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(e.w.log)
		for _, line := range strings.Split(string(b), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the validateer logged no line with %q", parts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// muraTLS connects to the MU-RA port over TLS with certs (and at most TLS
// version maxVersion, 0: 1.3) and checks the refusal names wantErr and is logged.
func (e *catEnv) muraTLS(certs []tls.Certificate, maxVersion uint16, wantErr string) error {
	raw, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", e.w.mura), 5*time.Second)
	if err != nil {
		return err
	}
	defer raw.Close()
	local := raw.LocalAddr().String()
	cfg := &tls.Config{InsecureSkipVerify: true, Certificates: certs, MaxVersion: maxVersion} //nolint:gosec // the server's RA-TLS is not under test here
	c := tls.Client(raw, cfg)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	err = c.Handshake()
	if err == nil {
		// TLS 1.3: the server's refusal of the client certificate arrives
		// with the first read.
		_, err = c.Read(make([]byte, 1))
	}
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		return fmt.Errorf("the MU-RA port answered %v, want a refusal naming %q", err, wantErr)
	}
	return e.wantLog("mutual attestation: peer not provisioned", "peer="+local, "handshake")
}

// catWantEOF waits for the peer to close c.
func catWantEOF(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return errors.New("the connection stayed open")
		}
		return nil
	}
}

// catClosedPort returns a loopback port nothing listens on.
func catClosedPort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

// catConn is a websocket that exchanges raw frames.
type catConn struct{ c *ws.Conn }

func catDial(url string) (*catConn, error) {
	d := ws.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 10 * time.Second} //nolint:gosec // RA-TLS is not under test here
	c, _, err := d.Dial(url, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	return &catConn{c: c}, nil
}

func (e *catEnv) mustDial(url string) *catConn {
	c, err := catDial(url)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.c.Close() })
	return c
}

// roundTrip sends one frame and returns the next message.
func (c *catConn) roundTrip(typ int, msg []byte) ([]byte, error) {
	c.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := c.c.WriteMessage(typ, msg); err != nil {
		return nil, err
	}
	c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, b, err := c.c.ReadMessage()
	return b, err
}

// catWantClose waits for c's close frame with code.
func catWantClose(c *ws.Conn, code int) error {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *ws.CloseError
		if !errors.As(err, &ce) {
			return fmt.Errorf("the connection ended without a close frame: %v", err)
		}
		if ce.Code != code {
			return fmt.Errorf("close code %d, want %d", ce.Code, code)
		}
		return nil
	}
}
