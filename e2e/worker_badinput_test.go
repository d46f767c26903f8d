package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/rpcclient"
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

// The bad input the trusted RPC refuses (malformed and oversize JSON-RPC,
// unknown methods, ciphertexts for another key or tampered, wrong
// signatures, replays, calls for another shard or mrenclave, foreign
// getters, a second unshielding, garbage blocks) is in the bad-input
// catalogue, TestBadInputCatalogue (badinput_catalogue_test.go), with the
// rest of the network's bad input, against one node and one validateer.

func ptr[T any](v T) *T { return &v }

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
