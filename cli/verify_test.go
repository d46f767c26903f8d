package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
)

// fakeChain answers hashAt from a map and counts the calls.
type fakeChain struct {
	hashes map[int64][]byte
	calls  int
}

func (f *fakeChain) hashAt(_ context.Context, h int64) ([]byte, error) {
	f.calls++
	b, ok := f.hashes[h]
	if !ok {
		return nil, errors.New("height too high")
	}
	return b, nil
}

func hash32(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func defaultVerify() verifyOpts {
	return verifyOpts{Verify: true, TrustingPeriod: DefaultTrustingPeriod}
}

func TestTrustOnFirstUseStoresTheRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keystore") // not created yet
	var warn bytes.Buffer
	ts := trustStore{dir: dir, warn: &warn}
	chain := &fakeChain{hashes: map[int64][]byte{1: hash32(0xab), 2: hash32(0xcd)}}
	ctx := context.Background()

	r, first, err := ts.root(ctx, "integritee-dev", defaultVerify(), chain.hashAt)
	if err != nil {
		t.Fatal(err)
	}
	want := trustRoot{ChainID: "integritee-dev", Height: 1, Hash: strings.Repeat("AB", 32)}
	if !first || r != want {
		t.Fatalf("first use: %+v first=%v, want %+v", r, first, want)
	}
	if w := warn.String(); !strings.Contains(w, "WARNING") || !strings.Contains(w, "on first use") || !strings.Contains(w, want.Hash) {
		t.Errorf("warning %q", w)
	}
	// Nothing is stored until the caller saves the root, i.e. until the
	// light client accepted it.
	if _, err := os.Stat(ts.path("integritee-dev")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stored before save: %v", err)
	}
	if err := ts.save(r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "trust-integritee-dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]any
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	if stored["chain_id"] != "integritee-dev" || stored["height"] != float64(1) || stored["hash"] != want.Hash {
		t.Errorf("stored %s", b)
	}

	// A later run uses the stored root, without a warning, after checking
	// the node's block at its height.
	warn.Reset()
	chain.calls = 0
	r, first, err = ts.root(ctx, "integritee-dev", defaultVerify(), chain.hashAt)
	if err != nil || first || r != want {
		t.Fatalf("second run: %+v first=%v %v", r, first, err)
	}
	if warn.Len() != 0 || chain.calls != 1 {
		t.Errorf("second run: warning %q, %d node calls", warn.String(), chain.calls)
	}
	// Only the trust file was written; the keystore still lists no account.
	if ids, err := account.NewKeystore(dir).List(); err != nil || len(ids) != 0 {
		t.Errorf("keystore lists %v %v", ids, err)
	}
}

func TestStoredRootOfAnotherChainIsRefused(t *testing.T) {
	dir := t.TempDir()
	ts := trustStore{dir: dir, warn: new(bytes.Buffer)}
	chain := &fakeChain{hashes: map[int64][]byte{1: hash32(1)}}
	// A file renamed (or a chain id sanitised to the same name: "dev/x"
	// and "dev_x" share trust-dev_x.json) holds another chain's root.
	if err := ts.save(trustRoot{ChainID: "dev/x", Height: 1, Hash: strings.Repeat("01", 32)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "trust-dev_x.json")); err != nil {
		t.Fatal(err)
	}
	_, _, err := ts.root(context.Background(), "dev_x", defaultVerify(), chain.hashAt)
	if !errors.Is(err, errTrustRoot) || !strings.Contains(err.Error(), `is for chain "dev/x" but the node is on chain "dev_x"`) {
		t.Fatalf("got %v", err)
	}
	if chain.calls != 0 {
		t.Error("asked the node after refusing the root")
	}
	// The owner of the file still gets it.
	if r, first, err := ts.root(context.Background(), "dev/x", defaultVerify(), chain.hashAt); err != nil || first || r.ChainID != "dev/x" {
		t.Errorf("own chain: %+v %v %v", r, first, err)
	}
}

func TestMismatchingHashIsRefused(t *testing.T) {
	dir := t.TempDir()
	ts := trustStore{dir: dir, warn: new(bytes.Buffer)}
	if err := ts.save(trustRoot{ChainID: "integritee-dev", Height: 1, Hash: strings.Repeat("AB", 32)}); err != nil {
		t.Fatal(err)
	}
	// The node was reset: same chain id, another block 1.
	reset := &fakeChain{hashes: map[int64][]byte{1: hash32(0xef)}}
	_, _, err := ts.root(context.Background(), "integritee-dev", defaultVerify(), reset.hashAt)
	if !errors.Is(err, errTrustRoot) || !strings.Contains(err.Error(), "the node's block 1 has hash "+strings.Repeat("EF", 32)) ||
		!strings.Contains(err.Error(), "different chain") {
		t.Fatalf("stored root: %v", err)
	}
	// The stored root is kept, not replaced by the node's.
	b, _ := os.ReadFile(ts.path("integritee-dev"))
	if !strings.Contains(string(b), strings.Repeat("AB", 32)) {
		t.Errorf("trust file now %s", b)
	}

	// A root given by flags is checked the same way, and wins over the file.
	o := defaultVerify()
	o.TrustHeight, o.TrustHash = 1, "0x"+strings.Repeat("ab", 32)
	_, _, err = ts.root(context.Background(), "integritee-dev", o, reset.hashAt)
	if !errors.Is(err, errTrustRoot) || !strings.Contains(err.Error(), "--trust-hash says "+strings.Repeat("AB", 32)) {
		t.Fatalf("flags: %v", err)
	}
	o.TrustHash = strings.Repeat("ef", 32)
	if r, first, err := ts.root(context.Background(), "integritee-dev", o, reset.hashAt); err != nil || first || r.Hash != strings.Repeat("EF", 32) {
		t.Errorf("matching flags: %+v %v %v", r, first, err)
	}
	// A height the node does not have is an error, not a first use.
	o.TrustHeight = 9
	if _, _, err := ts.root(context.Background(), "integritee-dev", o, reset.hashAt); !errors.Is(err, errTrustRoot) || !strings.Contains(err.Error(), "block 9: height too high") {
		t.Errorf("missing height: %v", err)
	}
}

func TestCorruptTrustFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	ts := trustStore{dir: dir, warn: new(bytes.Buffer)}
	chain := &fakeChain{hashes: map[int64][]byte{1: hash32(1)}}
	for _, content := range []string{"{", `{"chain_id":"c","height":0,"hash":"` + strings.Repeat("01", 32) + `"}`, `{"chain_id":"c","height":1,"hash":"zz"}`} {
		if err := os.WriteFile(ts.path("c"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, first, err := ts.root(context.Background(), "c", defaultVerify(), chain.hashAt); !errors.Is(err, errTrustRoot) || first {
			t.Errorf("%s: %v first=%v", content, err, first)
		}
	}
}

func TestVerifyFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = accepted
	}{
		{nil, ""},
		{[]string{"--verify"}, ""},
		{[]string{"--verify", "--trust-height", "5", "--trust-hash", strings.Repeat("0a", 32)}, ""},
		{[]string{"--trust-height", "5", "--trust-hash", strings.Repeat("0a", 32)}, "--trust-height needs --verify"},
		{[]string{"--trusting-period", "1h"}, "--trusting-period needs --verify"},
		{[]string{"--verify", "--trust-height", "5"}, "go together"},
		{[]string{"--verify", "--trust-hash", strings.Repeat("0a", 32)}, "go together"},
		{[]string{"--verify", "--trust-height", "5", "--trust-hash", "0a0b"}, "not a 32-byte hex block hash"},
		{[]string{"--verify", "--trust-height", "-1", "--trust-hash", strings.Repeat("0a", 32)}, "must be positive"},
		{[]string{"--verify", "--trusting-period", "0s"}, "must be positive"},
	} {
		var o verifyOpts
		cmd := &cobra.Command{Use: "x"}
		o.addFlags(cmd)
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		err := o.check(cmd)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
