package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	attsim "github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/sidechain"
)

// The CLI's check of a worker's trusted RPC (RA-TLS), unless --insecure.
//
// The worker's TLS certificate carries a quote whose report data is
// SHA-256 of the TLS key followed by the enclave's account (attestation/ratls).
// The CLI accepts the worker only if, by the parentchain's facts read by
// proof at one height against one light-client-verified header
// (chainFacts):
//
//   - the quote verifies with a verifier the chain's security flags allow
//     (simulated quotes only while allow_sim), and its enclave is not in
//     debug mode unless allow_debug;
//   - the quote is fresh: at most the chain's max_quote_age_ms old and at
//     most max_future_skew_ms ahead of the CLI's clock;
//   - it is of the --mrenclave, if given;
//   - the account it names is a registered enclave (teerex/enclave/<id>)
//     with the quote's mrenclave, method and debug mode; and
//   - that registration is authorised for the shard the worker serves
//     (enclavebridge.Authorises against the shard's authorised
//     fingerprint and the flags), which the CLI asks the worker over the
//     attested connection before it sends anything else.
//
// The TLS handshake runs every check but the last, so a refused server
// never sees a request; the last runs right after it. A simulated quote is
// no evidence at all (its signing key is public): while the chain allows
// them, anybody can pass this check with a quote naming a registered
// enclave's account.

// errSimForbidden refuses a simulated quote on a chain that forbids them.
var errSimForbidden = errors.New("the chain's security flags forbid simulated quotes")

// errWorkerRefused marks the refusals of the policy below.
var errWorkerRefused = errors.New("worker refused")

// refusal is one of the policy's refusals: its message says which check
// failed; it matches errWorkerRefused.
type refusal struct{ msg string }

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == errWorkerRefused }

func refuse(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

// chainFacts are the parentchain facts a worker is checked against, all
// proven at Height. Enclaves and Configs hold what was read so far: an
// entry with a nil value was proven absent.
type chainFacts struct {
	Height int64
	Flags  teerex.SecurityFlags
	// Params are the registry's parameters, defaults filled in.
	Params   teerex.Params
	Enclaves map[account.ID]*teerex.Enclave
	Configs  map[sidechain.ShardID]*enclavebridge.UpgradableShardConfig
}

// forbiddenVerifier stands for a method the chain's flags forbid: it
// refuses every quote with err.
type forbiddenVerifier struct {
	method string
	err    error
}

func (v forbiddenVerifier) Method() string                             { return v.method }
func (v forbiddenVerifier) Verify([]byte) (*attestation.Report, error) { return nil, v.err }

// verifiers returns the quote verifiers the chain's flags allow: the
// simulation verifier only while allow_sim (otherwise one that refuses
// every simulated quote, naming the flag). No real TEE verifier is built
// into the CLI yet; their quotes fail as an unknown method.
func (f *chainFacts) verifiers() map[string]attestation.Verifier {
	if f.Flags.AllowSim {
		return ratls.Verifiers(attsim.NewVerifier())
	}
	return ratls.Verifiers(forbiddenVerifier{method: attsim.Method, err: errSimForbidden})
}

// checkQuote is the handshake's policy for a verified quote r, at time now;
// want is --mrenclave, if given. The registration of the account r names
// (ratls.Holder) must have been read into f.Enclaves.
func (f *chainFacts) checkQuote(r *attestation.Report, want *attestation.MrEnclave, now time.Time) error {
	if r.Method == attsim.Method && !f.Flags.AllowSim {
		return errSimForbidden
	}
	if r.Debug && !f.Flags.AllowDebug {
		return refuse("the worker's enclave runs in debug mode, which the chain's security flags forbid")
	}
	maxAge := time.Duration(f.Params.MaxQuoteAgeMs) * time.Millisecond
	maxAhead := time.Duration(f.Params.MaxFutureSkewMs) * time.Millisecond
	switch age := now.Sub(r.Timestamp); {
	case age > maxAge:
		return refuse("quote is %s old, the chain allows %s", shortDuration(age), shortDuration(maxAge))
	case -age > maxAhead:
		return refuse("quote is dated %s in the future, the chain allows %s", shortDuration(-age), shortDuration(maxAhead))
	}
	if want != nil && r.MrEnclave != *want {
		return refuse("worker's enclave %s is not the requested --mrenclave %s", r.MrEnclave, *want)
	}
	holder := ratls.Holder(r)
	if holder == (account.ID{}) {
		return refuse("worker's quote (mrenclave %s) names no enclave account, so its TLS key is bound to no registration", r.MrEnclave)
	}
	reg, read := f.Enclaves[holder]
	switch {
	case !read:
		return fmt.Errorf("registration of %s not read", holder) // a bug of the caller
	case reg == nil:
		return refuse("worker's enclave %s (mrenclave %s) is not registered on the parentchain", holder, r.MrEnclave)
	case reg.MrEnclave != r.MrEnclave:
		return refuse("worker's enclave %s is registered with mrenclave %s, its quote says %s", holder, reg.MrEnclave, r.MrEnclave)
	case reg.Method != r.Method:
		return refuse("worker's enclave %s is registered with method %s, its quote says %s", holder, reg.Method, r.Method)
	case reg.Debug != r.Debug:
		return refuse("worker's enclave %s is registered with debug mode %t, its quote says %t", holder, reg.Debug, r.Debug)
	}
	return nil
}

// checkAuthorised is the policy's last check: the enclave registered as
// holder (read into f.Enclaves) is authorised for shard, whose
// configuration must have been read into f.Configs.
func (f *chainFacts) checkAuthorised(holder account.ID, shard sidechain.ShardID) error {
	reg, read := f.Enclaves[holder]
	cfg, cfgRead := f.Configs[shard]
	switch {
	case !read || !cfgRead:
		return fmt.Errorf("registration of %s or configuration of shard %s not read", holder, shard) // a bug of the caller
	case reg == nil:
		return refuse("worker's enclave %s is not registered on the parentchain", holder)
	}
	fp := enclavebridge.AuthorisedFingerprintOf(shard, cfg, f.Height)
	switch {
	case enclavebridge.Authorises(*reg, fp, f.Flags):
		return nil
	case reg.MrEnclave != fp:
		return refuse("enclave %s is not authorised for shard %s: it runs mrenclave %s, the shard authorises %s", holder, shard, reg.MrEnclave, fp)
	default:
		return refuse("enclave %s is not authorised for shard %s: the chain's security flags no longer allow its registration (method %s, debug mode %t)", holder, shard, reg.Method, reg.Debug)
	}
}

// shortDuration prints d rounded to minutes from an hour up, to seconds
// from a second up, else to milliseconds, without zero minutes and
// seconds: "3h", "10m", "1m30s".
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
	case d >= time.Second:
		d = d.Round(time.Second)
	default:
		return d.Round(time.Millisecond).String()
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// workerChain reads the chain facts for the worker check by proof and
// caches them for the whole CLI invocation: all reads are at the height of
// the first, against the one header the light client verified, so that the
// benchmark's many connections cost one verification.
type workerChain struct {
	mu    sync.Mutex
	state *provenState
	facts chainFacts
}

// loadWorkerChain reads the security flags and the parameters by proof at
// the node's latest provable height, after the light client verified its
// header from the trust root (o; the one stored in the keystore, or block 1
// on first use, with a warning on warn).
func loadWorkerChain(ctx context.Context, e *env, warn io.Writer, c *client.Client, o verifyOpts) (*workerChain, error) {
	st, flagsValue, err := e.verifiedState(ctx, warn, c, o, teerex.FlagsKey())
	if err != nil {
		return nil, err
	}
	w := &workerChain{state: st, facts: chainFacts{
		Height:   st.Height,
		Enclaves: map[account.ID]*teerex.Enclave{},
		Configs:  map[sidechain.ShardID]*enclavebridge.UpgradableShardConfig{},
	}}
	if flagsValue != nil {
		if err := c.Codec().Unmarshal(flagsValue, &w.facts.Flags); err != nil {
			return nil, fmt.Errorf("security flags at height %d: proven value does not decode: %w", st.Height, err)
		}
	}
	var params teerex.Params // absent: the defaults
	if _, err := w.readLocked(ctx, teerex.ParamsKey(), &params); err != nil {
		return nil, fmt.Errorf("teerex params: %w", err)
	}
	w.facts.Params = teerex.ParamsOf(params)
	return w, nil
}

// readLocked reads key by proof at the facts' height into v; false: the
// key is proven absent.
func (w *workerChain) readLocked(ctx context.Context, key []byte, v any) (bool, error) {
	value, err := w.state.read(ctx, key)
	if err != nil {
		return false, err
	}
	if value == nil {
		return false, nil
	}
	if err := w.state.c.Codec().Unmarshal(value, v); err != nil {
		return false, fmt.Errorf("height %d: proven value does not decode: %w", w.state.Height, err)
	}
	return true, nil
}

// verifiers returns the verifiers the chain's flags allow.
func (w *workerChain) verifiers() map[string]attestation.Verifier {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.facts.verifiers()
}

// checkQuote reads the registration of the account r names (once per
// invocation) and applies chainFacts.checkQuote.
func (w *workerChain) checkQuote(ctx context.Context, r *attestation.Report, want *attestation.MrEnclave, now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if holder := ratls.Holder(r); holder != (account.ID{}) {
		if _, read := w.facts.Enclaves[holder]; !read {
			var reg teerex.Enclave
			ok, err := w.readLocked(ctx, teerex.EnclaveKey(holder), &reg)
			if err != nil {
				return fmt.Errorf("registration of enclave %s: %w", holder, err)
			}
			w.facts.Enclaves[holder] = nil
			if ok {
				w.facts.Enclaves[holder] = &reg
			}
		}
	}
	return w.facts.checkQuote(r, want, now)
}

// checkAuthorised reads the shard's configuration (once per invocation)
// and applies chainFacts.checkAuthorised.
func (w *workerChain) checkAuthorised(ctx context.Context, holder account.ID, shard sidechain.ShardID) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, read := w.facts.Configs[shard]; !read {
		var cfg enclavebridge.UpgradableShardConfig
		ok, err := w.readLocked(ctx, enclavebridge.ConfigKey(shard), &cfg)
		if err != nil {
			return fmt.Errorf("configuration of shard %s: %w", shard, err)
		}
		w.facts.Configs[shard] = nil
		if ok {
			w.facts.Configs[shard] = &cfg
		}
	}
	return w.facts.checkAuthorised(holder, shard)
}

// workerChain returns the invocation's chain facts, reading them on first
// use. Failing to establish the trust root or to verify a read is an error
// that names the check it was for.
func (w *workerEnv) workerChain(ctx context.Context) (*workerChain, error) {
	if w.chain != nil {
		return w.chain, nil
	}
	node, err := w.nodeClient()
	if err != nil {
		return nil, err
	}
	o := w.trust
	o.Verify = true
	if o.TrustingPeriod <= 0 {
		o.TrustingPeriod = DefaultTrustingPeriod
	}
	warn := w.errOut
	if warn == nil {
		warn = os.Stderr
	}
	c, err := loadWorkerChain(ctx, w.env, warn, node, o)
	if err != nil {
		return nil, fmt.Errorf("checking the worker's attestation needs the parentchain's security flags and enclave registry, read by proof: %w "+
			"(--insecure skips the check, for debugging only)", err)
	}
	w.chain = c
	return c, nil
}
