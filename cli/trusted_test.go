package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	attsim "github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/enclave/tee"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/service/sealedstore"
	"github.com/integritee-go/integritee/sidechain"
)

// run executes integritee-cli with args and returns its output and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := NewRootCmd(&out)
	root.SetErr(io.Discard)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// wantErr checks that err is not nil and its message contains every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one naming %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %q", err, p)
		}
	}
}

func mustPair(t *testing.T, uri string) *account.Pair {
	t.Helper()
	p, err := account.DevPair(uri)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	testMrEnclave = attestation.MrEnclave(sha256.Sum256([]byte("mrenclave")))
	testShard     = sidechain.ShardID(testMrEnclave)
)

// Bad arguments fail before anything dials, each with its own message.
func TestCommandsRefuseBadArguments(t *testing.T) {
	shard := testShard.String()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"shield: FROM", []string{"shield-funds", "nobody", "//Bob", "1", shard}, []string{"FROM"}},
		{"shield: TO", []string{"shield-funds", "//Alice", "0x12", "1", shard}, []string{"TO_INCOGNITO"}},
		{"shield: amount", []string{"shield-funds", "//Alice", "//Bob", "1.5", shard}, []string{`amount "1.5"`}},
		{"shield: zero", []string{"shield-funds", "//Alice", "//Bob", "0", shard}, []string{`amount "0"`, "positive"}},
		{"shield: shard", []string{"shield-funds", "//Alice", "//Bob", "1", "0xzz"}, []string{"SHARD"}},
		{"shield: arity", []string{"shield-funds", "//Alice", "//Bob", "1"}, []string{"accepts 4 arg(s)"}},
		{"shield: timeout", []string{"shield-funds", "--timeout", "0s", "//Alice", "//Bob", "1", shard}, []string{"--timeout"}},
		{"worker url scheme", []string{"-U", "ws://127.0.0.1", "shield-funds", "//Alice", "//Bob", "1", shard}, []string{"--worker-url", "wss"}},
		{"worker port", []string{"-P", "70000", "trusted", "get-shard"}, []string{"--trusted-worker-port"}},
		{"mrenclave", []string{"trusted", "--mrenclave", "bad", "balance", "//Alice"}, []string{"--mrenclave"}},
		{"shard", []string{"trusted", "--shard", "0x00", "balance", "//Alice"}, []string{"--shard"}},
		{"timeout", []string{"trusted", "--timeout", "-1s", "get-shard"}, []string{"--timeout"}},
		{"direct with parentchain signer", []string{"trusted", "--direct", "--parentchain-signer", "//Bob", "transfer", "//Alice", "//Bob", "1"}, []string{"--parentchain-signer"}},
		{"direct with xt-signer", []string{"trusted", "--direct", "-a", "//Bob", "transfer", "//Alice", "//Bob", "1"}, []string{"--xt-signer", "indirect invocations only"}},
		{"xt-signer: bad", []string{"trusted", "--xt-signer", "bob", "transfer", "//Alice", "//Bob", "1"}, []string{`--xt-signer "bob"`, "not an account"}},
		{"xt-signer: short, bad", []string{"trusted", "-a", "0x12", "set-balance", "//Bob", "1"}, []string{`--xt-signer "0x12"`, "not an account"}},
		{"xt-signer: empty", []string{"trusted", "-a", "", "transfer", "//Alice", "//Bob", "1"}, []string{`--xt-signer ""`}},
		{"xt-signer: no value", []string{"trusted", "transfer", "//Alice", "//Bob", "1", "-a"}, []string{"flag needs an argument", "-a"}},
		{"xt-signer and its alias", []string{"trusted", "-a", "//Bob", "--parentchain-signer", "//Bob", "transfer", "//Alice", "//Bob", "1"}, []string{"--parentchain-signer", "deprecated alias", "--xt-signer"}},
		{"no command", []string{"trusted"}, []string{"needs a command", "transfer"}},
		{"unknown command", []string{"trusted", "frobnicate"}, []string{"unknown command"}},
		{"balance: ACCT", []string{"trusted", "balance", "5Gxyz"}, []string{"ACCT"}},
		{"transfer: FROM", []string{"trusted", "transfer", "alice", "//Bob", "1"}, []string{"FROM"}},
		{"transfer: TO", []string{"trusted", "transfer", "//Alice", "bob", "1"}, []string{"TO"}},
		{"transfer: amount", []string{"trusted", "transfer", "//Alice", "//Bob", "1e3"}, []string{`amount "1e3"`}},
		{"transfer: too large", []string{"trusted", "transfer", "//Alice", "//Bob", "340282366920938463463374607431768211456"}, []string{"below 2^128"}},
		{"set-balance: ACCT", []string{"trusted", "set-balance", "x", "1"}, []string{"ACCT"}},
		{"set-balance: amount", []string{"trusted", "set-balance", "//Bob", "-"}, []string{`amount "-"`}},
		{"set-balance: root", []string{"trusted", "set-balance", "--root", "alice", "//Bob", "1"}, []string{"--root"}},
		{"unshield: zero", []string{"trusted", "unshield-funds", "//Alice", "//Bob", "0"}, []string{`amount "0"`, "positive"}},
		{"unshield: TO", []string{"trusted", "unshield-funds", "//Alice", "ferdie", "1"}, []string{"TO"}},
		{"total issuance: signer", []string{"trusted", "get-total-issuance", "--signer", "x"}, []string{"--signer"}},
		{"benchmark: counts", []string{"trusted", "benchmark", "--accounts", "0"}, []string{"--accounts"}},
		{"benchmark: root", []string{"trusted", "benchmark", "--root", "x"}, []string{"--root"}},
		{"nonce flag", []string{"trusted", "transfer", "--nonce", "-1", "//Alice", "//Bob", "1"}, []string{"--nonce"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Closed ports: anything that dialled would fail differently.
			_, err := run(t, append([]string{"-p", "1", "-P", "1"}, c.args...)...)
			wantErr(t, err, c.want...)
		})
	}
}

// The xt-signer signs the parentchain extrinsic of an indirect invocation:
// //Alice unless -a/--xt-signer (or the deprecated --parentchain-signer)
// names another parentchain account; never the trusted call's own account
// by default. Resolution goes through the parentchain keystore.
func TestXtSignerFlag(t *testing.T) {
	ks := t.TempDir()
	stored, err := account.NewKeystore(ks).Generate()
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := mustPair(t, "//Alice").ID(), mustPair(t, "//Bob").ID()
	cases := []struct {
		name string
		args []string
		want account.ID
	}{
		{"default", nil, alice},
		{"default with a trusted account elsewhere", []string{"--shard", testShard.String()}, alice},
		{"short", []string{"-a", "//Bob"}, bob},
		{"short, attached", []string{"-a//Bob"}, bob},
		{"long", []string{"--xt-signer", "//Bob"}, bob},
		{"long, =", []string{"--xt-signer=//Bob"}, bob},
		{"incognito, named explicitly", []string{"-a", "//AliceIncognito"}, mustPair(t, "//AliceIncognito").ID()},
		{"SS58 from the keystore", []string{"-a", stored.ID().String()}, stored.ID()},
		{"hex from the keystore", []string{"--xt-signer", stored.ID().Hex()}, stored.ID()},
		{"deprecated alias", []string{"--parentchain-signer", "//Bob"}, bob},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd, te := newTrustedCmd(&workerEnv{env: &env{out: io.Discard, opts: Options{Keystore: ks}}})
			if err := cmd.ParseFlags(c.args); err != nil {
				t.Fatal(err)
			}
			if err := te.parseFlags(cmd.Flags().Changed); err != nil {
				t.Fatalf("parseFlags(%q): %v", c.args, err)
			}
			p, err := te.xtSigner()
			if err != nil {
				t.Fatalf("xtSigner(%q): %v", c.args, err)
			}
			if p.ID() != c.want {
				t.Errorf("%q: xt-signer %s, want %s", c.args, p.ID(), c.want)
			}
		})
	}

	// The flag is the group's, with Integritee's name, shorthand and default.
	cmd, _ := newTrustedCmd(&workerEnv{env: &env{out: io.Discard}})
	f := cmd.PersistentFlags().Lookup("xt-signer")
	if f == nil || f.Shorthand != "a" || f.DefValue != "//Alice" {
		t.Fatalf("--xt-signer: %+v; want -a, default //Alice", f)
	}
	if old := cmd.PersistentFlags().Lookup("parentchain-signer"); old == nil || !old.Hidden {
		t.Errorf("--parentchain-signer should remain as a hidden alias: %+v", old)
	}

	// Well-formed, but whose key the parentchain keystore lacks.
	cmd, te := newTrustedCmd(&workerEnv{env: &env{out: io.Discard, opts: Options{Keystore: ks}}})
	if err := cmd.ParseFlags([]string{"-a", bob.String()}); err != nil {
		t.Fatal(err)
	}
	if err := te.parseFlags(cmd.Flags().Changed); err != nil {
		t.Fatal(err)
	}
	_, err = te.xtSigner()
	if !errors.Is(err, account.ErrNoKey) {
		t.Errorf("xt-signer without a key: %v; want ErrNoKey", err)
	}
	wantErr(t, err, "--xt-signer")
}

// The deprecated alias still works but says so on stderr, not stdout.
func TestParentchainSignerAliasWarns(t *testing.T) {
	var out, errb bytes.Buffer
	root := NewRootCmd(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"-p", "1", "-P", "1", "trusted", "--parentchain-signer", "//Bob", "--timeout", "1s", "transfer", "//Alice", "//Bob", "1"})
	_ = root.Execute() // fails dialling the closed port
	if !strings.Contains(errb.String(), "--parentchain-signer is deprecated; use -a/--xt-signer") {
		t.Errorf("stderr %q lacks the deprecation warning", errb.String())
	}
	if strings.Contains(out.String(), "deprecated") {
		t.Errorf("stdout %q carries the warning", out.String())
	}
}

// With --shard (or --mrenclave) the keystore commands need no worker, and
// keys land in <dir>/<shard base58>.
func TestTrustedKeystorePerShard(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, "trusted", "--trusted-keystore", dir, "--shard", testShard.String(), "new-account")
	if err != nil {
		t.Fatal(err)
	}
	id, err := account.ParseID(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("new-account printed %q: %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(dir, testShard.String(), id.String()+".json")); err != nil {
		t.Errorf("key not in the shard's keystore: %v", err)
	}
	// --mrenclave names the same shard by default.
	out, err = run(t, "trusted", "--trusted-keystore", dir, "--mrenclave", testMrEnclave.String(), "list-accounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != id.String() {
		t.Errorf("list-accounts printed %q, want %s", out, id)
	}
	// Another shard has its own, empty keystore.
	other := sidechain.ShardID(sha256.Sum256([]byte("other")))
	out, err = run(t, "trusted", "--trusted-keystore", dir, "--shard", other.String(), "list-accounts")
	if err != nil || out != "" {
		t.Errorf("other shard's list-accounts: %q, %v; want nothing", out, err)
	}
	if got, want := trustedKeystorePath(defaultTrustedKeystore, testShard), filepath.Join("my_trusted_keystore", testShard.String()); got != want {
		t.Errorf("default keystore path %s, want %s", got, want)
	}
}

func TestWorkerAddress(t *testing.T) {
	for _, c := range []struct {
		url  string
		port int
		want string
	}{
		{"wss://127.0.0.1", 2000, "wss://127.0.0.1:2000"},
		{"wss://validateer.example/", 443, "wss://validateer.example:443"},
		{"wss://[::1]", 2000, "wss://[::1]:2000"},
	} {
		got, err := workerAddress(c.url, c.port)
		if err != nil || got != c.want {
			t.Errorf("workerAddress(%q, %d) = %q, %v; want %q", c.url, c.port, got, err, c.want)
		}
	}
	for _, c := range []struct {
		url  string
		port int
	}{
		{"ws://127.0.0.1", 2000},
		{"https://127.0.0.1", 2000},
		{"127.0.0.1", 2000},
		{"wss://127.0.0.1:2000", 2000},
		{"wss://127.0.0.1/rpc", 2000},
		{"wss://", 2000},
		{"wss://127.0.0.1", 0},
	} {
		if got, err := workerAddress(c.url, c.port); err == nil {
			t.Errorf("workerAddress(%q, %d) = %q; want an error", c.url, c.port, got)
		}
	}
}

// fakeTEE is enough of a TEE for keys.LoadOrCreate: a fixed sealing key.
type fakeTEE struct{}

var _ tee.Backend = fakeTEE{}

func (fakeTEE) Name() string                      { return "fake" }
func (fakeTEE) MrEnclave() attestation.MrEnclave  { return testMrEnclave }
func (fakeTEE) Debug() bool                       { return true }
func (fakeTEE) Quote(rd [64]byte) ([]byte, error) { return nil, errors.New("fake: no quotes") }
func (fakeTEE) Verifier() attestation.Verifier    { return attsim.NewVerifier() }
func (fakeTEE) SealingKey(label string) ([32]byte, error) {
	return sha256.Sum256([]byte("sealing " + label)), nil
}

func enclaveKeys(t *testing.T) *keys.Keys {
	t.Helper()
	k, _, err := keys.LoadOrCreate(fakeTEE{}, sealedstore.New(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// What the CLI seals, the enclave opens: a call signed by FROM for the
// enclave and shard, whose hash is the one unshield_executed is keyed by.
func TestSealCallRoundTrip(t *testing.T) {
	k := enclaveKeys(t)
	alice, bob := mustPair(t, "//AliceIncognito"), mustPair(t, "//Ferdie")
	call := stf.Call{Unshield: &stf.Unshield{From: alice.ID(), To: bob.ID(), Amount: types.NewBalance(20), Shard: testShard}}

	sc, ct, err := sealCall(alice, call, 7, testMrEnclave, testShard, k.ShieldingPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	plain, err := k.ShieldingDecrypt(ct)
	if err != nil {
		t.Fatalf("enclave cannot decrypt: %v", err)
	}
	op, err := stf.DecodeOperation(plain)
	if err != nil {
		t.Fatal(err)
	}
	if op.Call == nil || op.Call.Nonce != 7 || op.Call.Signer != alice.ID() || op.Call.Call.Unshield == nil {
		t.Fatalf("decoded %+v, want alice's unshield with nonce 7", op.Call)
	}
	if err := op.Call.Verify(testMrEnclave, testShard); err != nil {
		t.Errorf("signature: %v", err)
	}
	other := sidechain.ShardID(sha256.Sum256([]byte("other")))
	if err := op.Call.Verify(testMrEnclave, other); err == nil {
		t.Error("signature verifies for another shard")
	}
	if op.Call.Hash() != sc.Hash() {
		t.Error("the enclave's call hash differs from the CLI's")
	}
	// Two encryptions of one call differ; both open.
	_, ct2, _ := sealCall(alice, call, 7, testMrEnclave, testShard, k.ShieldingPublicKey())
	if bytes.Equal(ct, ct2) {
		t.Error("two encryptions are equal")
	}
	if _, _, err := sealCall(alice, call, 7, testMrEnclave, testShard, []byte("not a key")); err == nil {
		t.Error("sealed to a bad key")
	}
	if _, _, err := sealCall(alice, stf.Call{}, 0, testMrEnclave, testShard, k.ShieldingPublicKey()); err == nil {
		t.Error("sealed an empty call")
	}
}

// shield-funds' beneficiary: the enclave decrypts the 32-byte public key.
func TestShieldingBeneficiaryRoundTrip(t *testing.T) {
	k := enclaveKeys(t)
	a, err := parseShieldArgs([]string{"//Alice", "//AliceIncognito", "50000000000", testShard.String()})
	if err != nil {
		t.Fatal(err)
	}
	if a.amount.String() != "50000000000" || a.shard != testShard || a.from != "//Alice" {
		t.Errorf("parsed %+v", a)
	}
	ct, err := keys.ShieldingEncrypt(k.ShieldingPublicKey(), a.to[:])
	if err != nil {
		t.Fatal(err)
	}
	plain, err := k.ShieldingDecrypt(ct)
	if err != nil || !bytes.Equal(plain, a.to[:]) {
		t.Errorf("decrypted %x, %v; want %s", plain, err, a.to)
	}
	if a.to != mustPair(t, "//AliceIncognito").ID() {
		t.Error("TO_INCOGNITO resolved to another account")
	}
}

func TestAwaitInBlock(t *testing.T) {
	hash := sidechain.Hash(sha256.Sum256([]byte("block")))
	feed := func(sts ...rpc.Status) <-chan rpc.Status {
		ch := make(chan rpc.Status, len(sts))
		for _, s := range sts {
			ch <- s
		}
		return ch
	}
	ctx := context.Background()

	got, err := awaitInBlock(ctx, feed(rpc.Status{Kind: rpc.Submitted}, rpc.Status{Kind: rpc.Ready}, rpc.Status{Kind: rpc.InSidechainBlock, BlockHash: hash}))
	if err != nil || got != hash {
		t.Errorf("in block: %s, %v; want %s", got, err, hash)
	}
	// InSidechainBlock is not the watch's final status, but the CLI does
	// not wait for the block's finalization.
	ch := feed(rpc.Status{Kind: rpc.Ready}, rpc.Status{Kind: rpc.InSidechainBlock, BlockHash: hash}, rpc.Status{Kind: rpc.Finalized, BlockHash: hash})
	if got, err := awaitInBlock(ctx, ch); err != nil || got != hash || len(ch) != 1 {
		t.Errorf("in block, finalization pending: %s, %v, %d unread; want %s and the Finalized unread", got, err, len(ch), hash)
	}
	_, err = awaitInBlock(ctx, feed(rpc.Status{Kind: rpc.Invalid, Reason: "stf.InsufficientBalance: balance too low"}))
	if !errors.Is(err, errInvalid) {
		t.Errorf("invalid: %v", err)
	}
	wantErr(t, err, "stf.InsufficientBalance")
	if _, err = awaitInBlock(ctx, feed(rpc.Status{Kind: rpc.Ready}, rpc.Status{Kind: rpc.Dropped})); !errors.Is(err, errDropped) {
		t.Errorf("dropped: %v", err)
	}
	closed := make(chan rpc.Status, 1)
	closed <- rpc.Status{Kind: rpc.Ready}
	close(closed)
	_, err = awaitInBlock(ctx, closed)
	wantErr(t, err, "without a final status", "Ready")

	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = awaitInBlock(tctx, feed(rpc.Status{Kind: rpc.Future}))
	if !timedOut(err) {
		t.Errorf("timeout: %v", err)
	}
	wantErr(t, err, "last status: Future")
}

// fakeValidateer answers awaitIndirect's two questions from a script
// whose clock is the number of questions asked so far.
type fakeValidateer struct {
	polls      int
	executeAt  int   // question from which the nonce has moved (0: never)
	confirmAt  int   // question from which a confirmation exists (0: never)
	confirmedH int64 // the confirmation's height
}

func (f *fakeValidateer) nonce(context.Context) (uint64, error) {
	f.polls++
	if f.executeAt > 0 && f.polls >= f.executeAt {
		return 4, nil
	}
	return 3, nil
}

func (f *fakeValidateer) processed(context.Context) (int64, error) {
	f.polls++
	if f.confirmAt > 0 && f.polls >= f.confirmAt {
		return f.confirmedH, nil
	}
	return 0, nil
}

func TestAwaitIndirect(t *testing.T) {
	const tick = time.Millisecond
	wait := func(f *fakeValidateer, timeout, grace time.Duration) (int64, uint64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return awaitIndirect(ctx, f.nonce, f.processed, 3, 10, timeout, grace, tick)
	}

	t.Run("executed and confirmed", func(t *testing.T) {
		at, n, err := wait(&fakeValidateer{executeAt: 3, confirmAt: 2, confirmedH: 12}, time.Second, time.Second)
		if err != nil || at != 12 || n != 4 {
			t.Errorf("got %d, %d, %v; want 12, 4, nil", at, n, err)
		}
	})
	t.Run("the nonce moves before the confirmation", func(t *testing.T) {
		at, _, err := wait(&fakeValidateer{executeAt: 1, confirmAt: 5, confirmedH: 11}, time.Second, time.Second)
		if err != nil || at != 11 {
			t.Errorf("got %d, %v; want 11, nil", at, err)
		}
	})
	t.Run("confirmed but the nonce stays", func(t *testing.T) {
		_, _, err := wait(&fakeValidateer{confirmAt: 1, confirmedH: 11}, time.Second, 20*time.Millisecond)
		if !errors.Is(err, errNotExecuted) || timedOut(err) {
			t.Errorf("got %v; want errNotExecuted before the timeout", err)
		}
		wantErr(t, err, "the validateer did not execute the call; check its log", "still 3")
	})
	t.Run("nothing happens", func(t *testing.T) {
		_, _, err := wait(&fakeValidateer{}, 30*time.Millisecond, time.Second)
		if !errors.Is(err, errNotExecuted) {
			t.Errorf("got %v; want errNotExecuted", err)
		}
		wantErr(t, err, "block 10", "--timeout 30ms")
	})
	t.Run("executed but never confirmed", func(t *testing.T) {
		_, _, err := wait(&fakeValidateer{executeAt: 1}, 30*time.Millisecond, time.Second)
		if errors.Is(err, errNotExecuted) || !timedOut(err) {
			t.Errorf("got %v; want a timeout that says the call executed", err)
		}
		wantErr(t, err, "the call executed", "nonce is now 4")
	})
}

func TestBenchAccountsAreFreshAndDistinct(t *testing.T) {
	seen := map[account.ID]bool{}
	for _, run := range []int64{1, 2} {
		for i := range 3 {
			p := mustPair(t, benchAccount(run, i))
			if seen[p.ID()] {
				t.Fatalf("%s repeats an account", benchAccount(run, i))
			}
			seen[p.ID()] = true
		}
	}
	if got := benchAccount(5, 2); got != "//BenchT5//2" {
		t.Errorf("benchAccount = %q", got)
	}
}

func TestExplainUnknownShard(t *testing.T) {
	refused := &client.TxError{Stage: "check", Codespace: enclavebridge.ModuleName, Code: enclavebridge.ErrUnknownShard.Code, Log: "shard has neither..."}
	err := explainUnknownShard(refused)
	if !errors.Is(err, enclavebridge.ErrUnknownShard) {
		t.Errorf("the hint hides the error: %v", err)
	}
	wantErr(t, err, "retry in a few seconds")
	other := errors.New("boom")
	if explainUnknownShard(other) != other {
		t.Error("another error changed")
	}
}
