package service

import (
	"context"
	"fmt"

	ctypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/parentchain/client"
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
