package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// verifiedLine is what `balance --verify` reports on stderr.
var verifiedLine = regexp.MustCompile(`verified at height (\d+) against header (\d+) \(app hash ([0-9A-F]{64})\)`)

// verifiedBalance runs `balance ACCT --verify` in dir, requires success and
// a report on stderr that matches the node's header, and returns stdout and
// stderr.
func (n *nodeProc) verifiedBalance(t *testing.T, dir, acct string, extra ...string) (out, errOut string) {
	t.Helper()
	r := n.cli(t, dir, append([]string{"balance", acct, "--verify"}, extra...)...)
	if r.code != 0 {
		t.Fatalf("balance %s --verify %v: exit %d: %s%s", acct, extra, r.code, r.out, r.err)
	}
	m := verifiedLine.FindStringSubmatch(r.err)
	if m == nil {
		t.Fatalf("balance %s --verify: stderr %q has no verification report", acct, r.err)
	}
	h, _ := strconv.ParseInt(m[1], 10, 64)
	if next, _ := strconv.ParseInt(m[2], 10, 64); next != h+1 {
		t.Errorf("verified at %d against header %s", h, m[2])
	}
	if want := n.appHashAt(t, h); m[3] != want {
		t.Errorf("reported app hash %s, header %d has %s", m[3], h+1, want)
	}
	return r.out, r.err
}

func TestVerifyBalance(t *testing.T) {
	n := startDevNode(t, "")
	// Height 1 must have its next header before anything is provable.
	n.waitHeight(t, 2, 30*time.Second)
	dir := t.TempDir()
	trustFile := filepath.Join(dir, "my_keystore", "trust-integritee-dev.json")

	// First use: same stdout as the unverified command, a warning, and the
	// root (block 1) stored in the keystore directory.
	plain := n.cli(t, dir, "balance", "//Alice")
	if plain.code != 0 || plain.out != aliceStart+"\n" {
		t.Fatalf("balance //Alice: exit %d %q %q", plain.code, plain.out, plain.err)
	}
	out, errOut := n.verifiedBalance(t, dir, "//Alice")
	if out != plain.out {
		t.Errorf("--verify printed %q, without it %q", out, plain.out)
	}
	if !strings.Contains(errOut, "WARNING") || !strings.Contains(errOut, "on first use") {
		t.Errorf("first use without a warning: %q", errOut)
	}
	b, err := os.ReadFile(trustFile)
	if err != nil {
		t.Fatalf("trust root not stored: %v", err)
	}
	var root struct {
		ChainID string `json:"chain_id"`
		Height  int64  `json:"height"`
		Hash    string `json:"hash"`
	}
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	if root.ChainID != "integritee-dev" || root.Height != 1 || root.Hash != n.blockHash(t, 1) {
		t.Errorf("stored root %s, block 1 is %s", b, n.blockHash(t, 1))
	}
	if ids := n.mustCLI(t, dir, "list-accounts"); ids != "" {
		t.Errorf("the trust file shows in list-accounts: %q", ids)
	}

	// A second run uses the stored root: no warning, file unchanged.
	if out, errOut := n.verifiedBalance(t, dir, "//Alice"); out != plain.out || strings.Contains(errOut, "WARNING") {
		t.Errorf("second run: %q %q", out, errOut)
	}
	if b2, _ := os.ReadFile(trustFile); string(b2) != string(b) {
		t.Errorf("trust file rewritten: %s", b2)
	}

	// An account without state is proven absent and prints 0, as today.
	if out, _ := n.verifiedBalance(t, dir, "//Ferdie"); out != "0\n" {
		t.Errorf("//Ferdie before the transfer: %q", out)
	}

	// After a transfer the verified balances follow, once a header commits
	// to the transfer's block.
	n.mustCLI(t, dir, "transfer", "//Alice", "//Ferdie", "123456789")
	waitFor(t, "the verified balance of //Ferdie to show the transfer", 30*time.Second, func() bool {
		out, _ := n.verifiedBalance(t, dir, "//Ferdie")
		return out == "123456789\n"
	})
	if got := n.balance(t, "//Ferdie"); got != "123456789" {
		t.Errorf("unverified //Ferdie: %s", got)
	}
	alice := n.balance(t, "//Alice")
	if alice == aliceStart {
		t.Fatal("//Alice did not pay")
	}
	if out, _ := n.verifiedBalance(t, dir, "//Alice"); out != alice+"\n" {
		t.Errorf("verified //Alice %q, unverified %q", out, alice)
	}

	// An explicit root works without touching the keystore.
	fresh := t.TempDir()
	h2 := n.blockHash(t, 2)
	if out, errOut := n.verifiedBalance(t, fresh, "//Alice", "--trust-height", "2", "--trust-hash", strings.ToLower(h2)); out != alice+"\n" || strings.Contains(errOut, "WARNING") {
		t.Errorf("explicit root: %q %q", out, errOut)
	}
	if _, err := os.Stat(filepath.Join(fresh, "my_keystore")); !os.IsNotExist(err) {
		t.Errorf("explicit root wrote the keystore dir: %v", err)
	}

	// A bogus --trust-hash is refused: non-zero exit, nothing on stdout.
	bogus := strings.Repeat("AB", 32)
	r := n.cli(t, dir, "balance", "//Alice", "--verify", "--trust-height", "1", "--trust-hash", bogus)
	if r.code == 0 || r.out != "" || !strings.Contains(r.err, "header verification failed: ") || !strings.Contains(r.err, bogus) {
		t.Errorf("bogus --trust-hash: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}

	// A stored root the node's chain does not contain is refused too: the
	// node is on another chain than the one first trusted.
	if err := os.WriteFile(trustFile, []byte(strings.Replace(string(b), root.Hash, bogus, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r = n.cli(t, dir, "balance", "//Alice", "--verify")
	if r.code == 0 || r.out != "" || !strings.Contains(r.err, "header verification failed: trust root") || !strings.Contains(r.err, "different chain") {
		t.Errorf("bogus stored root: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
}
