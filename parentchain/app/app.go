// Package app is the parentchain's ABCI++ application: it decodes and checks
// transactions, charges fees, dispatches calls to the modules, keeps state in
// pebble and computes the app hash CometBFT agrees on.
package app

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/account"

	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/types"
)

// Version is the application's protocol version, reported to CometBFT.
const Version uint64 = 1

var (
	keyChainID   = []byte("system/chain_id")
	keyGenesis   = []byte("system/genesis_hash")
	keyBlockTime = []byte("system/block_time")
)

// App is the parentchain application.
type App struct {
	abci.BaseApplication

	log      *slog.Logger
	codec    *types.Codec
	store    *state.Store
	modules  map[string]types.Module
	order    []types.Module // genesis order
	balances *balances.Module
	metrics  *Metrics

	// mu serializes the consensus calls and guards the fields below it up
	// to checkMu. FinalizeBlock holds it for a whole block.
	mu       sync.Mutex
	chainID  string
	genesis  [32]byte  // types.GenesisHash of the chain id and genesis validators
	height   int64     // last committed height
	appHash  []byte    // last committed app hash
	lastTime time.Time // last committed block time
	block    *state.Overlay
	pending  pendingBlock

	// checkMu guards the check state, so that CheckTx runs while a block
	// is finalized: both only read the committed store, which changes in
	// Commit alone (CometBFT holds the mempool's lock during Commit, and
	// Commit holds checkMu too). Lock order: mu, then checkMu.
	checkMu    sync.Mutex
	check      *state.Overlay
	checkBlock types.Block // the next block's height, the last block's time

	// checked holds the transactions CheckTx accepted, decoded and with
	// their signatures verified, for rechecks and FinalizeBlock.
	checked *checkedCache

	// finalizeHook, if set (tests only), runs in FinalizeBlock while it
	// holds mu, before the block's transactions execute.
	finalizeHook func()
}

type pendingBlock struct {
	height  int64
	staged  *state.Staged
	time    time.Time
	results []txOutcome
}

// SystemModule is the state's pseudo-module of the application's own keys
// (chain id, block time).
const SystemModule = "system"

// StateConfig returns the state store configuration of this application:
// its modules and the system keys, with versions provable heights (0: the
// store's default).
func StateConfig(versions int) state.Config {
	names := []string{SystemModule}
	for _, m := range newModules(types.NewCodec(), nil) {
		names = append(names, m.Name())
	}
	return state.Config{Modules: names, Versions: versions}
}

// New opens an application over store. Metrics may be nil.
func New(store *state.Store, log *slog.Logger, metrics *Metrics) *App {
	codec := types.NewCodec()
	a := &App{log: log, codec: codec, store: store, metrics: metrics, modules: map[string]types.Module{},
		checked: newCheckedCache(checkedCacheEntries, checkedCacheBytes)}
	for _, m := range newModules(codec, a) {
		a.modules[m.Name()] = m
		a.order = append(a.order, m)
		if b, ok := m.(*balances.Module); ok {
			a.balances = b
		}
	}
	a.height, a.appHash = store.LastCommit()
	if b, ok := store.Get(keyChainID); ok {
		a.chainID = string(b)
	}
	if b, ok := store.Get(keyGenesis); ok {
		copy(a.genesis[:], b)
	}
	if b, ok := store.Get(keyBlockTime); ok {
		var ms int64
		_ = codec.UnmarshalLoose(b, &ms)
		a.lastTime = time.UnixMilli(ms).UTC()
	}
	a.check = state.NewOverlay(store)
	a.checkBlock = types.Block{Height: a.height + 1, Time: a.lastTime}
	a.updateMetrics()
	return a
}

// Codec returns the application's codec.
func (a *App) Codec() *types.Codec { return a.codec }

// Dispatch runs a call in ctx; it implements sudo.Dispatcher.
func (a *App) Dispatch(ctx *types.Context, call types.Call) error {
	m, ok := a.modules[call.Module]
	if !ok {
		return types.ErrUnknownModule.Wrap("%q", call.Module)
	}
	return m.Exec(ctx, call.Method, call.Args)
}

// Info reports the last committed height and app hash, from which CometBFT
// replays any blocks the application lacks.
func (a *App) Info(context.Context, *abci.InfoRequest) (*abci.InfoResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &abci.InfoResponse{
		Data:             "integritee-node",
		Version:          "1",
		AppVersion:       Version,
		LastBlockHeight:  a.height,
		LastBlockAppHash: a.appHash,
	}, nil
}

// InitChain writes the genesis state and commits it as height 0. A node that
// restarts before its first block finds genesis committed and keeps it.
func (a *App) InitChain(_ context.Context, req *abci.InitChainRequest) (*abci.InitChainResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.appHash != nil {
		return &abci.InitChainResponse{AppHash: a.appHash}, nil
	}
	var sections map[string]json.RawMessage
	if len(req.AppStateBytes) > 0 {
		if err := json.Unmarshal(req.AppStateBytes, &sections); err != nil {
			return nil, fmt.Errorf("app: genesis app_state: %w", err)
		}
	}
	for name := range sections {
		if _, ok := a.modules[name]; !ok {
			return nil, fmt.Errorf("app: genesis names unknown module %q", name)
		}
	}
	o := state.NewOverlay(a.store)
	ctx := &types.Context{Store: o, Codec: a.codec, Block: types.Block{Time: req.Time}}
	for _, m := range a.order {
		if gm, ok := m.(types.GenesisModule); ok {
			if err := gm.InitGenesis(ctx, sections[m.Name()]); err != nil {
				return nil, fmt.Errorf("app: %w", err)
			}
		}
	}
	genesis, err := genesisHash(req)
	if err != nil {
		return nil, err
	}
	o.Set(keyChainID, []byte(req.ChainId))
	o.Set(keyGenesis, genesis[:])
	o.Set(keyBlockTime, a.codec.MustMarshal(req.Time.UnixMilli()))
	hash, err := a.store.CommitOverlay(o, 0)
	if err != nil {
		return nil, fmt.Errorf("app: commit genesis: %w", err)
	}
	a.checkMu.Lock()
	a.chainID, a.genesis, a.appHash, a.lastTime = req.ChainId, genesis, hash, req.Time
	a.check = state.NewOverlay(a.store)
	a.checkBlock = types.Block{Height: a.height + 1, Time: a.lastTime}
	a.checked.reset()
	a.checkMu.Unlock()
	a.log.Info("genesis committed", "chain_id", req.ChainId, "app_hash", fmt.Sprintf("%X", hash))
	a.updateMetrics()
	return &abci.InitChainResponse{AppHash: hash}, nil
}

// CheckTx runs a transaction against the check state, which holds the
// committed state plus the mempool's accepted transactions, and rejects it
// if the envelope or the call fails.
//
// An accepted transaction is remembered, decoded and verified, by its hash
// (see checkedCache): a recheck of it, and the block that executes it, skip
// its decoding and its signature's verification, never the chain id, the
// nonce, the fee or the call.
func (a *App) CheckTx(_ context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	tx, hash, err := a.decodeAndVerify(req.Tx, a.checked.get)
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	out := a.execute(a.check, a.checkBlock, tx, err, true)
	if out.err != nil {
		// A recheck that fails drops the transaction from the mempool;
		// forget it here too.
		a.checked.take(hash)
		return &abci.CheckTxResponse{Code: out.code(), Codespace: out.codespace(), Log: out.err.Error()}, nil
	}
	a.checked.add(hash, tx, len(req.Tx))
	return &abci.CheckTxResponse{Code: abci.CodeTypeOK}, nil
}

// FinalizeBlock executes a decided block. Transactions are decoded and
// their signatures verified on all cores first (those CheckTx accepted
// come from the checked-transaction cache); calls then run in order.
func (a *App) FinalizeBlock(_ context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	start := time.Now()
	txs, errs := a.decodeAll(req.Txs)
	a.mu.Lock()
	defer a.mu.Unlock()
	if req.Height != a.height+1 {
		return nil, fmt.Errorf("app: finalize height %d after committed %d", req.Height, a.height)
	}
	if a.finalizeHook != nil {
		a.finalizeHook()
	}
	a.block = state.NewOverlay(a.store)
	a.block.Set(keyBlockTime, a.codec.MustMarshal(req.Time.UnixMilli()))
	blk := types.Block{Height: req.Height, Time: req.Time}
	res := make([]*abci.ExecTxResult, len(req.Txs))
	outs := make([]txOutcome, len(req.Txs))
	for i := range req.Txs {
		out := a.execute(a.block, blk, txs[i], errs[i], false)
		outs[i] = out
		res[i] = &abci.ExecTxResult{Code: out.code(), Codespace: out.codespace(), Events: out.abciEvents(&a.codec.Names)}
		if out.err != nil {
			res[i].Log = out.err.Error()
		}
	}
	commitStart := time.Now()
	staged, err := a.store.Stage(a.block)
	if err != nil {
		return nil, fmt.Errorf("app: state commitment of block %d: %w", req.Height, err)
	}
	if a.metrics != nil {
		a.metrics.commitment.Observe(time.Since(commitStart).Seconds())
		a.metrics.writtenKeys.Observe(float64(a.block.Len()))
		a.metrics.finalizeTime.Observe(time.Since(start).Seconds())
	}
	a.pending = pendingBlock{height: req.Height, staged: staged, time: req.Time, results: outs}
	return &abci.FinalizeBlockResponse{TxResults: res, AppHash: staged.AppHash()}, nil
}

// Commit makes the finalized block's state durable and resets the check
// state on top of it.
func (a *App) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.block == nil {
		return nil, errors.New("app: commit without a finalized block")
	}
	// The check state and the store change together for a concurrent
	// /system/next_nonce query.
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	if err := a.store.Commit(a.block, a.pending.height, a.pending.staged); err != nil {
		return nil, err
	}
	a.height, a.appHash, a.lastTime = a.pending.height, a.pending.staged.AppHash(), a.pending.time
	a.pending.staged = nil
	a.block = nil
	a.check = state.NewOverlay(a.store)
	a.checkBlock = types.Block{Height: a.height + 1, Time: a.lastTime}
	if a.metrics != nil {
		for _, o := range a.pending.results {
			a.metrics.observeTx(o)
		}
	}
	a.log.Info("committed block", "height", a.height, "txs", len(a.pending.results), "app_hash", fmt.Sprintf("%X", a.appHash[:8]))
	a.pending.results = nil
	a.updateMetrics()
	return &abci.CommitResponse{}, nil
}

// Query answers abci_query. "/store/<module>/key" with the raw state key as
// data answers the stored bytes with their proof (see Prove); other paths,
// "/<module>/<query>/<args...>", answer unproven JSON. Documented in
// docs/parentchain.md.
func (a *App) Query(_ context.Context, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	if strings.HasPrefix(req.Path, "/store/") {
		return a.prove(req), nil
	}
	a.mu.Lock()
	height := a.height
	a.mu.Unlock()
	v, err := a.query(req.Path)
	if err != nil {
		var code uint32 = 1
		space := "query"
		if e := types.AsError(err); e != nil {
			code, space = e.Code, e.Module
		}
		return &abci.QueryResponse{Code: code, Codespace: space, Log: err.Error(), Height: height}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &abci.QueryResponse{Code: abci.CodeTypeOK, Value: b, Height: height}, nil
}

// genesisHash is the chain's genesis hash from InitChain's chain id and
// validators (none only in tests that drive the app without CometBFT).
func genesisHash(req *abci.InitChainRequest) ([32]byte, error) {
	if len(req.Validators) == 0 {
		return types.GenesisHash(req.ChainId, nil), nil
	}
	vals, err := cmttypes.PB2TM.ValidatorUpdates(req.Validators)
	if err != nil {
		return [32]byte{}, fmt.Errorf("app: genesis validators: %w", err)
	}
	set, err := cmttypes.ValidatorSetFromExistingValidators(vals)
	if err != nil {
		return [32]byte{}, fmt.Errorf("app: genesis validators: %w", err)
	}
	return types.GenesisHash(req.ChainId, set.Hash()), nil
}

// ChainInfo is the answer to the /system/chain query.
type ChainInfo struct {
	ChainID string `json:"chain_id"`
	// GenesisHash (0x-hex) is what every transaction's signature covers
	// besides its body (types.GenesisHash).
	GenesisHash string `json:"genesis_hash"`
	Height      int64  `json:"height"`
	Modules     []string
}

func (a *App) query(path string) (any, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 0 || parts[0] == "" {
		return nil, types.ErrUnknownPath.Wrap("empty path")
	}
	if parts[0] == "system" && len(parts) == 3 && parts[1] == "next_nonce" {
		return a.nextNonce(parts[2])
	}
	if parts[0] == "system" && len(parts) == 2 && parts[1] == "chain" {
		a.mu.Lock()
		defer a.mu.Unlock()
		ci := ChainInfo{ChainID: a.chainID, GenesisHash: "0x" + hex.EncodeToString(a.genesis[:]), Height: a.height}
		for _, m := range a.order {
			ci.Modules = append(ci.Modules, m.Name())
		}
		return ci, nil
	}
	m, ok := a.modules[parts[0]]
	if !ok {
		return nil, types.ErrUnknownPath.Wrap("no module %q", parts[0])
	}
	return m.Query(a.store, parts[1:])
}

// NextNonce is the answer to /system/next_nonce/<account>.
type NextNonce struct {
	Account account.ID `json:"account"`
	Nonce   uint64     `json:"nonce"`
}

// nextNonce answers an account's next nonce counting the transactions the
// mempool holds (the check state), as Substrate's system_accountNextIndex.
func (a *App) nextNonce(s string) (any, error) {
	id, err := account.ParseID(s)
	if err != nil {
		return nil, types.ErrBadQuery.Wrap("%v", err)
	}
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	// A throw-away child: reads see the check state, nothing is written.
	ctx := &types.Context{Store: a.check.Child(), Codec: a.codec}
	return NextNonce{Account: id, Nonce: a.balances.Account(ctx, id).Nonce}, nil
}

// decodeAndVerify decodes a transaction and checks its signature, unless
// checked(hash) has it from an earlier CheckTx (a.checked); it returns the
// transaction's hash too. The chain id check needs the committed chain id and
// happens in execute.
func (a *App) decodeAndVerify(b []byte, checked func([32]byte) (*types.Tx, bool)) (*types.Tx, [32]byte, error) {
	hash := types.TxHash(b)
	if tx, ok := checked(hash); ok {
		return tx, hash, nil
	}
	tx, err := a.codec.DecodeTx(b)
	if err != nil {
		return nil, hash, err
	}
	if a.metrics != nil {
		a.metrics.verifications.Inc()
	}
	if err := a.codec.VerifySignature(tx, a.genesis); err != nil {
		return tx, hash, err
	}
	return tx, hash, nil
}

// decodeAll decodes and verifies txs on all cores; a transaction CheckTx
// accepted is taken from a.checked instead.
func (a *App) decodeAll(raw [][]byte) ([]*types.Tx, []error) {
	txs := make([]*types.Tx, len(raw))
	errs := make([]error, len(raw))
	workers := min(runtime.GOMAXPROCS(0), len(raw))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(raw); i += workers {
				txs[i], _, errs[i] = a.decodeAndVerify(raw[i], a.checked.take)
			}
		}(w)
	}
	wg.Wait()
	return txs, errs
}

// txOutcome is what one transaction did.
type txOutcome struct {
	call   string
	signer account.ID
	nonce  uint64
	err    error
	events []types.Event
}

func (o txOutcome) code() uint32 {
	if o.err == nil {
		return abci.CodeTypeOK
	}
	if e := types.AsError(o.err); e != nil {
		return e.Code
	}
	return types.ErrTxInternal.Code
}

func (o txOutcome) codespace() string {
	if o.err == nil {
		return ""
	}
	if e := types.AsError(o.err); e != nil {
		return e.Module
	}
	return types.ErrTxInternal.Module
}

func (o txOutcome) result() string {
	if o.err == nil {
		return "ok"
	}
	if e := types.AsError(o.err); e != nil {
		return e.Module + "." + e.Name
	}
	return "tx.Internal"
}

func (o txOutcome) abciEvents(names *types.AccountNames) []abci.Event {
	evs := make([]abci.Event, 0, len(o.events)+1)
	if o.call != "" {
		evs = append(evs, abci.Event{Type: "tx", Attributes: []abci.EventAttribute{
			{Key: "call", Value: o.call, Index: true},
			{Key: "signer", Value: names.String(o.signer), Index: true},
			{Key: "nonce", Value: strconv.FormatUint(o.nonce, 10)},
			{Key: "result", Value: o.result(), Index: true},
		}})
	}
	for _, e := range o.events {
		ae := abci.Event{Type: e.Type()}
		for _, at := range e.Attrs {
			ae.Attributes = append(ae.Attributes, abci.EventAttribute{Key: at.Key, Value: at.Value, Index: true})
		}
		evs = append(evs, ae)
	}
	return evs
}

// execute runs one transaction on top of parent. The envelope (chain id,
// nonce, fee) failing leaves parent untouched. A failing call leaves only the
// fee and the nonce increment, as in Substrate, except in check mode, where
// the transaction is refused and parent is left untouched.
func (a *App) execute(parent *state.Overlay, blk types.Block, tx *types.Tx, decodeErr error, check bool) txOutcome {
	if tx == nil {
		return txOutcome{err: decodeErr}
	}
	out := txOutcome{call: tx.Body.Call.String(), signer: tx.Body.Signer, nonce: tx.Body.Nonce}
	if decodeErr != nil {
		out.err = decodeErr
		return out
	}
	if tx.Body.ChainID != a.chainID {
		out.err = types.ErrTxWrongChain.Wrap("transaction chain %q, this chain %q", tx.Body.ChainID, a.chainID)
		return out
	}
	txo := parent.Child()
	ctx := &types.Context{Store: txo, Codec: a.codec, Block: blk, Origin: types.Origin{Signer: tx.Body.Signer}}
	acct := a.balances.Account(ctx, tx.Body.Signer)
	switch {
	case tx.Body.Nonce < acct.Nonce:
		out.err = types.ErrTxStaleNonce.Wrap("nonce %d, account %s is at %d", tx.Body.Nonce, tx.Body.Signer, acct.Nonce)
		return out
	case tx.Body.Nonce > acct.Nonce:
		out.err = types.ErrTxFutureNonce.Wrap("nonce %d, account %s is at %d", tx.Body.Nonce, tx.Body.Signer, acct.Nonce)
		return out
	}
	fee := a.balances.Fee(ctx)
	if err := a.balances.Burn(ctx, tx.Body.Signer, fee); err != nil {
		out.err = types.ErrTxCannotPayFee.Wrap("fee %s: %v", fee, err)
		return out
	}
	a.balances.IncNonce(ctx, tx.Body.Signer)
	if !check { // CheckTx answers no events
		ctx.Event(balances.ModuleName, "TransactionFeePaid", "who", tx.Body.Signer, "fee", fee)
	}
	fees := ctx.Events()

	callo := txo.Child()
	cctx := ctx.WithStore(callo)
	err := a.safeDispatch(cctx, tx.Body.Call)
	if err != nil {
		out.err = err
		out.events = fees
		if check {
			return out
		}
		txo.Apply()
		return out
	}
	callo.Apply()
	txo.Apply()
	out.events = append(fees, cctx.Events()...)
	return out
}

// safeDispatch turns a panic in a module into a failed call rather than a
// halted chain; storage failures are the exception and crash the node.
func (a *App) safeDispatch(ctx *types.Context, call types.Call) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if s, ok := r.(string); ok && strings.HasPrefix(s, "state: ") {
				panic(r)
			}
			a.log.Error("call panicked", "call", call.String(), "panic", r)
			err = types.ErrTxInternal.Wrap("%s panicked", call)
		}
	}()
	return a.Dispatch(ctx, call)
}
