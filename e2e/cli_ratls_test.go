package e2e

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/enclave/tee"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
)

// mitmTEE is a simulation TEE of any mrenclave, as anybody can run one:
// its quotes are made at time at; with forge they are signed by a key other
// than the (public) simulation key.
type mitmTEE struct {
	mr    attestation.MrEnclave
	at    time.Time
	forge bool
}

var _ tee.Backend = mitmTEE{}

func (mitmTEE) Name() string                       { return sim.Method }
func (b mitmTEE) MrEnclave() attestation.MrEnclave { return b.mr }
func (mitmTEE) Debug() bool                        { return false }
func (mitmTEE) Verifier() attestation.Verifier     { return sim.NewVerifier() }
func (mitmTEE) SealingKey(string) ([32]byte, error) {
	return [32]byte{}, errors.New("mitm: no sealing")
}

func (b mitmTEE) Quote(rd [64]byte) ([]byte, error) {
	if !b.forge {
		return sim.NewQuote(b.mr, false, rd, b.at), nil
	}
	q := sim.Quote{Version: sim.Version, MrEnclave: b.mr, ReportData: rd, Timestamp: b.at.UnixMilli()}
	seed := sha256.Sum256([]byte("e2e: not the simulation key"))
	q.Signature = ed25519.Sign(ed25519.NewKeyFromSeed(seed[:]), q.SigningBytes())
	return q.Encode(), nil
}

// startMITM serves TLS on a free loopback port with an RA-TLS certificate
// of b naming holder, and returns the port and a count of the HTTP requests
// (websocket upgrades) it received.
func startMITM(t *testing.T, b mitmTEE, holder account.ID) (int, *atomic.Int64) {
	t.Helper()
	cert, err := ratls.NewBoundCertificate(b, holder, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", ratls.ServerConfig(cert))
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "man in the middle", http.StatusBadGateway)
	})}
	go srv.Serve(l) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port, &requests
}

// wantRefused runs a read-only trusted command against port and requires
// it to fail naming every part.
func wantRefused(t *testing.T, n *nodeProc, dir string, port int, parts ...string) {
	t.Helper()
	r := n.cli(t, dir, "-U", "wss://127.0.0.1", "-P", strconv.Itoa(port), "trusted", "get-fingerprint")
	if r.code == 0 {
		t.Fatalf("get-fingerprint against port %d succeeded (%q); want a refusal naming %q", port, r.out, parts)
	}
	for _, p := range parts {
		if !strings.Contains(r.err, p) {
			t.Errorf("get-fingerprint against port %d: stderr %q does not name %q", port, r.err, p)
		}
	}
	t.Logf("refused: %s", strings.TrimSpace(r.err))
}

// TestCLIRATLSCheck: the CLI accepts the validateer's trusted RPC only from
// a registered enclave its quote names, checked against the chain's facts
// read by proof: a man in the middle with a simulated quote of the right
// mrenclave naming an unregistered account, one with a forged quote naming
// the worker's account, one with a stale quote and one naming an enclave
// registered with another method are refused before they see a request;
// once sudo forbids simulated quotes, the real worker (registered with sim)
// is refused too, and --insecure still skips every check.
func TestCLIRATLSCheck(t *testing.T) {
	env := newBridgeEnv(t)
	n := env.n
	w := startWorker(t, n, "")
	dir := t.TempDir()

	// The real worker passes, as before; the check read the chain by proof
	// (the trust root is stored on first use).
	fp := w.mustT(t, dir, "trusted", "get-fingerprint")
	mr, err := attestation.ParseMrEnclave(fp)
	if err != nil {
		t.Fatalf("get-fingerprint %q: %v", fp, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "my_keystore", "trust-integritee-dev.json")); err != nil {
		t.Errorf("no trust root stored by the worker check: %v", err)
	}
	if got := w.mustT(t, dir, "trusted", "--mrenclave", fp, "get-shard"); got != fp {
		t.Errorf("get-shard %q, want %q", got, fp)
	}
	var enclaves []teerex.Enclave
	n.query(t, "/teerex/enclaves", &enclaves)
	if len(enclaves) != 1 || enclaves[0].MrEnclave != mr || enclaves[0].Method != sim.Method {
		t.Fatalf("registered enclaves %+v; want the worker's, with sim", enclaves)
	}
	worker := enclaves[0].Signer

	// An enclave registered without attestation (skip), same mrenclave.
	skipper := mustDevPair(t, "//Charlie")
	inc := env.mustSubmit(skipper, env.call(teerex.ModuleName, "register_enclave",
		teerex.RegisterEnclaveArgs{Proof: mr[:], URL: "wss://127.0.0.1:1", Method: teerex.MethodSkip}))
	// The CLI reads the latest state whose next header exists.
	n.waitHeight(t, inc.Height+1, 30*time.Second)

	stranger := mustDevPair(t, "//Mallory").ID()
	cases := []struct {
		name   string
		b      mitmTEE
		holder account.ID
		parts  []string
	}{
		{"sim quote of the worker's mrenclave naming an unregistered account", mitmTEE{mr: mr, at: time.Now()}, stranger,
			[]string{"worker's enclave " + stranger.String() + " (mrenclave " + fp + ") is not registered on the parentchain"}},
		{"forged quote naming the worker's account", mitmTEE{mr: mr, at: time.Now(), forge: true}, worker,
			[]string{"attestation check failed", "quote does not verify", "signature does not verify"}},
		{"stale quote naming the worker's account", mitmTEE{mr: mr, at: time.Now().Add(-3 * time.Hour)}, worker,
			[]string{"quote is 3h old, the chain allows 10m"}},
		{"sim quote naming an enclave registered with skip", mitmTEE{mr: mr, at: time.Now()}, skipper.ID(),
			[]string{"worker's enclave " + skipper.ID().String() + " is registered with method skip, its quote says sim"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, requests := startMITM(t, c.b, c.holder)
			wantRefused(t, n, dir, port, c.parts...)
			if got := requests.Load(); got != 0 {
				t.Errorf("the man in the middle received %d requests", got)
			}
		})
	}

	// Sudo forbids simulated quotes: the real worker is refused as soon as
	// the CLI's proven height includes the change.
	setFlags := env.call(teerex.ModuleName, "set_security_flags", teerex.SetSecurityFlagsArgs{Flags: teerex.SecurityFlags{AllowSkip: true, AllowDebug: true}})
	env.mustSubmit(mustDevPair(t, "//Alice"), env.call(sudo.ModuleName, "sudo", sudo.SudoArgs{Call: setFlags}))
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := w.tcli(t, dir, "trusted", "get-fingerprint")
		if r.code != 0 && strings.Contains(r.err, "the chain's security flags forbid simulated quotes") {
			if want := fmt.Sprintf("worker wss://127.0.0.1:%d: ", w.trusted); !strings.Contains(r.err, want) {
				t.Errorf("refusal %q does not name the worker %q", r.err, want)
			}
			t.Logf("refused: %s", strings.TrimSpace(r.err))
			break
		}
		if r.code != 0 || time.Now().After(deadline) {
			t.Fatalf("after sudo forbade simulated quotes: exit %d, stdout %q, stderr %q; want the worker refused because the chain forbids simulated quotes", r.code, r.out, r.err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// --insecure skips every check (debugging only).
	if got := w.mustT(t, dir, "--insecure", "trusted", "get-fingerprint"); got != fp {
		t.Errorf("--insecure get-fingerprint %q, want %q", got, fp)
	}
}
