package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// workerOptions are the global flags that say how to reach a validateer's
// trusted RPC.
type workerOptions struct {
	URL      string
	Port     int
	Insecure bool
}

// workerEnv is env plus the worker flags: what the commands that talk to a
// validateer (shield-funds, trusted ...) get.
type workerEnv struct {
	*env
	worker workerOptions
	// trust is the light client's trust root for the worker check
	// (zero: the root stored in the keystore, or block 1 on first use).
	trust verifyOpts
	// errOut gets the check's warnings (nil: stderr).
	errOut io.Writer
	// chain caches the chain facts the worker check read by proof, so that
	// the benchmark's many connections verify the parentchain once.
	chain *workerChain
}

// pollEvery is how often the CLI polls the node and the worker while it
// waits for something to happen.
const pollEvery = 200 * time.Millisecond

// workerAddress returns the worker's websocket URL, wss://host:port.
func workerAddress(rawURL string, port int) (string, error) {
	u := strings.TrimRight(rawURL, "/")
	parsed, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("--worker-url %q: %w", rawURL, err)
	}
	if parsed.Scheme != "wss" {
		return "", fmt.Errorf("--worker-url %q: scheme must be wss (the trusted RPC is TLS only)", rawURL)
	}
	if parsed.Host == "" || parsed.Port() != "" || (parsed.Path != "" && parsed.Path != "/") {
		return "", fmt.Errorf("--worker-url %q: want wss://host, without port or path (the port is --trusted-worker-port)", rawURL)
	}
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("--trusted-worker-port %d: not a TCP port", port)
	}
	return u + ":" + strconv.Itoa(port), nil
}

// dialWorker connects to the worker's trusted RPC. Unless --insecure, it
// accepts the worker only if its attestation passes the check of
// ratls_check.go against the parentchain's facts, read by proof: the TLS
// handshake checks the quote and its enclave's registration, then the CLI
// asks the worker its shard and checks that the enclave is authorised for
// it. want, if not nil, is the mrenclave the user asked for. --insecure
// skips every check (for debugging only).
func (w *workerEnv) dialWorker(ctx context.Context, want *attestation.MrEnclave) (*rpcclient.Client, error) {
	addr, err := workerAddress(w.worker.URL, w.worker.Port)
	if err != nil {
		return nil, err
	}
	o := rpcclient.Options{Insecure: w.worker.Insecure}
	var chain *workerChain
	var refused error // set by the check, to report it without the TLS layers
	if !o.Insecure {
		if chain, err = w.workerChain(ctx); err != nil {
			return nil, err
		}
		o.Verifiers = chain.verifiers()
		o.Check = func(r *attestation.Report) error {
			err := chain.checkQuote(ctx, r, want, time.Now())
			if err != nil {
				refused = err
			}
			return err
		}
	}
	c, err := rpcclient.Dial(ctx, addr, o)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // rpcclient's wrapping names the address again
		}
		switch {
		case refused != nil:
			return nil, fmt.Errorf("worker %s: %w", addr, refused)
		case errors.Is(err, errSimForbidden):
			return nil, fmt.Errorf("worker %s: %w", addr, errSimForbidden)
		case isRATLSError(err):
			return nil, fmt.Errorf("worker %s: attestation check failed (--insecure skips it, for debugging only): %w", addr, err)
		default:
			return nil, fmt.Errorf("worker %s (-U/-P): %w", addr, err)
		}
	}
	if !o.Insecure {
		// The handshake proved which enclave holds the TLS key; now the
		// enclave must be authorised for the shard it serves. Nothing
		// but this question goes to the worker before the answer.
		shard, err := workerShard(ctx, c)
		if err == nil {
			err = chain.checkAuthorised(ctx, ratls.Holder(c.Report()), shard)
		}
		if err != nil {
			c.Close() //nolint:errcheck
			return nil, fmt.Errorf("worker %s: %w", addr, err)
		}
	}
	if o.Insecure && want != nil {
		// Nothing attested; at least catch a typo early.
		fp, err := workerFingerprint(ctx, c)
		if err != nil {
			c.Close() //nolint:errcheck
			return nil, err
		}
		if fp != *want {
			c.Close() //nolint:errcheck
			return nil, fmt.Errorf("worker %s runs enclave %s, not the requested --mrenclave %s", addr, fp, *want)
		}
	}
	return c, nil
}

func isRATLSError(err error) bool {
	for _, e := range []error{ratls.ErrNoAttestation, ratls.ErrQuoteRejected, ratls.ErrKeyNotBound, ratls.ErrUnknownMethod, ratls.ErrMalformedAttestation, ratls.ErrBadCertificate, ratls.ErrNoPeerCertificate, ratls.ErrRefused} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// workerFingerprint returns the worker's mrenclave as author_getFingerprint
// tells it.
func workerFingerprint(ctx context.Context, c *rpcclient.Client) (attestation.MrEnclave, error) {
	s, err := c.String(ctx, "author_getFingerprint")
	if err != nil {
		return attestation.MrEnclave{}, fmt.Errorf("author_getFingerprint: %w", err)
	}
	m, err := attestation.ParseMrEnclave(s)
	if err != nil {
		return m, fmt.Errorf("author_getFingerprint: %w", err)
	}
	return m, nil
}

// workerShard returns the shard the worker serves.
func workerShard(ctx context.Context, c *rpcclient.Client) (sidechain.ShardID, error) {
	s, err := c.String(ctx, "author_getShard")
	if err != nil {
		return sidechain.ShardID{}, fmt.Errorf("author_getShard: %w", err)
	}
	shard, err := sidechain.ParseShardID(s)
	if err != nil {
		return shard, fmt.Errorf("author_getShard: %w", err)
	}
	return shard, nil
}

// requireShard checks that the worker serves shard: its shielding key is
// only good for ciphertexts meant for that shard.
func requireShard(ctx context.Context, c *rpcclient.Client, shard sidechain.ShardID) error {
	served, err := workerShard(ctx, c)
	if err != nil {
		return err
	}
	if served != shard {
		return fmt.Errorf("the worker serves shard %s, not %s", served, shard)
	}
	return nil
}

// poll calls f at once and then every interval until f reports done or an
// error, or ctx ends (then it returns ctx's error).
func poll(ctx context.Context, interval time.Duration, f func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// timedOut reports whether err is the end of a wait's deadline.
func timedOut(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

// shardActivity returns the latest enclave activity (a processed-block
// confirmation or a configuration call) in the shard's status, or 0.
func shardActivity(ctx context.Context, node *client.Client, shard sidechain.ShardID) (int64, error) {
	var status []enclavebridge.ShardSignerStatus
	if err := node.Query(ctx, "/enclavebridge/shard_status/"+shard.String(), &status); err != nil {
		return 0, err
	}
	var last int64
	for _, s := range status {
		last = max(last, s.LastActivity)
	}
	return last, nil
}

// processedSince reports the height of a confirmation that a validateer of
// shard processed the parentchain block at height (or a later one), or 0 if
// there is none yet.
//
// The shard's status is the signal: an activity after height (a block's
// confirmation is always included after the block). Because the status
// keeps only the latest activity, which may confirm an earlier block, the
// node's event index then tells whether a ProcessedParentchainBlock event
// names height or a later block; a node without a transaction index leaves
// the status as the only evidence.
func processedSince(ctx context.Context, node *client.Client, shard sidechain.ShardID, height int64) (int64, error) {
	last, err := shardActivity(ctx, node, shard)
	if err != nil || last <= height {
		return 0, err
	}
	q := fmt.Sprintf("enclavebridge.ProcessedParentchainBlock.shard='%s' AND enclavebridge.ProcessedParentchainBlock.block_number>=%d", shard, height)
	page, perPage := 1, 1
	res, err := node.RPC().TxSearch(ctx, q, false, &page, &perPage, "asc")
	if err != nil {
		return last, nil //nolint:nilerr // no index: the status is all we have
	}
	if len(res.Txs) == 0 {
		return 0, nil
	}
	return res.Txs[0].Height, nil
}

// waitProcessed waits until a validateer of shard confirms that it
// processed the parentchain block at height, and returns the height of the
// confirmation.
func waitProcessed(ctx context.Context, node *client.Client, shard sidechain.ShardID, height int64) (int64, error) {
	var at int64
	err := poll(ctx, pollEvery, func() (bool, error) {
		var err error
		at, err = processedSince(ctx, node, shard, height)
		return at > 0, err
	})
	return at, err
}

// waitUnshielded waits until the parentchain has paid out the unshielding
// with callHash, and returns the height it did so at.
func waitUnshielded(ctx context.Context, node *client.Client, shard sidechain.ShardID, callHash [32]byte) (int64, error) {
	path := fmt.Sprintf("/enclavebridge/unshield_executed/%s/0x%x", shard, callHash[:])
	var info enclavebridge.UnshieldInfo
	err := poll(ctx, pollEvery, func() (bool, error) {
		if err := node.Query(ctx, path, &info); err != nil {
			return false, err
		}
		return info.Executed, nil
	})
	return info.Height, err
}

// explainUnknownShard adds a hint to the parentchain's refusal of a call
// for a shard it does not know yet, which happens when a validateer that
// serves the shard has not announced itself on the parentchain yet.
func explainUnknownShard(err error) error {
	if errors.Is(err, enclavebridge.ErrUnknownShard) {
		return fmt.Errorf("%w (a new validateer announces its shard on the parentchain shortly after it starts; retry in a few seconds)", err)
	}
	return err
}
