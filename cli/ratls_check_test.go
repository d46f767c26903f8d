package cli

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	attsim "github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/sidechain"
)

// The worker check's policy over a fixed set of chain facts: each refusal
// names the check that failed, and a worker that passes them all is
// accepted.

var (
	rcNow      = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	rcMr       = attestation.MrEnclave(sha256.Sum256([]byte("ratls check mrenclave")))
	rcOtherMr  = attestation.MrEnclave(sha256.Sum256([]byte("ratls check other mrenclave")))
	rcUpgrade  = attestation.MrEnclave(sha256.Sum256([]byte("ratls check upgraded mrenclave")))
	rcShard    = sidechain.ShardID(rcMr)
	rcUpShard  = sidechain.ShardID(sha256.Sum256([]byte("ratls check upgraded shard")))
	rcLeftOver = sidechain.ShardID(sha256.Sum256([]byte("ratls check shard that moved on")))
)

// rcAccounts are the enclave accounts of the fixed facts.
type rcAccounts struct {
	worker, skip, debug, stranger account.ID
}

func rcIDs(t *testing.T) rcAccounts {
	return rcAccounts{
		worker:   mustPair(t, "//RatlsWorker").ID(),
		skip:     mustPair(t, "//RatlsSkip").ID(),
		debug:    mustPair(t, "//RatlsDebug").ID(),
		stranger: mustPair(t, "//RatlsStranger").ID(),
	}
}

// rcFacts are a dev chain's facts: sim and debug allowed, default quote
// bounds (10m old, 1m ahead); the worker registered with sim and rcMr, an
// enclave registered with skip, a debug one, a stranger proven absent; the
// shard rcShard has no configuration (its own id is its fingerprint),
// rcUpShard authorises rcMr, rcLeftOver moved on to rcUpgrade at height 90.
func rcFacts(ids rcAccounts) *chainFacts {
	return &chainFacts{
		Height: 100,
		Flags:  teerex.SecurityFlags{AllowSkip: true, AllowSim: true, AllowDebug: true},
		Params: teerex.ParamsOf(teerex.Params{}),
		Enclaves: map[account.ID]*teerex.Enclave{
			ids.worker:   {Signer: ids.worker, MrEnclave: rcMr, Method: "sim"},
			ids.skip:     {Signer: ids.skip, MrEnclave: rcMr, Method: teerex.MethodSkip},
			ids.debug:    {Signer: ids.debug, MrEnclave: rcMr, Method: "sim", Debug: true},
			ids.stranger: nil,
		},
		Configs: map[sidechain.ShardID]*enclavebridge.UpgradableShardConfig{
			rcShard:   nil,
			rcUpShard: {Active: enclavebridge.ShardConfig{EnclaveFingerprint: rcMr}},
			rcLeftOver: {
				Active:  enclavebridge.ShardConfig{EnclaveFingerprint: rcMr},
				Pending: &enclavebridge.PendingConfig{Config: enclavebridge.ShardConfig{EnclaveFingerprint: rcUpgrade}, EnactAt: 90},
			},
		},
	}
}

// rcReport is a verified sim quote of rcMr by holder, made at rcNow.
func rcReport(holder account.ID) *attestation.Report {
	return &attestation.Report{Method: "sim", MrEnclave: rcMr, ReportData: ratls.ReportData([]byte("spki"), holder), Timestamp: rcNow}
}

func wantRefusal(t *testing.T, err error, parts ...string) {
	t.Helper()
	wantErr(t, err, parts...)
	if err != nil && !errors.Is(err, errWorkerRefused) && !errors.Is(err, errSimForbidden) {
		t.Errorf("error %q is not a refusal of the policy", err)
	}
}

func TestWorkerCheckAcceptsAnAuthorisedEnclave(t *testing.T) {
	ids := rcIDs(t)
	f := rcFacts(ids)
	r := rcReport(ids.worker)
	if err := f.checkQuote(r, nil, rcNow); err != nil {
		t.Fatalf("refused: %v", err)
	}
	if err := f.checkQuote(r, &rcMr, rcNow); err != nil {
		t.Fatalf("refused with --mrenclave: %v", err)
	}
	// At the bounds: exactly as old and as far ahead as the chain allows.
	if err := f.checkQuote(r, nil, rcNow.Add(10*time.Minute)); err != nil {
		t.Errorf("a quote exactly 10m old refused: %v", err)
	}
	if err := f.checkQuote(r, nil, rcNow.Add(-time.Minute)); err != nil {
		t.Errorf("a quote exactly 1m ahead refused: %v", err)
	}
	// A shard without configuration authorises its own id; a configured
	// one its fingerprint.
	for _, s := range []sidechain.ShardID{rcShard, rcUpShard} {
		if err := f.checkAuthorised(ids.worker, s); err != nil {
			t.Errorf("shard %s: %v", s, err)
		}
	}
	// A debug enclave on a chain that allows them.
	d := rcReport(ids.debug)
	d.Debug = true
	if err := f.checkQuote(d, nil, rcNow); err != nil {
		t.Errorf("debug enclave refused on a chain that allows them: %v", err)
	}
	if err := f.checkAuthorised(ids.debug, rcShard); err != nil {
		t.Errorf("debug enclave unauthorised on a chain that allows them: %v", err)
	}
}

func TestWorkerCheckRefusals(t *testing.T) {
	ids := rcIDs(t)
	other := rcOtherMr
	for _, c := range []struct {
		name  string
		facts func(*chainFacts)
		quote func(*attestation.Report)
		want  *attestation.MrEnclave
		now   time.Time
		parts []string
	}{
		{name: "simulated quotes forbidden", facts: func(f *chainFacts) { f.Flags.AllowSim = false },
			parts: []string{"the chain's security flags forbid simulated quotes"}},
		{name: "debug enclaves forbidden", facts: func(f *chainFacts) { f.Flags.AllowDebug = false },
			quote: func(r *attestation.Report) { r.Debug = true },
			parts: []string{"debug mode, which the chain's security flags forbid"}},
		{name: "stale quote", now: rcNow.Add(3 * time.Hour),
			parts: []string{"quote is 3h old, the chain allows 10m"}},
		{name: "just too old", now: rcNow.Add(10*time.Minute + time.Second),
			parts: []string{"quote is 10m1s old, the chain allows 10m"}},
		{name: "stale under a tighter chain", facts: func(f *chainFacts) { f.Params.MaxQuoteAgeMs = 30_000 }, now: rcNow.Add(time.Minute),
			parts: []string{"quote is 1m old, the chain allows 30s"}},
		{name: "quote from the future", now: rcNow.Add(-5 * time.Minute),
			parts: []string{"quote is dated 5m in the future, the chain allows 1m"}},
		{name: "another --mrenclave", want: &other,
			parts: []string{"worker's enclave " + rcMr.String() + " is not the requested --mrenclave " + other.String()}},
		{name: "no account in the quote", quote: func(r *attestation.Report) { r.ReportData = ratls.ReportData([]byte("spki"), account.ID{}) },
			parts: []string{"names no enclave account"}},
		{name: "unregistered account", quote: func(r *attestation.Report) { r.ReportData = ratls.ReportData([]byte("spki"), ids.stranger) },
			parts: []string{"worker's enclave " + ids.stranger.String() + " (mrenclave " + rcMr.String() + ") is not registered on the parentchain"}},
		{name: "registered with another mrenclave", quote: func(r *attestation.Report) { r.MrEnclave = rcOtherMr },
			parts: []string{"worker's enclave " + ids.worker.String() + " is registered with mrenclave " + rcMr.String() + ", its quote says " + rcOtherMr.String()}},
		{name: "registered with another method", quote: func(r *attestation.Report) { r.ReportData = ratls.ReportData([]byte("spki"), ids.skip) },
			parts: []string{"worker's enclave " + ids.skip.String() + " is registered with method skip, its quote says sim"}},
		{name: "registered in another debug mode", quote: func(r *attestation.Report) { r.Debug = true },
			parts: []string{"worker's enclave " + ids.worker.String() + " is registered with debug mode false, its quote says true"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := rcFacts(ids)
			if c.facts != nil {
				c.facts(f)
			}
			r := rcReport(ids.worker)
			if c.quote != nil {
				c.quote(r)
			}
			now := c.now
			if now.IsZero() {
				now = rcNow
			}
			wantRefusal(t, f.checkQuote(r, c.want, now), c.parts...)
		})
	}
}

func TestWorkerCheckRefusesUnauthorisedEnclaves(t *testing.T) {
	ids := rcIDs(t)
	f := rcFacts(ids)
	// A configured shard that authorises another build.
	f.Configs[rcUpShard].Active.EnclaveFingerprint = rcUpgrade
	wantRefusal(t, f.checkAuthorised(ids.worker, rcUpShard),
		"enclave "+ids.worker.String()+" is not authorised for shard "+rcUpShard.String(), "runs mrenclave "+rcMr.String(), "the shard authorises "+rcUpgrade.String())
	// A shard whose pending upgrade was enacted by the height read at.
	wantRefusal(t, f.checkAuthorised(ids.worker, rcLeftOver), "is not authorised for shard "+rcLeftOver.String(), "the shard authorises "+rcUpgrade.String())
	// ... but not yet at an earlier height.
	f.Height = 89
	if err := f.checkAuthorised(ids.worker, rcLeftOver); err != nil {
		t.Errorf("before the upgrade's enactment: %v", err)
	}
	// A shard whose id is another mrenclave and that has no configuration.
	f.Configs[sidechain.ShardID(rcOtherMr)] = nil
	wantRefusal(t, f.checkAuthorised(ids.worker, sidechain.ShardID(rcOtherMr)), "is not authorised for shard "+sidechain.ShardID(rcOtherMr).String())
	// A registration the tightened flags no longer allow.
	f.Flags.AllowSkip = false
	wantRefusal(t, f.checkAuthorised(ids.skip, rcShard), "enclave "+ids.skip.String()+" is not authorised for shard "+rcShard.String(),
		"the chain's security flags no longer allow its registration (method skip")
	f.Flags.AllowDebug = false
	wantRefusal(t, f.checkAuthorised(ids.debug, rcShard), "security flags no longer allow its registration (method sim, debug mode true)")
	f.Flags.AllowSim = false
	wantRefusal(t, f.checkAuthorised(ids.worker, rcShard), "security flags no longer allow its registration (method sim, debug mode false)")
	// Unregistered.
	wantRefusal(t, f.checkAuthorised(ids.stranger, rcShard), "worker's enclave "+ids.stranger.String()+" is not registered")
}

func TestWorkerCheckNeedsTheFactsItJudges(t *testing.T) {
	ids := rcIDs(t)
	f := rcFacts(ids)
	unread := mustPair(t, "//RatlsUnread").ID()
	if err := f.checkQuote(rcReport(unread), nil, rcNow); err == nil || errors.Is(err, errWorkerRefused) {
		t.Errorf("a registration not read: %v; want a caller's error, no verdict", err)
	}
	if err := f.checkAuthorised(ids.worker, sidechain.ShardID(rcUpgrade)); err == nil || errors.Is(err, errWorkerRefused) {
		t.Errorf("a configuration not read: %v; want a caller's error, no verdict", err)
	}
}

// rcBackend quotes like a sim TEE of any mrenclave, at a fixed time; with
// forge its quotes are signed by a key other than the simulation key.
type rcBackend struct {
	mr    attestation.MrEnclave
	forge bool
}

var _ ratls.Quoter = rcBackend{}

func (rcBackend) Name() string                       { return attsim.Method }
func (b rcBackend) MrEnclave() attestation.MrEnclave { return b.mr }

func (b rcBackend) Quote(rd [64]byte) ([]byte, error) {
	if !b.forge {
		return attsim.NewQuote(b.mr, false, rd, rcNow), nil
	}
	q := attsim.Quote{Version: attsim.Version, MrEnclave: b.mr, ReportData: rd, Timestamp: rcNow.UnixMilli()}
	seed := sha256.Sum256([]byte("not the simulation key"))
	q.Signature = ed25519.Sign(ed25519.NewKeyFromSeed(seed[:]), q.SigningBytes())
	return q.Encode(), nil
}

func rcCert(t *testing.T, b rcBackend, holder account.ID) tls.Certificate {
	t.Helper()
	cert, err := ratls.NewBoundCertificate(b, holder, rcNow)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// The verifiers follow the flags: a real RA-TLS certificate of the worker
// verifies only while the chain allows simulated quotes, a forged quote
// never, and the report of a verified one passes the policy.
func TestWorkerCheckVerifiersFollowTheFlags(t *testing.T) {
	ids := rcIDs(t)
	f := rcFacts(ids)
	cert := rcCert(t, rcBackend{mr: rcMr}, ids.worker)
	r, err := ratls.Verify(cert.Certificate[0], f.verifiers())
	if err != nil {
		t.Fatalf("the worker's certificate: %v", err)
	}
	if ratls.Holder(r) != ids.worker {
		t.Fatalf("holder %s, want %s", ratls.Holder(r), ids.worker)
	}
	if err := f.checkQuote(r, &rcMr, rcNow.Add(time.Minute)); err != nil {
		t.Fatalf("the worker's verified report refused: %v", err)
	}

	forged := rcCert(t, rcBackend{mr: rcMr, forge: true}, ids.worker)
	if _, err := ratls.Verify(forged.Certificate[0], f.verifiers()); !errors.Is(err, ratls.ErrQuoteRejected) || !errors.Is(err, attestation.ErrBadSignature) {
		t.Errorf("forged quote: %v; want a rejected quote", err)
	}

	f.Flags.AllowSim = false
	_, err = ratls.Verify(cert.Certificate[0], f.verifiers())
	if !errors.Is(err, errSimForbidden) {
		t.Errorf("sim certificate under flags forbidding sim: %v; want %v", err, errSimForbidden)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		3 * time.Hour:                         "3h",
		10 * time.Minute:                      "10m",
		90 * time.Second:                      "1m30s",
		30 * time.Second:                      "30s",
		time.Hour + 29*time.Second:            "1h",
		3*time.Hour + 4*time.Second:           "3h",
		time.Hour + 90*time.Second:            "1h2m",
		2*time.Hour + 5*time.Minute:           "2h5m",
		1500 * time.Millisecond:               "2s",
		250 * time.Millisecond:                "250ms",
		10*time.Minute + 400*time.Millisecond: "10m",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
