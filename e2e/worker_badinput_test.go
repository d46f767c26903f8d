package e2e

import (
	"bytes"
	"context"
	"crypto/hpke"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

func dialWorker(t *testing.T, w *workerProc) *rpcclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpcclient.Dial(ctx, fmt.Sprintf("wss://127.0.0.1:%d", w.trusted), rpcclient.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawWS sends one text frame to the worker and returns the answer.
func rawWS(t *testing.T, w *workerProc, msg []byte) map[string]any {
	t.Helper()
	d := ws.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	c, _, err := d.Dial(fmt.Sprintf("wss://127.0.0.1:%d", w.trusted), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(ws.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("no answer to %.40q: %v", msg, err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	return out
}

func errCode(m map[string]any) int {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return int(c)
}

// TestWorkerRefusesBadInput sends the trusted RPC every kind of bad input
// and checks each refusal names its error and changes no balance.
func TestWorkerRefusesBadInput(t *testing.T) {
	n := startDevNode(t, "")
	w := startWorker(t, n, "")
	dir := t.TempDir()
	shardS := w.mustT(t, dir, "trusted", "get-fingerprint")
	w.mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "1000000000", shardS)
	c := dialWorker(t, w)
	ctx := context.Background()
	shard, _ := sidechain.ParseShardID(shardS)
	mr := attestation.MrEnclave(shard)
	pub, err := c.ShieldingKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := account.DevPair("//AliceIncognito")
	bob, _ := account.DevPair("//BobIncognito")
	encrypt := func(sc *stf.SignedCall) []byte {
		b, err := (&stf.Operation{Call: sc}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		ct, err := keys.ShieldingEncrypt(pub, b)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	transfer := stf.Call{Transfer: &stf.Transfer{From: alice.ID(), To: bob.ID(), Amount: planck(5)}}
	balance := func() string { return w.mustT(t, dir, "trusted", "--mrenclave", shardS, "balance", "//AliceIncognito") }
	before := balance()

	// A ciphertext for another HPKE key.
	otherKey, _ := hpke.MLKEM768X25519().GenerateKey()
	otherPub := otherKey.PublicKey().Bytes()
	opBytes, _ := (&stf.Operation{Call: stf.SignCall(alice, transfer, 0, mr, shard)}).Encode()
	foreign, _ := keys.ShieldingEncrypt(otherPub, opBytes)
	tampered := encrypt(stf.SignCall(alice, transfer, 0, mr, shard))
	tampered[len(tampered)/2] ^= 1
	badSig := stf.SignCall(alice, transfer, 0, mr, shard)
	badSig.Signature[0] ^= 1
	otherShard := sidechain.ShardID{7}
	cases := []struct {
		name  string
		shard sidechain.ShardID
		ct    []byte
		want  string
	}{
		{"ciphertext for another key", shard, foreign, "enclave.BadCiphertext"},
		{"tampered ciphertext", shard, tampered, "enclave.BadCiphertext"},
		{"truncated ciphertext", shard, tampered[:100], "enclave.BadCiphertext"},
		{"wrong signature", shard, encrypt(badSig), "stf.BadSignature"},
		{"call signed for another shard", shard, encrypt(stf.SignCall(alice, transfer, 0, mr, otherShard)), "stf.BadSignature"},
		{"call signed for another mrenclave", shard, encrypt(stf.SignCall(alice, transfer, 0, attestation.MrEnclave{9}, shard)), "stf.BadSignature"},
		{"unknown shard", otherShard, encrypt(stf.SignCall(alice, transfer, 0, mr, otherShard)), "enclave.UnknownShard"},
		{"signer is not the sender", shard, encrypt(stf.SignCall(bob, transfer, 0, mr, shard)), "stf.SignerMismatch"},
	}
	for _, tc := range cases {
		_, err := c.Submit(ctx, tc.shard, tc.ct)
		var re *rpcclient.Error
		if !errors.As(err, &re) || re.Name != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}

	// Replay: the same signed transfer twice; the second is refused, and
	// after it executed the nonce is stale.
	good := encrypt(stf.SignCall(alice, transfer, 0, mr, shard))
	_, ch, err := c.SubmitAndWatch(ctx, shard, good)
	if err != nil {
		t.Fatal(err)
	}
	untilInBlock(t, "good transfer", ch)
	if _, err := c.Submit(ctx, shard, good); err == nil || !strings.Contains(err.Error(), "Nonce") {
		t.Errorf("replayed call: %v, want a stale nonce error", err)
	}
	unshield := stf.Call{Unshield: &stf.Unshield{From: alice.ID(), To: bob.ID(), Amount: planck(1), Shard: shard}}
	u := encrypt(stf.SignCall(alice, unshield, 1, mr, shard))
	if _, ch, err = c.SubmitAndWatch(ctx, shard, u); err != nil {
		t.Fatal(err)
	}
	untilInBlock(t, "unshielding", ch)
	if _, err := c.Submit(ctx, shard, u); err == nil {
		t.Error("a second submission of the same unshielding was accepted")
	}

	// A getter signed by someone else.
	g := stf.SignGetter(bob, stf.Getter{FreeBalance: ptr(alice.ID())}, shard)
	gb, _ := (&stf.Operation{Getter: g}).Encode()
	var re *rpcclient.Error
	if _, err := c.ExecuteGetter(ctx, shard, gb); !errors.As(err, &re) || re.Name != "stf.GetterNotOwner" {
		t.Errorf("foreign getter: %v", err)
	}

	// Blocks a peer might send: garbage and truncated ones.
	var hdr struct {
		Number uint64 `json:"number"`
	}
	if err := c.Call(ctx, "chain_getHeader", []any{shardS}, &hdr); err != nil || hdr.Number < 1 {
		t.Fatalf("chain_getHeader: %+v %v", hdr, err)
	}
	for name, raw := range map[string][]byte{"garbage": []byte("not a block"), "truncated": {0xa3, 0x01}} {
		if err := c.ImportBlock(ctx, raw); !errors.As(err, &re) || re.Name != "enclave.BadBlock" {
			t.Errorf("%s block: %v, want enclave.BadBlock", name, err)
		}
	}

	// Malformed JSON-RPC.
	for msg, code := range map[string]int{
		`{"jsonrpc":"2.0","id":1,"method":`:                                                -32700,
		`[{"jsonrpc":"2.0","id":1,"method":"system_version"}]`:                             -32600,
		`{"jsonrpc":"1.0","id":1,"method":"system_version"}`:                               -32600,
		`{"jsonrpc":"2.0","id":1,"method":"no_such_method"}`:                               -32601,
		`{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic"}`:                       -32602,
		`{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["x","0x00"]}`: -32602,
	} {
		if got := errCode(rawWS(t, w, []byte(msg))); got != code {
			t.Errorf("%s: code %d, want %d", msg, got, code)
		}
	}
	// Oversize: the connection is closed, the server lives on.
	d := ws.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	big, _, err := d.Dial(fmt.Sprintf("wss://127.0.0.1:%d", w.trusted), nil)
	if err == nil {
		big.WriteMessage(ws.TextMessage, bytes.Repeat([]byte("x"), 5<<20))
		big.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := big.ReadMessage(); err == nil {
			t.Error("oversize message answered instead of closing")
		}
		big.Close()
	}
	if v, err := c.String(ctx, "system_version"); err != nil || v == "" {
		t.Errorf("server after bad input: %q %v", v, err)
	}
	if after := balance(); after != "999999994" || before != "1000000000" {
		t.Errorf("//AliceIncognito %s then %s; want only the good transfer (5) and unshield (1) applied", before, after)
	}
}

func ptr[T any](v T) *T { return &v }

// untilInBlock follows a watch until its call executed in a sidechain block
// (InSidechainBlock, or Finalized if a slow reader missed that); the watch
// goes on until the block's finalization, which it does not wait for.
func untilInBlock(t *testing.T, what string, ch <-chan rpc.Status) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case s, ok := <-ch:
			switch {
			case !ok:
				t.Fatalf("%s: the watch ended before the call was in a block", what)
			case s.Kind == rpc.InSidechainBlock || s.Kind == rpc.Finalized:
				return
			case s.Final():
				t.Fatalf("%s ended %+v", what, s)
			}
		case <-timeout:
			t.Fatalf("%s: not in a block within a minute", what)
		}
	}
}

// TestNoPlaintextAtRest searches the validateer's block store and state
// files, and the node's data, for plaintexts of the flow: incognito
// account keys and a distinctive private amount.
func TestNoPlaintextAtRest(t *testing.T) {
	nodeDir := t.TempDir()
	n := startDevNode(t, nodeDir)
	data := t.TempDir() + "/worker"
	w := startWorker(t, n, data)
	dir := t.TempDir()
	shard := w.mustT(t, dir, "trusted", "get-fingerprint")
	w.mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "50000000000", shard)
	w.mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "transfer", "//AliceIncognito", "//BobIncognito", "12345678911")
	w.mustT(t, dir, "trusted", "--mrenclave", shard, "--xt-signer", "//Alice", "transfer", "//AliceIncognito", "//BobIncognito", "1")
	w.stop(0x2) // SIGINT: flush everything to disk
	n.stop(0x2)

	alice, _ := account.DevPair("//AliceIncognito")
	bob, _ := account.DevPair("//BobIncognito")
	amount := planck(12345678911)
	amountCBOR := canonicalCBOR(amount)
	secrets := map[string][]byte{
		"//AliceIncognito public key": alice.ID().PublicKey(),
		"//BobIncognito public key":   bob.ID().PublicKey(),
		"//BobIncognito address":      []byte(bob.ID().String()),
		"the private amount (CBOR)":   amountCBOR,
		"the private amount (text)":   []byte("12345678911"),
	}
	files := 0
	for _, root := range []string{data, nodeDir} {
		filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			files++
			for what, s := range secrets {
				if bytes.Contains(b, s) {
					t.Errorf("%s found in plaintext in %s", what, path)
				}
			}
			return nil
		})
	}
	if files < 10 {
		t.Fatalf("searched only %d files", files)
	}
}

// TestDebugEnclaveRefusedWhenForbidden: once the chain forbids debug
// enclaves (sudo set_security_flags), a validateer running a debug enclave
// cannot register and stops with the chain's named error.
func TestDebugEnclaveRefusedWhenForbidden(t *testing.T) {
	env := newBridgeEnv(t)
	alice := mustDevPair(t, "//Alice")
	flags := env.call(teerex.ModuleName, "set_security_flags", teerex.SetSecurityFlagsArgs{Flags: teerex.SecurityFlags{AllowSkip: true, AllowSim: true}})
	env.mustSubmit(alice, env.call(sudo.ModuleName, "sudo", sudo.SudoArgs{Call: flags}))

	w := startWorkerNoWait(t, env.n, "", "--dev", "--debug-enclave")
	select {
	case <-w.done:
	case <-time.After(60 * time.Second):
		t.Fatal("a debug validateer kept running on a chain that forbids debug enclaves")
	}
	if w.cmd.ProcessState.ExitCode() == 0 {
		t.Fatal("the debug validateer exited 0")
	}
	log, _ := os.ReadFile(w.log)
	if !strings.Contains(string(log), "teerex.DebugNotAllowed") {
		t.Fatalf("the validateer's log does not name teerex.DebugNotAllowed:\n%s", log)
	}
	if got := len(env.enclaves()); got != 0 {
		t.Fatalf("%d enclaves registered", got)
	}
}

// TestSkipRARegistration: --skip-ra registers with the unverified "skip"
// method, which a dev chain accepts.
func TestSkipRARegistration(t *testing.T) {
	n := startDevNode(t, "")
	w := startWorker(t, n, "", "--dev", "--skip-ra")
	out := n.mustCLI(t, t.TempDir(), "list-workers")
	if !strings.Contains(out, `"attestation_method":"skip"`) || !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d", w.trusted)) {
		t.Fatalf("list-workers:\n%s", out)
	}
}
