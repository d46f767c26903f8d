package service

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	ws "github.com/gorilla/websocket"

	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/jsonrpc"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/sidechain"
)

// fetcher gets what the enclave's light client needs for one parentchain
// height from the node. It trusts nothing it fetches: the enclave verifies.
type fetcher struct {
	c *client.Client
}

func (f fetcher) validators(ctx context.Context, h int64) (*ctypes.ResultValidators, error) {
	var all *ctypes.ResultValidators
	perPage := 100
	for page := 1; ; page++ {
		p := page
		r, err := f.c.RPC().Validators(ctx, &h, &p, &perPage)
		if err != nil {
			return nil, fmt.Errorf("validators at %d: %w", h, err)
		}
		if all == nil {
			all = r
		} else {
			all.Validators = append(all.Validators, r.Validators...)
		}
		if len(all.Validators) >= r.Total || len(r.Validators) == 0 {
			all.Count = len(all.Validators)
			return all, nil
		}
	}
}

// input fetches height h (h+1 must be committed already).
func (f fetcher) input(ctx context.Context, h int64) (lightclient.Input, error) {
	rpc := f.c.RPC()
	next := h + 1
	block, err := rpc.Block(ctx, &h)
	if err != nil {
		return lightclient.Input{}, fmt.Errorf("block %d: %w", h, err)
	}
	commit, err := rpc.Commit(ctx, &h)
	if err != nil {
		return lightclient.Input{}, fmt.Errorf("commit %d: %w", h, err)
	}
	vals, err := f.validators(ctx, h)
	if err != nil {
		return lightclient.Input{}, err
	}
	results, err := rpc.BlockResults(ctx, &h)
	if err != nil {
		return lightclient.Input{}, fmt.Errorf("block results %d: %w", h, err)
	}
	nextCommit, err := rpc.Commit(ctx, &next)
	if err != nil {
		return lightclient.Input{}, fmt.Errorf("commit %d: %w", next, err)
	}
	nextVals, err := f.validators(ctx, next)
	if err != nil {
		return lightclient.Input{}, err
	}
	return lightclient.InputFromRPC(block, commit, vals, results, nextCommit, nextVals)
}

// latest returns the node's latest committed height.
func (f fetcher) latest(ctx context.Context) (int64, error) {
	st, err := f.c.RPC().Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("node status: %w", err)
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

// ErrFetchTooLarge is the error of a sidechain_fetchBlocksFromPeer answer
// larger than this validateer reads (fetchReadLimit): the peer caps its
// answers higher than this validateer's --fetch-max-bytes, or it sent more
// than it should.
var ErrFetchTooLarge = errors.New("service: block-fetch answer above this validateer's read limit")

// fetchReadLimit is the largest block-fetch answer a validateer whose own
// cap is maxBytes reads: the blocks' hex (two characters a byte) and 64 KiB
// for the JSON around it. A peer with the same cap never exceeds it, as
// long as its first block, which it sends even beyond the cap, fits in the
// cap.
func fetchReadLimit(maxBytes int) int64 { return 2*int64(maxBytes) + 64<<10 }

// fetchBlocks calls sidechain_fetchBlocksFromPeer on an untrusted port, one
// request on its own connection, and reads no answer above
// fetchReadLimit(maxBytes).
func fetchBlocks(ctx context.Context, url string, shard sidechain.ShardID, from, to uint64, maxBytes int) ([][]byte, error) {
	what := fmt.Sprintf("fetch blocks %d..%d from %s", from, to, url)
	d := ws.Dialer{HandshakeTimeout: 10 * time.Second}
	wc, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: dial: %w", what, err)
	}
	defer wc.Close()
	stop := context.AfterFunc(ctx, func() { wc.Close() })
	defer stop()
	limit := fetchReadLimit(maxBytes)
	wc.SetReadLimit(limit)
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "sidechain_fetchBlocksFromPeer",
		"params": []any{shard.String(), from, to}})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := wc.WriteMessage(ws.TextMessage, req); err != nil {
		return nil, fmt.Errorf("%s: send: %w", what, err)
	}
	_, data, err := wc.ReadMessage()
	switch {
	case errors.Is(err, ws.ErrReadLimit):
		return nil, fmt.Errorf("%s: %w: the answer exceeds %d bytes (2 × --fetch-max-bytes %d + 64 KiB)", what, ErrFetchTooLarge, limit, maxBytes)
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", what, ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("%s: read: %w", what, err)
	}
	var resp struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *jsonrpc.Error  `json:"error"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("%s: answer: %w", what, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("%s: %w", what, resp.Error)
	}
	if string(resp.ID) != "1" {
		return nil, fmt.Errorf("%s: answer with id %s, want 1", what, resp.ID)
	}
	var hexes []string
	if len(resp.Result) == 0 || resp.Result[0] != '[' || json.Unmarshal(resp.Result, &hexes) != nil {
		return nil, fmt.Errorf("%s: the answer's result is not an array of hex blocks: %.100s", what, resp.Result)
	}
	out := make([][]byte, 0, len(hexes))
	for _, h := range hexes {
		b, err := hex.DecodeString(strings.TrimPrefix(h, "0x"))
		if err != nil {
			return nil, fmt.Errorf("%s: block %d: %w", what, len(out), err)
		}
		out = append(out, b)
	}
	return out, nil
}
