package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	"github.com/cometbft/cometbft/light"
	"github.com/cometbft/cometbft/light/provider"
	lighthttp "github.com/cometbft/cometbft/light/provider/http"
	lightdb "github.com/cometbft/cometbft/light/store/db"
	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/proof"
)

// This file is the CLI's own check of what a node answers: a proven state
// read (client.ProveKey) is accepted only if CometBFT's light client, started
// from a trust root, verifies the header that commits to it, and the proof
// verifies against that header's app hash.

// DefaultTrustingPeriod is --trusting-period's default: how old the trust
// root's header may be. It is meant for dev and test chains; on a chain with
// an unbonding period it must stay well below it.
const DefaultTrustingPeriod = 14 * 24 * time.Hour

// verifyOpts are the flags of a verified read.
type verifyOpts struct {
	// Verify asks for the verified read.
	Verify bool
	// TrustHeight and TrustHash are a block the user trusts (both or
	// neither); without them the root is taken on first use.
	TrustHeight int64
	TrustHash   string
	// TrustingPeriod bounds the age of the trust root's header.
	TrustingPeriod time.Duration
}

func (o *verifyOpts) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.Verify, "verify", false, "verify the answer: a light client checks the header back to the trust root, then the state proof against its app hash")
	f.Int64Var(&o.TrustHeight, "trust-height", 0, "with --verify: height of a block you trust (with --trust-hash); default: the root stored in the keystore, or block 1 on first use")
	f.StringVar(&o.TrustHash, "trust-hash", "", "with --verify: hex hash of the block at --trust-height, from a source you trust")
	f.DurationVar(&o.TrustingPeriod, "trusting-period", DefaultTrustingPeriod, "with --verify: how old the trust root's header may be")
}

// check validates the flags' combination.
func (o *verifyOpts) check(cmd *cobra.Command) error {
	if !o.Verify {
		for _, n := range []string{"trust-height", "trust-hash", "trusting-period"} {
			if cmd.Flags().Changed(n) {
				return fmt.Errorf("--%s needs --verify", n)
			}
		}
		return nil
	}
	if (o.TrustHeight != 0) != (o.TrustHash != "") {
		return errors.New("--trust-height and --trust-hash go together")
	}
	if o.TrustHeight < 0 {
		return fmt.Errorf("--trust-height %d: must be positive", o.TrustHeight)
	}
	if o.TrustHash != "" {
		if _, err := parseBlockHash(o.TrustHash); err != nil {
			return fmt.Errorf("--trust-hash: %w", err)
		}
	}
	if o.TrustingPeriod <= 0 {
		return fmt.Errorf("--trusting-period %s: must be positive", o.TrustingPeriod)
	}
	return nil
}

// parseBlockHash parses a 32-byte block hash in hex, with or without 0x.
func parseBlockHash(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%q is not a 32-byte hex block hash", s)
	}
	return b, nil
}

// trustRoot is the block a light client starts from. Stored as
// trust-<chain id>.json in the keystore directory.
type trustRoot struct {
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"`
	// Hash is the block hash, upper-case hex as CometBFT prints it.
	Hash string `json:"hash"`
}

// hashAtFunc returns the hash the node claims for its block at height.
type hashAtFunc func(ctx context.Context, height int64) ([]byte, error)

// trustStore keeps trust roots taken on first use.
type trustStore struct {
	dir  string
	warn io.Writer
}

// unsafeFileChars are the characters a chain id may have that a file name
// should not; two chain ids that differ only there share a file, which the
// chain id inside it tells apart.
var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// path is where chainID's root is stored.
func (s trustStore) path(chainID string) string {
	return filepath.Join(s.dir, "trust-"+unsafeFileChars.ReplaceAllString(chainID, "_")+".json")
}

// errTrustRoot marks a refused trust root.
var errTrustRoot = errors.New("trust root")

// root returns the trust root for the node's chain chainID: the flags' if
// given, else the stored one, else (trust on first use) the node's block 1,
// with a warning; firstUse says the caller should save it once the light
// client accepted it. A stored root is refused if it belongs to another chain
// id or the node's block at its height has another hash: the node is then on
// a different chain than the one first trusted.
func (s trustStore) root(ctx context.Context, chainID string, o verifyOpts, hashAt hashAtFunc) (r trustRoot, firstUse bool, err error) {
	if o.TrustHash != "" {
		h, err := parseBlockHash(o.TrustHash)
		if err != nil {
			return r, false, fmt.Errorf("--trust-hash: %w", err)
		}
		r = trustRoot{ChainID: chainID, Height: o.TrustHeight, Hash: strings.ToUpper(hex.EncodeToString(h))}
		return r, false, s.matches(ctx, r, hashAt, "--trust-hash")
	}
	path := s.path(chainID)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &r); err != nil {
			return r, false, fmt.Errorf("%w: %s: %w", errTrustRoot, path, err)
		}
		if r.ChainID != chainID {
			return r, false, fmt.Errorf("%w: %s is for chain %q but the node is on chain %q", errTrustRoot, path, r.ChainID, chainID)
		}
		if _, err := parseBlockHash(r.Hash); err != nil || r.Height <= 0 {
			return r, false, fmt.Errorf("%w: %s: bad height %d or hash %q", errTrustRoot, path, r.Height, r.Hash)
		}
		if err := s.matches(ctx, r, hashAt, path); err != nil {
			return r, false, fmt.Errorf("%w (if the chain was reset on purpose, delete %s to trust the new one on first use)", err, path)
		}
		return r, false, nil
	case errors.Is(err, os.ErrNotExist):
		h, err := hashAt(ctx, 1)
		if err != nil {
			return r, false, fmt.Errorf("%w: block 1: %w", errTrustRoot, err)
		}
		if len(h) != 32 {
			return r, false, fmt.Errorf("%w: the node's block 1 hash %X is not 32 bytes", errTrustRoot, h)
		}
		r = trustRoot{ChainID: chainID, Height: 1, Hash: strings.ToUpper(hex.EncodeToString(h))}
		fmt.Fprintf(s.warn, "WARNING: no trust root for chain %q in %s: trusting the node's block 1 (hash %s) on first use.\n"+
			"  Verification only proves that answers come from this chain. Compare that hash with a source you trust,\n"+
			"  or pass --trust-height/--trust-hash. The root is stored in %s for later runs.\n", chainID, s.dir, r.Hash, path)
		return r, true, nil
	default:
		return r, false, fmt.Errorf("%w: %w", errTrustRoot, err)
	}
}

// matches checks that the node's block at r's height has r's hash.
func (s trustStore) matches(ctx context.Context, r trustRoot, hashAt hashAtFunc, from string) error {
	want, _ := parseBlockHash(r.Hash)
	got, err := hashAt(ctx, r.Height)
	if err != nil {
		return fmt.Errorf("%w: block %d: %w", errTrustRoot, r.Height, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: the node's block %d has hash %X, but %s says %s: the node is on a different chain than the trusted one",
			errTrustRoot, r.Height, got, from, r.Hash)
	}
	return nil
}

// save stores a root taken on first use.
func (s trustStore) save(r trustRoot) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", errTrustRoot, err)
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	path := s.path(r.ChainID)
	tmp, err := os.CreateTemp(s.dir, ".trust-*.tmp")
	if err != nil {
		return fmt.Errorf("%w: %w", errTrustRoot, err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("%w: %s: %w", errTrustRoot, path, err)
	}
	return nil
}

// nodeHashAt returns the hash of the node's header at height, unverified.
func nodeHashAt(c *client.Client) hashAtFunc {
	return func(ctx context.Context, height int64) ([]byte, error) {
		res, err := c.RPC().Header(ctx, &height)
		if err != nil {
			return nil, err
		}
		if res == nil || res.Header == nil {
			return nil, fmt.Errorf("node has no header %d", height)
		}
		return res.Header.Hash(), nil
	}
}

// verifiedAppHash returns the app hash in the node's header at height, after
// CometBFT's light client verified that header's validator signatures back
// to the trust root. Failures are "header verification failed: ...".
//
// The light client's primary and its only witness are the same node: the
// library needs at least one witness, and the CLI knows only one node. Such
// a check proves that the header was signed, through the chain of validator
// sets, by the validators the trust root names, so a node cannot forge state
// its validators did not sign; it cannot detect a fork signed by those
// validators themselves (a light-client attack), which needs a second,
// independent node as witness.
//
// warn receives the trust-on-first-use warning.
func (e *env) verifiedAppHash(ctx context.Context, warn io.Writer, c *client.Client, o verifyOpts, height int64) ([]byte, error) {
	fail := func(err error) ([]byte, error) { return nil, fmt.Errorf("header verification failed: %w", err) }
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	if err := waitForHeader(ctx, c, height, headerWait); err != nil {
		return fail(err)
	}
	ts := trustStore{dir: e.opts.Keystore, warn: warn}
	root, firstUse, err := ts.root(ctx, chainID, o, nodeHashAt(c))
	if err != nil {
		return fail(err)
	}
	hash, _ := parseBlockHash(root.Hash)
	primary := lighthttp.NewWithClient(chainID, c.RPC())
	witness := lighthttp.NewWithClient(chainID, c.RPC())
	lc, err := light.NewClient(ctx, chainID,
		light.TrustOptions{Period: o.TrustingPeriod, Height: root.Height, Hash: hash},
		primary, []provider.Provider{witness},
		lightdb.New(dbm.NewMemDB(), ""))
	if err != nil {
		return fail(fmt.Errorf("trust root %d/%s: %w", root.Height, root.Hash, err))
	}
	if firstUse {
		if err := ts.save(root); err != nil {
			return nil, err
		}
	}
	lb, err := lc.VerifyLightBlockAtHeight(ctx, height, time.Now())
	if err != nil {
		var exp light.ErrOldHeaderExpired
		if errors.As(err, &exp) {
			return fail(fmt.Errorf("header %d: %w (the trust root, block %d, is older than --trusting-period %s; give a newer --trust-height/--trust-hash)",
				height, err, root.Height, o.TrustingPeriod))
		}
		return fail(fmt.Errorf("header %d: %w", height, err))
	}
	return lb.AppHash, nil
}

// headerWait bounds how long a verified read waits for the header that
// commits to the state it read. The node answers for the latest height whose
// next header exists, except just after a restart, when the only provable
// height is the last committed one, whose next header is a block away.
const headerWait = 15 * time.Second

// waitForHeader waits, polling, until the node reports a block at height.
// The node's word is enough here: the light client checks the header.
func waitForHeader(ctx context.Context, c *client.Client, height int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := c.RPC().Status(ctx)
		if err == nil && st.SyncInfo.LatestBlockHeight >= height {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("header %d: node status: %w", height, err)
			}
			return fmt.Errorf("header %d: the node is at height %d after %s", height, st.SyncInfo.LatestBlockHeight, timeout)
		case <-tick.C:
		}
	}
}

// accountStateKey is an account's key in the balances module's state
// (docs/parentchain.md, "State keys and values").
func accountStateKey(id account.ID) []byte {
	return append([]byte("balances/acct/"), id[:]...)
}

// provenState is the parentchain's state after block Height, whose app
// hash (in the header of Height+1) the light client verified: reads are
// proven against it, so that several keys are read at one height against
// one verified header.
type provenState struct {
	c       *client.Client
	Height  int64
	AppHash []byte
}

// verifiedState reads key through a proof at the node's latest provable
// height, verifies that height's header as verifiedAppHash does (warn gets
// its trust-on-first-use warning), and returns the state, for more reads at
// the same height, and key's proven value (nil: proven absent).
func (e *env) verifiedState(ctx context.Context, warn io.Writer, c *client.Client, o verifyOpts, key []byte) (*provenState, []byte, error) {
	pv, err := c.ProveKey(ctx, key, 0)
	if err != nil {
		return nil, nil, err
	}
	appHash, err := e.verifiedAppHash(ctx, warn, c, o, pv.Height+1)
	if err != nil {
		return nil, nil, err
	}
	s := &provenState{c: c, Height: pv.Height, AppHash: appHash}
	value, err := s.check(pv, key)
	if err != nil {
		return nil, nil, err
	}
	return s, value, nil
}

// read reads key through a proof at s's height and verifies the proof
// against s's app hash; nil is a value proven absent.
func (s *provenState) read(ctx context.Context, key []byte) ([]byte, error) {
	pv, err := s.c.ProveKey(ctx, key, s.Height)
	if err != nil {
		return nil, err
	}
	return s.check(pv, key)
}

// check verifies the node's answer pv for key against s's app hash.
func (s *provenState) check(pv *client.ProvenValue, key []byte) ([]byte, error) {
	if pv.Height != s.Height {
		return nil, fmt.Errorf("node answered for height %d, asked %d", pv.Height, s.Height)
	}
	value := pv.Value
	if len(value) == 0 {
		// JSON-RPC does not tell nil from empty, and no state value is
		// empty: an empty answer is a claim of absence, which the proof
		// must then show.
		value = nil
	}
	if err := proof.Verify(pv.ProofOps, s.AppHash, key, value); err != nil {
		return nil, fmt.Errorf("proof does not verify: %w", err)
	}
	return value, nil
}

// verifiedRead reads key through a proof, verifies it as verifiedAppHash
// does, and returns the proven value (nil: proven absent) and its height.
// It reports the verification on stderr.
func (e *env) verifiedRead(cmd *cobra.Command, c *client.Client, o verifyOpts, key []byte) ([]byte, int64, error) {
	s, value, err := e.verifiedState(ctxOf(cmd), cmd.ErrOrStderr(), c, o, key)
	if err != nil {
		return nil, 0, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "verified at height %d against header %d (app hash %X)\n", s.Height, s.Height+1, s.AppHash)
	return value, s.Height, nil
}
