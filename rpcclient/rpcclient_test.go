package rpcclient_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	attsim "github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/tee/sim"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

var (
	shard    = sidechain.ShardID{7, 7, 7}
	errStale = types.NewError("stf", 6, "StaleNonce", "nonce already used (replay)")
)

// backend is a fake enclave: each submission gets its own hash (from the
// ciphertext) and, if watched, the statuses configured.
type backend struct {
	mu        sync.Mutex
	cts       [][]byte
	blocks    [][]byte
	getter    []byte
	statuses  []rpc.Status
	paced     bool // send statuses one by one with small pauses
	submitErr error
}

func hashOf(ct []byte) sidechain.Hash {
	var h sidechain.Hash
	copy(h[:], ct)
	h[31] = 0x5A
	return h
}

func (b *backend) Submit(_ context.Context, s sidechain.ShardID, ct []byte, w rpc.Watcher) (sidechain.Hash, error) {
	res, err := b.SubmitOperations(context.Background(), s, [][]byte{ct}, w)
	if err != nil {
		return sidechain.Hash{}, err
	}
	return res[0].Hash, res[0].Err
}

// SubmitOperations refuses an empty operation with stf.BadSignature.
func (b *backend) SubmitOperations(_ context.Context, s sidechain.ShardID, ops [][]byte, w rpc.Watcher) ([]rpc.Submission, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.submitErr != nil {
		return nil, b.submitErr
	}
	if s != shard {
		return nil, types.NewError("enclave", 2, "UnknownShard", "this enclave does not serve the shard")
	}
	out := make([]rpc.Submission, len(ops))
	for i, ct := range ops {
		if len(ct) == 0 {
			out[i].Err = types.NewError("stf", 1, "BadSignature", "bad signature")
			continue
		}
		b.cts = append(b.cts, bytes.Clone(ct))
		h := hashOf(ct)
		out[i].Hash = h
		if len(b.statuses) > 1 && (b.statuses[1].Kind == rpc.Ready || b.statuses[1].Kind == rpc.Future) {
			out[i].Status = b.statuses[1] // after Submitted, as the pool reports them
		}
		if w == nil {
			continue
		}
		statuses := append([]rpc.Status(nil), b.statuses...)
		if !b.paced {
			for _, st := range statuses {
				w.Status(h, st)
			}
			continue
		}
		go func() {
			for _, st := range statuses {
				time.Sleep(5 * time.Millisecond)
				w.Status(h, st)
			}
		}()
	}
	return out, nil
}

func (b *backend) Pending(sidechain.ShardID) ([]sidechain.Hash, error) { return nil, nil }

func (b *backend) ExecuteGetter(_ context.Context, s sidechain.ShardID, g []byte) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.getter = bytes.Clone(g)
	if s != shard {
		return "", types.NewError("enclave", 2, "UnknownShard", "this enclave does not serve the shard")
	}
	return "1000000000000", nil
}

func (b *backend) LatestHeader(s sidechain.ShardID) (rpc.Header, error) {
	return rpc.Header{Header: sidechain.Header{Number: 12, Shard: s, ParentHash: sidechain.Hash{1}, NextFinalizationNumber: 50}, Hash: sidechain.Hash{2}}, nil
}

func (b *backend) SubmitForwarded(context.Context, sidechain.ShardID, []byte) (int, error) {
	return 0, nil
}

func (b *backend) ImportBlock(_ context.Context, raw []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.blocks = append(b.blocks, bytes.Clone(raw))
	return nil
}

func (b *backend) ShieldingKey() []byte               { return []byte{1, 2, 3, 0xFF} }
func (b *backend) Fingerprint() attestation.MrEnclave { return attestation.MrEnclave{3} }
func (b *backend) Shard() sidechain.ShardID           { return shard }
func (b *backend) MuRaURL() string                    { return "" }
func (b *backend) UntrustedURL() string               { return "" }
func (b *backend) Health() error                      { return nil }

// enclaveCert returns an RA-TLS certificate of a simulated enclave and its
// mrenclave.
func enclaveCert(t *testing.T) (tls.Certificate, attestation.MrEnclave) {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "service")
	if err := os.WriteFile(exe, []byte("the enclave's code"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := sim.New(sim.Config{Executable: exe, HostSecretPath: filepath.Join(dir, "secret")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ratls.NewCertificate(b, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c, b.MrEnclave()
}

// plainCert returns a self-signed certificate without attestation.
func plainCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "impostor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func serveWith(t *testing.T, b rpc.Backend, cert tls.Certificate) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := rpc.NewServer(b, "v9", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	go s.Serve(l, cert)
	t.Cleanup(func() { s.Close() })
	return "wss://" + l.Addr().String()
}

func serve(t *testing.T, b rpc.Backend) string {
	c, _ := enclaveCert(t)
	return serveWith(t, b, c)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func dialInsecure(t *testing.T, url string) *rpcclient.Client {
	t.Helper()
	c, err := rpcclient.Dial(ctx(t), url, rpcclient.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// drain reads a watch channel until it closes.
func drain(t *testing.T, ch <-chan rpc.Status) []rpc.Status {
	t.Helper()
	var got []rpc.Status
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, s)
		case <-timeout:
			t.Fatalf("watch channel not closed; got %v so far", got)
		}
	}
}

// inBlock is not final: a watch goes on after it until final, the block's
// finalization.
var (
	inBlock = rpc.Status{Kind: rpc.InSidechainBlock, BlockHash: sidechain.Hash{0xB1}}
	final   = rpc.Status{Kind: rpc.Finalized, BlockHash: sidechain.Hash{0xB1}}
)

func TestSubmitReturnsTheOperationHash(t *testing.T) {
	b := &backend{}
	c := dialInsecure(t, serve(t, b))
	h, err := c.Submit(ctx(t), shard, []byte{0xCA, 0xFE})
	if err != nil {
		t.Fatal(err)
	}
	if h != hashOf([]byte{0xCA, 0xFE}).String() {
		t.Fatalf("hash %q", h)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.cts) != 1 || !bytes.Equal(b.cts[0], []byte{0xCA, 0xFE}) {
		t.Fatalf("server got %x", b.cts)
	}
}

func TestSubmitAndWatchDeliversEveryStatusThroughTheFinalOne(t *testing.T) {
	// A fork retracts the first block; the operation's next block is
	// finalized.
	want := []rpc.Status{{Kind: rpc.Submitted}, {Kind: rpc.Future}, {Kind: rpc.Ready},
		{Kind: rpc.InSidechainBlock, BlockHash: sidechain.Hash{0xA1}}, {Kind: rpc.Retracted},
		{Kind: rpc.Ready}, inBlock, final}
	b := &backend{statuses: want, paced: true}
	c := dialInsecure(t, serve(t, b))
	h, ch, err := c.SubmitAndWatch(ctx(t), shard, []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	if h != hashOf([]byte{1}).String() {
		t.Fatalf("hash %q", h)
	}
	got := drain(t, ch)
	if len(got) != len(want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("status %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// The server sends the notifications right after the answer; they may be
// read before SubmitAndWatch registers its channel. None may be lost.
func TestSubmitAndWatchKeepsNotificationsThatBeatTheAnswer(t *testing.T) {
	want := []rpc.Status{{Kind: rpc.Submitted}, {Kind: rpc.Ready}, {Kind: rpc.Invalid, Reason: "stale"}}
	b := &backend{statuses: want}
	c := dialInsecure(t, serve(t, b))
	for i := 0; i < 50; i++ {
		_, ch, err := c.SubmitAndWatch(ctx(t), shard, []byte{byte(i), 0xEE})
		if err != nil {
			t.Fatal(err)
		}
		got := drain(t, ch)
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("round %d: statuses %v, want %v", i, got, want)
		}
	}
}

func TestConcurrentWatchesGetTheirOwnStatuses(t *testing.T) {
	want := []rpc.Status{{Kind: rpc.Submitted}, {Kind: rpc.Ready}, inBlock, final}
	b := &backend{statuses: want, paced: true}
	c := dialInsecure(t, serve(t, b))
	var wg sync.WaitGroup
	errs := make(chan string, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, ch, err := c.SubmitAndWatch(ctx(t), shard, []byte{byte(i), 0x01})
			if err != nil {
				errs <- err.Error()
				return
			}
			var got []rpc.Status
			timeout := time.After(5 * time.Second)
		read:
			for {
				select {
				case s, ok := <-ch:
					if !ok {
						break read
					}
					got = append(got, s)
				case <-timeout:
					errs <- fmt.Sprintf("watch %d not closed; got %v", i, got)
					return
				}
			}
			if len(got) != len(want) || got[2] != inBlock || got[3] != final {
				errs <- "watch " + string(rune('0'+i)) + " got a wrong sequence"
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// A watcher that reads late may lose intermediate statuses, but the final
// one must always come: it is what the client waits for.
func TestSlowWatcherStillGetsTheFinalStatus(t *testing.T) {
	statuses := []rpc.Status{{Kind: rpc.Submitted}}
	for i := 0; i < 20; i++ {
		statuses = append(statuses, rpc.Status{Kind: rpc.Future}, rpc.Status{Kind: rpc.Ready})
	}
	statuses = append(statuses, inBlock, final)
	b := &backend{statuses: statuses}
	c := dialInsecure(t, serve(t, b))
	_, ch, err := c.SubmitAndWatch(ctx(t), shard, []byte{9})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the watcher is busy; every update has arrived
	got := drain(t, ch)
	if len(got) == 0 || got[len(got)-1] != final {
		t.Fatalf("the last of %d statuses is %+v, want the final %+v", len(got), got[len(got)-1], final)
	}
}

func TestExecuteGetterHeaderShieldingKeyAndStrings(t *testing.T) {
	b := &backend{}
	c := dialInsecure(t, serve(t, b))
	v, err := c.ExecuteGetter(ctx(t), shard, []byte("signed getter"))
	if err != nil || v != "1000000000000" {
		t.Fatalf("ExecuteGetter = %q, %v", v, err)
	}
	b.mu.Lock()
	g := string(b.getter)
	b.mu.Unlock()
	if g != "signed getter" {
		t.Fatalf("server got getter %q", g)
	}
	h, err := c.Header(ctx(t), shard)
	if err != nil {
		t.Fatal(err)
	}
	if h.Number != 12 || h.Shard != shard || h.ParentHash != (sidechain.Hash{1}) || h.NextFinalizationNumber != 50 || h.Hash != (sidechain.Hash{2}) {
		t.Fatalf("Header = %+v", h)
	}
	k, err := c.ShieldingKey(ctx(t))
	if err != nil || !bytes.Equal(k, []byte{1, 2, 3, 0xFF}) {
		t.Fatalf("ShieldingKey = %x, %v", k, err)
	}
	for method, want := range map[string]string{
		"system_version":        "v9",
		"author_getShard":       shard.String(),
		"author_getFingerprint": (attestation.MrEnclave{3}).String(),
	} {
		if got, err := c.String(ctx(t), method); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", method, got, err, want)
		}
	}
	if err := c.ImportBlock(ctx(t), []byte("raw block")); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.blocks) != 1 || string(b.blocks[0]) != "raw block" {
		t.Fatalf("server imported %q", b.blocks)
	}
}

func TestEnclaveErrorsMapToNamedErrors(t *testing.T) {
	b := &backend{submitErr: errStale.Wrap("nonce 0, next is 1")}
	c := dialInsecure(t, serve(t, b))
	_, err := c.Submit(ctx(t), shard, []byte{1})
	var e *rpcclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("Submit error %T %v, want *rpcclient.Error", err, err)
	}
	if e.Code != rpc.CodeApplication || e.Name != "stf.StaleNonce" {
		t.Fatalf("error = %+v, want code %d name stf.StaleNonce", e, rpc.CodeApplication)
	}
	if !strings.Contains(e.Error(), "nonce 0, next is 1") {
		t.Fatalf("message %q lost the detail", e.Error())
	}
	// SubmitAndWatch maps the same way and returns no channel.
	_, ch, err := c.SubmitAndWatch(ctx(t), shard, []byte{1})
	if !errors.As(err, &e) || e.Name != "stf.StaleNonce" || ch != nil {
		t.Fatalf("SubmitAndWatch: %v, channel %v", err, ch)
	}
	// A getter for another shard: the enclave's named error.
	_, err = c.ExecuteGetter(ctx(t), sidechain.ShardID{1}, []byte{1})
	if !errors.As(err, &e) || e.Name != "enclave.UnknownShard" {
		t.Fatalf("ExecuteGetter of another shard: %v", err)
	}
}

func TestProtocolErrorsMapWithoutAName(t *testing.T) {
	c := dialInsecure(t, serve(t, &backend{}))
	err := c.Call(ctx(t), "no_such_method", nil, nil)
	var e *rpcclient.Error
	if !errors.As(err, &e) || e.Code != rpc.CodeMethodNotFound || e.Name != "" {
		t.Fatalf("unknown method: %#v", err)
	}
	err = c.Call(ctx(t), "chain_getHeader", []any{"not a shard"}, nil)
	if !errors.As(err, &e) || e.Code != rpc.CodeInvalidParams || e.Name != "" {
		t.Fatalf("bad shard: %#v", err)
	}
}

func raVerifiers() map[string]attestation.Verifier { return ratls.Verifiers(attsim.NewVerifier()) }

func TestDialAcceptsAnAttestedEnclaveTheCheckAccepts(t *testing.T) {
	cert, mr := enclaveCert(t)
	url := serveWith(t, &backend{}, cert)
	var seen *attestation.Report
	c, err := rpcclient.Dial(ctx(t), url, rpcclient.Options{
		Verifiers: raVerifiers(),
		Check: func(r *attestation.Report) error {
			seen = r
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if seen == nil || seen.MrEnclave != mr {
		t.Fatalf("Check saw %+v, want mrenclave %s", seen, mr)
	}
	if r := c.Report(); r == nil || r.MrEnclave != mr || r.Method != sim.Method {
		t.Fatalf("Report = %+v", r)
	}
	if v, err := c.String(ctx(t), "system_version"); err != nil || v != "v9" {
		t.Fatalf("system_version over RA-TLS = %q, %v", v, err)
	}
}

func TestDialRefusesAnEnclaveTheCheckRefuses(t *testing.T) {
	cert, _ := enclaveCert(t)
	url := serveWith(t, &backend{}, cert)
	wrong := errors.New("not the registered mrenclave")
	c, err := rpcclient.Dial(ctx(t), url, rpcclient.Options{
		Verifiers: raVerifiers(),
		Check:     func(*attestation.Report) error { return wrong },
	})
	if err == nil {
		c.Close()
		t.Fatal("Dial accepted an enclave its check refused")
	}
	if !errors.Is(err, wrong) && !strings.Contains(err.Error(), wrong.Error()) {
		t.Fatalf("Dial error %v does not say why", err)
	}
}

func TestDialRefusesACertificateWithoutAttestation(t *testing.T) {
	url := serveWith(t, &backend{}, plainCert(t))
	checked := false
	c, err := rpcclient.Dial(ctx(t), url, rpcclient.Options{
		Verifiers: raVerifiers(),
		Check:     func(*attestation.Report) error { checked = true; return nil },
	})
	if err == nil {
		c.Close()
		t.Fatal("Dial accepted a server without attestation")
	}
	if checked {
		t.Fatal("Check ran for a certificate without attestation")
	}
	if !errors.Is(err, ratls.ErrNoAttestation) && !strings.Contains(err.Error(), "no attestation") {
		t.Fatalf("Dial error %v", err)
	}
}

func TestDialWithoutACheckIsRefusedUnlessInsecure(t *testing.T) {
	url := serve(t, &backend{})
	c, err := rpcclient.Dial(ctx(t), url, rpcclient.Options{Verifiers: raVerifiers()})
	if !errors.Is(err, rpcclient.ErrNoCheck) || c != nil {
		t.Fatalf("Dial without Check = %v, %v; want ErrNoCheck", c, err)
	}
	c = dialInsecure(t, url)
	if c.Report() != nil {
		t.Fatal("an insecure connection reports an attestation")
	}
}

func TestDialToNothingFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "wss://" + l.Addr().String()
	l.Close()
	if _, err := rpcclient.Dial(ctx(t), url, rpcclient.Options{Insecure: true, DialTimeout: time.Second}); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
}

func TestCallsAfterCloseFail(t *testing.T) {
	c := dialInsecure(t, serve(t, &backend{}))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.String(ctx(t), "system_version"); err == nil {
		t.Fatal("a call on a closed client succeeded")
	}
}

// A watch whose connection goes away ends at once (closed without a final
// status) instead of leaving the watcher waiting for its timeout.
func TestWatchEndsWhenTheConnectionEnds(t *testing.T) {
	url := serve(t, &backend{statuses: []rpc.Status{{Kind: rpc.Ready}}})
	c, err := rpcclient.Dial(ctx(t), url, rpcclient.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	_, ch, err := c.SubmitAndWatch(ctx(t), shard, []byte("op"))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, s := range drain(t, ch) {
		if s.Final() {
			t.Fatalf("a final status %v was made up", s)
		}
	}
}

func TestSubmitAndWatchOperationsAnswersEachElement(t *testing.T) {
	want := []rpc.Status{{Kind: rpc.Submitted}, {Kind: rpc.Ready}, inBlock, final}
	b := &backend{statuses: want}
	c := dialInsecure(t, serve(t, b))
	ops := [][]byte{{1}, {}, {3}}
	res, err := c.SubmitAndWatchOperations(ctx(t), shard, ops)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	var e *rpcclient.Error
	if !errors.As(res[1].Err, &e) || e.Name != "stf.BadSignature" || res[1].Watch != nil || res[1].Hash != "" {
		t.Fatalf("refused element: %+v", res[1])
	}
	for _, i := range []int{0, 2} {
		if res[i].Err != nil || res[i].Hash != hashOf(ops[i]).String() || res[i].Status != "Ready" {
			t.Fatalf("element %d: %+v", i, res[i])
		}
		got := drain(t, res[i].Watch)
		// Neither Submitted nor the status at submission (Ready): the
		// answer says them.
		if fmt.Sprint(got) != fmt.Sprint(want[2:]) {
			t.Fatalf("element %d: statuses %v, want %v", i, got, want[2:])
		}
	}
	plain, err := c.SubmitOperations(ctx(t), shard, [][]byte{{7}})
	if err != nil || plain[0].Err != nil || plain[0].Watch != nil || plain[0].Hash != hashOf([]byte{7}).String() {
		t.Fatalf("SubmitOperations: %+v, %v", plain, err)
	}
	h, ch, err := c.SubmitAndWatchOperation(ctx(t), shard, []byte{9})
	if err != nil || h != hashOf([]byte{9}).String() {
		t.Fatalf("SubmitAndWatchOperation: %q, %v", h, err)
	}
	if got := drain(t, ch); fmt.Sprint(got) != fmt.Sprint(want[1:]) {
		t.Fatalf("statuses %v", got)
	}
	if _, err := c.SubmitOperation(ctx(t), shard, []byte{}); !errors.As(err, &e) || e.Name != "stf.BadSignature" {
		t.Fatalf("SubmitOperation of a bad operation: %v", err)
	}
}
