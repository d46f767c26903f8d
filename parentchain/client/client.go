// Package client is a typed client of the parentchain node's RPC, used by the
// CLI and by the validateer's host: queries, transactions with nonces and
// fees handled, and subscriptions to blocks and events.
package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/types"
)

// TxError is a transaction the node refused (CheckTx) or that failed in a
// block (FinalizeBlock), with the module's error name in Log.
type TxError struct {
	// Stage is "check" or "block".
	Stage     string
	Codespace string
	Code      uint32
	Log       string
	Height    int64
}

func (e *TxError) Error() string {
	if e.Stage == "block" {
		return fmt.Sprintf("transaction failed in block %d: %s", e.Height, e.Log)
	}
	return "transaction rejected: " + e.Log
}

// Is matches a module error by codespace and code, so callers can write
// errors.Is(err, balances.ErrInsufficientBalance).
func (e *TxError) Is(target error) bool {
	t := types.AsError(target)
	return t != nil && t.Module == e.Codespace && t.Code == e.Code
}

// QueryError is a failed abci_query.
type QueryError struct {
	Path      string
	Codespace string
	Code      uint32
	Log       string
}

func (e *QueryError) Error() string { return fmt.Sprintf("query %s: %s", e.Path, e.Log) }

// Is matches a module error by codespace and code.
func (e *QueryError) Is(target error) bool {
	t := types.AsError(target)
	return t != nil && t.Module == e.Codespace && t.Code == e.Code
}

// Client talks to one node.
type Client struct {
	rpc   *rpchttp.HTTP
	codec *types.Codec
	addr  string       // http(s) address of the node's RPC
	hc    *http.Client // the keep-alive client rpc uses too

	mu    sync.Mutex
	chain types.Chain // cached once known
}

// HTTPAddress turns a ws://, wss://, http:// or https:// node URL into the
// http(s) address CometBFT's client wants.
func HTTPAddress(nodeURL string) (string, error) {
	u, err := url.Parse(nodeURL)
	if err != nil {
		return "", fmt.Errorf("node url %q: %w", nodeURL, err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return "", fmt.Errorf("node url %q: scheme must be ws, wss, http or https", nodeURL)
	}
	if u.Host == "" {
		return "", fmt.Errorf("node url %q: no host", nodeURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/websocket")
	return u.String(), nil
}

// Dial returns a client of the node at nodeURL (e.g. ws://127.0.0.1:9944).
func Dial(nodeURL string) (*Client, error) {
	addr, err := HTTPAddress(nodeURL)
	if err != nil {
		return nil, err
	}
	// Keep a connection per concurrent caller instead of Go's default of two.
	hc := &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}}
	rpc, err := rpchttp.NewWithClient(addr, hc)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", addr, err)
	}
	return &Client{rpc: rpc, codec: types.NewCodec(), addr: addr, hc: hc}, nil
}

// RPC returns the underlying CometBFT client.
func (c *Client) RPC() *rpchttp.HTTP { return c.rpc }

// Codec returns the chain codec.
func (c *Client) Codec() *types.Codec { return c.codec }

// ChainID returns the node's chain id.
func (c *Client) ChainID(ctx context.Context) (string, error) {
	ch, err := c.Chain(ctx)
	return ch.ID, err
}

// Chain returns the node's chain as transactions name it: its id and its
// genesis hash (the /system/chain query), which signatures cover.
func (c *Client) Chain(ctx context.Context) (types.Chain, error) {
	c.mu.Lock()
	if c.chain.ID != "" {
		defer c.mu.Unlock()
		return c.chain, nil
	}
	c.mu.Unlock()
	var info struct {
		ChainID     string `json:"chain_id"`
		GenesisHash string `json:"genesis_hash"`
	}
	if err := c.Query(ctx, "/system/chain", &info); err != nil {
		return types.Chain{}, fmt.Errorf("node chain: %w", err)
	}
	g, err := hex.DecodeString(strings.TrimPrefix(info.GenesisHash, "0x"))
	if err != nil || len(g) != 32 || info.ChainID == "" {
		return types.Chain{}, fmt.Errorf("node chain: bad answer %+v", info)
	}
	ch := types.Chain{ID: info.ChainID}
	copy(ch.Genesis[:], g)
	c.mu.Lock()
	c.chain = ch
	c.mu.Unlock()
	return ch, nil
}

// Query runs abci_query at path and decodes the JSON answer into out.
func (c *Client) Query(ctx context.Context, path string, out any) error {
	res, err := c.rpc.ABCIQuery(ctx, path, nil)
	if err != nil {
		return fmt.Errorf("query %s: %w", path, err)
	}
	if res.Response.Code != 0 {
		return &QueryError{Path: path, Codespace: res.Response.Codespace, Code: res.Response.Code, Log: res.Response.Log}
	}
	if err := json.Unmarshal(res.Response.Value, out); err != nil {
		return fmt.Errorf("query %s: decode: %w", path, err)
	}
	return nil
}

// Account returns an account's balance and nonce.
func (c *Client) Account(ctx context.Context, id account.ID) (balances.AccountInfo, error) {
	var a balances.AccountInfo
	err := c.Query(ctx, "/balances/account/"+id.Hex(), &a)
	return a, err
}

// Summary returns the total issuance, account count and fee.
func (c *Client) Summary(ctx context.Context) (balances.Summary, error) {
	var s balances.Summary
	err := c.Query(ctx, "/balances/summary", &s)
	return s, err
}

// NextNonce returns an account's next nonce, counting its transactions in
// the node's mempool.
func (c *Client) NextNonce(ctx context.Context, id account.ID) (uint64, error) {
	var n struct {
		Nonce uint64 `json:"nonce"`
	}
	err := c.Query(ctx, "/system/next_nonce/"+id.Hex(), &n)
	return n.Nonce, err
}

// Sign builds a signed transaction with the signer's next nonce (mempool
// included).
func (c *Client) Sign(ctx context.Context, p *account.Pair, call types.Call) ([]byte, error) {
	chain, err := c.Chain(ctx)
	if err != nil {
		return nil, err
	}
	nonce, err := c.NextNonce(ctx, p.ID())
	if err != nil {
		return nil, err
	}
	return c.codec.Sign(p, chain, nonce, call), nil
}

// Included is a transaction committed in a block.
type Included struct {
	Hash   string
	Height int64
	Events []types.Event
}

// Submit signs call as p, sends it and waits until it is in a committed
// block. A refused or failed transaction is a *TxError.
func (c *Client) Submit(ctx context.Context, p *account.Pair, call types.Call) (*Included, error) {
	tx, err := c.Sign(ctx, p, call)
	if err != nil {
		return nil, err
	}
	return c.SubmitRaw(ctx, tx)
}

// SubmitRaw sends encoded transaction bytes and waits, until ctx ends, for
// the block that includes them.
func (c *Client) SubmitRaw(ctx context.Context, tx []byte) (*Included, error) {
	if err := c.Broadcast(ctx, tx); err != nil {
		return nil, err
	}
	return c.WaitTx(ctx, types.TxHash(tx))
}

// WaitTx polls the node's transaction index until the transaction with hash
// is in a committed block, and returns it, or a *TxError if it failed there.
func (c *Client) WaitTx(ctx context.Context, hash [32]byte) (*Included, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := c.rpc.Tx(ctx, hash[:], false)
		if err == nil {
			if res.TxResult.Code != 0 {
				return nil, &TxError{Stage: "block", Codespace: res.TxResult.Codespace, Code: res.TxResult.Code, Log: res.TxResult.Log, Height: res.Height}
			}
			inc := &Included{Hash: res.Hash.String(), Height: res.Height}
			for _, e := range res.TxResult.Events {
				inc.Events = append(inc.Events, FromABCI(e.Type, e.Attributes))
			}
			return inc, nil
		}
		if !strings.Contains(err.Error(), "not found") {
			return nil, fmt.Errorf("wait for tx %X: %w", hash, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for tx %X: %w", hash, ctx.Err())
		case <-tick.C:
		}
	}
}

// Broadcast sends tx and returns once the node's CheckTx accepted it.
func (c *Client) Broadcast(ctx context.Context, tx []byte) error {
	res, err := c.rpc.BroadcastTxSync(ctx, tx)
	if err != nil {
		if te := parseInvalidTx(err); te != nil {
			return te
		}
		return fmt.Errorf("broadcast: %w", err)
	}
	if res.Code != 0 {
		return &TxError{Stage: "check", Codespace: res.Codespace, Code: res.Code, Log: res.Log}
	}
	return nil
}

// invalidTx matches the text of CometBFT's mempool.ErrInvalidTx, which
// CometBFT v1.0 returns as a JSON-RPC error (-32603) for a transaction the
// application refused in CheckTx, instead of a result with the code; the
// JSON-RPC error carries no structured fields, so the text is all we have.
var invalidTx = regexp.MustCompile(`is invalid: code=(\d+), data=[0-9A-Fa-f]*, log='(.*)', codespace='([^']*)'`)

func parseInvalidTx(err error) *TxError {
	m := invalidTx.FindStringSubmatch(err.Error())
	if m == nil {
		return nil
	}
	code, _ := strconv.ParseUint(m[1], 10, 32)
	return &TxError{Stage: "check", Code: uint32(code), Log: m[2], Codespace: m[3]}
}
