package app

import (
	"errors"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/parentchain/proof"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/types"
)

// prove answers "/store/<module>/key": data is the raw state key. The
// answer holds the key, the stored bytes (nil when absent), the height and
// the proof ops (package parentchain/proof; with or without prove), which
// verify against the app hash in the header of height+1. Height 0 means the latest
// height whose next header exists: the one before the last committed, since
// the last committed block's successor may not be signed yet.
func (a *App) prove(req *abci.QueryRequest) *abci.QueryResponse {
	lo, hi, ok := a.store.Provable()
	fail := func(err error) *abci.QueryResponse {
		r := &abci.QueryResponse{Code: 1, Codespace: "query", Log: err.Error(), Height: hi}
		if e := types.AsError(err); e != nil {
			r.Code, r.Codespace = e.Code, e.Module
		}
		return r
	}
	module, found := strings.CutSuffix(strings.TrimPrefix(req.Path, "/store/"), "/key")
	if !found || module == "" || strings.Contains(module, "/") {
		return fail(types.ErrUnknownPath.Wrap("%q: proven queries are /store/<module>/key", req.Path))
	}
	m, err := proof.Module(req.Data)
	if err != nil {
		return fail(types.ErrBadQuery.Wrap("data is not a state key: %v", err))
	}
	if m != module {
		return fail(types.ErrBadQuery.Wrap("key %q belongs to module %q, the path names %q", req.Data, m, module))
	}
	if !ok {
		return fail(types.ErrHeightUnavailable.Wrap("nothing committed yet"))
	}
	height := req.Height
	switch {
	case height < 0:
		return fail(types.ErrBadQuery.Wrap("negative height %d", height))
	case height == 0:
		height = max(hi-1, lo)
	}
	p, err := a.store.Prove(height, req.Data)
	switch {
	case errors.Is(err, state.ErrHeightUnavailable):
		return fail(types.ErrHeightUnavailable.Wrap("%v", err))
	case errors.Is(err, state.ErrUnknownModule):
		return fail(types.ErrUnknownPath.Wrap("no module %q", module))
	case err != nil:
		return fail(types.ErrBadQuery.Wrap("%v", err))
	}
	// The proof is the point of the path: it comes whether or not the
	// request set prove.
	return &abci.QueryResponse{Code: abci.CodeTypeOK, Key: p.Key, Value: p.Value, Height: p.Height, ProofOps: p.Ops}
}
