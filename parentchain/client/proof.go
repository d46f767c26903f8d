package client

import (
	"bytes"
	"context"
	"fmt"

	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	rpcclient "github.com/cometbft/cometbft/rpc/client"

	"github.com/integritee-go/integritee/parentchain/proof"
)

// ProvenValue is a node's answer to a proven read of one state key: what it
// claims the key held after block Height, and the proof it offers for that
// claim. Nothing in it has been checked.
type ProvenValue struct {
	// Key is the state key the node answered for.
	Key []byte
	// Value is the stored bytes, nil (or empty: the JSON-RPC transport does
	// not tell the two apart) if the node claims the key is absent.
	Value []byte
	// Height is the height whose state the answer is about. The proof
	// verifies against the AppHash in the header of Height+1.
	Height int64
	// ProofOps proves Value (or the key's absence) against that app hash.
	ProofOps *cmtcrypto.ProofOps
}

// ProveKey asks the node for a state key's value with a proof, at the state
// after block height (0: the latest height whose next header exists), via
// abci_query "/store/<module>/key" with prove=true.
//
// It does NOT verify anything: the value, the height and the proof are the
// node's claims, returned as received. A caller that does not trust the node
// must check the header of Height+1 (e.g. with a light client) and then the
// proof against that header's AppHash with proof.Verify. The only checks
// here are that the node answered for the key asked, at the height asked
// (any positive one for 0), with a proof attached; they reject a confused
// answer early and prove nothing.
func (c *Client) ProveKey(ctx context.Context, key []byte, height int64) (*ProvenValue, error) {
	if height < 0 {
		return nil, fmt.Errorf("prove key: negative height %d", height)
	}
	path, err := proof.QueryPath(key)
	if err != nil {
		return nil, err
	}
	res, err := c.rpc.ABCIQueryWithOptions(ctx, path, key, rpcclient.ABCIQueryOptions{Height: height, Prove: true})
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", path, err)
	}
	r := res.Response
	if r.Code != 0 {
		return nil, &QueryError{Path: path, Codespace: r.Codespace, Code: r.Code, Log: r.Log}
	}
	if !bytes.Equal(r.Key, key) {
		return nil, fmt.Errorf("query %s: node answered for key %q, asked %q", path, r.Key, key)
	}
	if r.Height <= 0 || (height > 0 && r.Height != height) {
		return nil, fmt.Errorf("query %s: node answered for height %d, asked %d", path, r.Height, height)
	}
	if r.ProofOps == nil {
		return nil, fmt.Errorf("query %s: node sent no proof", path)
	}
	return &ProvenValue{Key: r.Key, Value: r.Value, Height: r.Height, ProofOps: r.ProofOps}, nil
}
