package enclave

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/codec"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/enclave/pool"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/enclave/tee"
	scmodule "github.com/integritee-go/integritee/parentchain/modules/sidechain"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// Config configures the enclave.
type Config struct {
	// Shard is the shard served; zero means the enclave's mrenclave.
	Shard sidechain.ShardID
	// ChainID and GenesisValidators anchor the parentchain light client.
	ChainID           string
	GenesisValidators *cmttypes.ValidatorSet
	// SlotDuration is the sidechain's slot length.
	SlotDuration time.Duration
	// FinalizationInterval: the primary confirms every N-th block on the
	// parentchain.
	FinalizationInterval uint64
	// SnapshotInterval: an encrypted state snapshot every N blocks.
	SnapshotInterval uint64
	// KeepSnapshots bounds the snapshot history.
	KeepSnapshots int
	// MaxBlockAhead bounds how far a sidechain block's timestamp may be
	// ahead of the latest verified parentchain block's time
	// (DefaultMaxBlockAhead when zero).
	MaxBlockAhead time.Duration
	// Version, MuRaURL and UntrustedURL are reported over RPC.
	Version, MuRaURL, UntrustedURL string
	// Pool bounds the pool of trusted operations (zero fields: defaults).
	Pool pool.Config
}

// ValidateBasic checks the configuration.
func (c Config) ValidateBasic() error {
	switch {
	case c.ChainID == "":
		return errors.New("enclave: no parentchain chain id")
	case c.GenesisValidators == nil || c.GenesisValidators.Size() == 0:
		return errors.New("enclave: no parentchain genesis validators")
	case c.SlotDuration <= 0:
		return errors.New("enclave: slot duration must be positive")
	case c.FinalizationInterval == 0:
		return errors.New("enclave: finalization interval must be positive")
	case c.SnapshotInterval == 0:
		return errors.New("enclave: snapshot interval must be positive")
	case c.KeepSnapshots < 1:
		return errors.New("enclave: keep at least one snapshot")
	case c.MaxBlockAhead < 0:
		return errors.New("enclave: negative max block ahead")
	}
	if err := c.Pool.ValidateBasic(); err != nil {
		return fmt.Errorf("enclave: %w", err)
	}
	return nil
}

// Enclave is the trusted core of one validateer.
type Enclave struct {
	cfg     Config
	log     *slog.Logger
	backend tee.Backend
	host    Host
	keys    *keys.Keys
	codec   *types.Codec
	cbor    *codec.Codec
	sc      *sidechain.Codec
	stf     *stf.STF
	pool    *pool.Pool
	shard   sidechain.ShardID

	rpcMu     sync.Mutex // guards rpcSrv, rpcClosed
	rpcSrv    *rpc.Server
	rpcClosed bool

	// stateMu guards the state pointer for readers that do not take mu
	// (submissions' nonce lookups, getters): they never wait on block
	// production or on the parentchain. Writers hold mu too. The state
	// itself is safe for concurrent use.
	stateMu sync.RWMutex
	// headView is the head's header for chain_getHeader, published at
	// every head change (publishHeadLocked) and read without mu, so that
	// the header is served while mu is held across a slow node call.
	headView atomic.Pointer[rpc.Header]

	mu        sync.Mutex
	state     *stf.State
	stateHash [32]byte
	head      *sidechain.Block // nil before the first block
	headHash  sidechain.Hash
	lc        *lightclient.Client
	sync      syncMeta
	heads     map[int64]verifiedHead // recent verified parentchain blocks
	halted    error                  // set while the state is found behind the chain (haltLocked)
	// failed is set when a block's commit failed after its state was
	// applied (failLocked): the state in memory may be ahead of what is
	// stored, so the enclave imports and authors nothing more; the host
	// stops, and a restart rebuilds the state from what is stored.
	failed      error
	viewLive    bool         // the view was read in this run (not restored from sealed progress)
	warnedJoin  bool         // logged once that a fresh enclave must join
	confirms    []types.Call // parentchain confirmations due after the next commit
	queue       blockQueue   // peers' blocks that wait for a parent or a parentchain block
	heartbeatAt int64        // parentchain height of the last heartbeat sent
	lastSlot    uint64
	// watchesExpired is when OnSlot last ended overdue watches.
	watchesExpired time.Time
	unshields      map[[32]byte]int64 // parentchain height at which each was sent in this run
	// send queues the parentchain calls, sent without the lock (sender.go).
	send sender
	// confirmSent is the last sidechain block this enclave sent for
	// confirmation, and the parentchain height it was sent at.
	confirmSent   uint64
	confirmSentAt int64
	// outboxAt is the block each outbox entry appeared in; anchorChecked
	// the last parentchain-confirmed block found on this enclave's chain.
	outboxAt map[[32]byte]uint64
	unfinal  []inBlock // blocks whose operations' watchers wait for Finalized
	finalDue []inBlock // anchored blocks whose watchers learn it after the unlock
	// snapDue is a snapshot due at the last commit, taken after the unlock;
	// snapEpoch counts the state's replacements (rollbacks, joins), so that
	// a snapshot taken from a replaced state is not listed (snapshot.go).
	snapDue   *snapJob
	snapEpoch uint64
	snaps     snapshotter
	// recentCalls are the calls of unfinal blocks this enclave had pooled,
	// pooled again if a fork drops their block.
	recentCalls   map[[32]byte]*stf.SignedCall
	forkAt        uint64 // lowest height of a competing block not yet resolved
	anchorChecked scmodule.BlockConfirmation
	stats         Stats
}

// syncMeta is what the enclave knows of the parentchain beyond the light
// client: the view of the chain's state it read by proof, and whether it
// announced itself. Sealed with each block.
type syncMeta struct {
	LightClient []byte    `cbor:"1,keyasint"`
	Announced   bool      `cbor:"3,keyasint"`
	L1Number    int64     `cbor:"4,keyasint"`
	L1Hash      [32]byte  `cbor:"5,keyasint"`
	View        chainView `cbor:"6,keyasint"`
	// Inbox holds verified parentchain calls for the shard that no sidechain
	// block has taken yet (inbox.go).
	Inbox []l1Block `cbor:"7,keyasint,omitempty"`
	// Heads are the last verified parentchain blocks, so that a restarted
	// enclave can still check the layer-one heads of its peers' blocks.
	Heads []sealedHead `cbor:"8,keyasint,omitempty"`
	// Taken holds inbox entries that blocks took, until a block at or above
	// them is anchored: a fork's rollback gives them back.
	Taken []l1Block `cbor:"9,keyasint,omitempty"`
	// JoinedAt is the number of the head block this enclave joined the
	// shard with over mutual attestation (0: it did not join): it holds
	// no block below it, and took the state there as the shard's.
	JoinedAt uint64 `cbor:"10,keyasint,omitempty"`
}

// Stats are counters the host exports as metrics.
type Stats struct {
	CallsOK, CallsFailed uint64
	LastExecution        time.Duration
	// ProofFailures counts parentchain state reads the host answered with
	// proofs that did not verify.
	ProofFailures uint64
	// ViewHeight is the parentchain height of the last state read that
	// verified (0: none).
	ViewHeight int64
	// BlocksProposed counts the blocks this enclave authored; BlocksImported
	// the peers' blocks it imported.
	BlocksProposed, BlocksImported uint64
	// Forks counts peers' blocks that competed with a block this enclave
	// already holds at the same height (refused: the first seen stays).
	Forks uint64
	// Rollbacks counts forks this enclave lost: it rolled its state back to
	// the common ancestor and took the winning branch.
	Rollbacks uint64
	// Queued is the number of peers' blocks waiting for a parent or for
	// their parentchain block; Behind how many blocks the highest of them is
	// ahead of the head.
	Queued int
	Behind uint64
}

// New unseals (or creates) the enclave's keys and restores its state and
// parentchain progress from what the host stored.
func New(ctx context.Context, b tee.Backend, host Host, cfg Config, log *slog.Logger) (*Enclave, error) {
	if err := cfg.ValidateBasic(); err != nil {
		return nil, err
	}
	k, created, err := keys.LoadOrCreate(b, host)
	if err != nil {
		return nil, fmt.Errorf("enclave: keys: %w", err)
	}
	shard := cfg.Shard
	if shard == (sidechain.ShardID{}) {
		shard = sidechain.ShardID(b.MrEnclave())
	}
	p, err := pool.New(cfg.Pool)
	if err != nil {
		return nil, err
	}
	e := &Enclave{
		cfg: cfg, log: log, backend: b, host: host, keys: k,
		codec: types.NewCodec(), cbor: codec.New(), sc: sidechain.NewCodec(),
		// The root of a new shard comes from the parentchain (chainView.Root),
		// set in the shard's first block; never from the host.
		stf: stf.New(b.MrEnclave(), shard, account.ID{}), pool: p, shard: shard,
		unshields: map[[32]byte]int64{},
	}
	log.Info("enclave keys", "created", created, "signer", k.Signer().ID(), "mrenclave", b.MrEnclave(), "shard", shard)
	if err := e.restore(); err != nil {
		return nil, err
	}
	return e, nil
}

// MrEnclave returns the enclave's measurement.
func (e *Enclave) MrEnclave() attestation.MrEnclave { return e.backend.MrEnclave() }

// Signer returns the enclave's account (its signing key).
func (e *Enclave) Signer() account.ID { return e.keys.Signer().ID() }

// ShardID returns the shard the enclave serves.
func (e *Enclave) ShardID() sidechain.ShardID { return e.shard }

// ShieldingPublicKey returns the shard's HPKE public key.
func (e *Enclave) ShieldingPublicKey() []byte { return e.keys.ShieldingPublicKey() }

// Stats returns the enclave's counters.
func (e *Enclave) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.stats
	st.ViewHeight = e.sync.View.Height
	st.Queued = len(e.queue.blocks)
	if top := e.queue.top(); top > 0 && e.head != nil && top > e.head.Header.Number {
		st.Behind = top - e.head.Header.Number
	}
	return st
}

// Progress reports the sidechain head's number, the pool's size, the
// state's size and the total issuance.
func (e *Enclave) Progress() (block uint64, poolSize, stateSize int, issuance types.Balance) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.head != nil {
		block = e.head.Header.Number
	}
	return block, e.pool.Len(), e.state.Size(), e.state.TotalIssuance()
}

// Head returns the sidechain head's number and hash (ok false before the
// first block).
func (e *Enclave) Head() (uint64, sidechain.Hash, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.head == nil {
		return 0, sidechain.Hash{}, false
	}
	return e.head.Header.Number, e.headHash, true
}

// Ready reports whether the shard has a block.
func (e *Enclave) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.head != nil
}

// Initialized reports whether the shard has a block and the parentchain
// lists this enclave in the shard's status (so the shard is known there and
// users can shield into it).
func (e *Enclave) Initialized() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.head != nil && slices.Contains(e.sync.View.Authorities, e.Signer())
}

// Finalized returns the shard's last sidechain block confirmed on the
// parentchain, as the enclave last read it by proof.
func (e *Enclave) Finalized() (uint64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f := e.sync.View.Finalized; f != nil {
		return f.Number, true
	}
	return 0, false
}

// registrationProof returns the attestation for teerex.register_enclave:
// a quote binding the signing key, or with skip the bare mrenclave.
func (e *Enclave) registrationProof(skip bool) (method string, proof []byte, err error) {
	if skip {
		m := e.MrEnclave()
		return "skip", m[:], nil
	}
	var rd [64]byte
	id := e.Signer()
	copy(rd[:], id[:])
	q, err := e.backend.Quote(rd)
	if err != nil {
		return "", nil, fmt.Errorf("enclave: quote: %w", err)
	}
	return e.backend.Name(), q, nil
}

// Register composes teerex.register_enclave with a fresh attestation of the
// enclave's signing key (with skip, the bare mrenclave, which only dev
// chains accept) and url, signs it as the enclave's account and hands it to
// the host. It returns the attestation method used. Like every parentchain
// call the enclave signs, it is built inside: no ECALL signs a call the host
// composed (DESIGN.md §3).
func (e *Enclave) Register(ctx context.Context, url string, skip bool) (method string, err error) {
	method, proof, err := e.registrationProof(skip)
	if err != nil {
		return "", err
	}
	call, err := types.NewCall(e.codec, teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{Proof: proof, URL: url, Method: method})
	if err != nil {
		return "", err
	}
	done := make(chan error, 1)
	e.mu.Lock()
	e.queueLocked(call, nil, done)
	e.mu.Unlock()
	e.sendQueued(ctx)
	select {
	case err := <-done:
		return method, err
	case <-ctx.Done():
		return method, ctx.Err()
	}
}

// State keys of what the enclave keeps at the host.
const (
	keySnapshotPrefix = "snapshot/"
	keySyncPrefix     = "sync/"
)

func numberKey(prefix string, n uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return fmt.Sprintf("%s%x", prefix, b)
}

// stateAAD binds an encrypted blob to its shard and purpose.
func (e *Enclave) stateAAD(purpose string) []byte {
	return append([]byte("integritee state "+purpose+":"), e.shard[:]...)
}
