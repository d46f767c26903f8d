// Package pool is the enclave's top pool: the trusted calls that wait for a
// sidechain block, ordered per account by nonce, with status notifications
// for the clients watching them.
//
// An operation is Ready when its nonce is its signer's state nonce or
// directly follows a contiguous run of the signer's pooled operations from
// the state nonce; otherwise it is Future, and becomes Ready when the gap
// is filled (or the state catches up). The pool does not verify signatures
// or execute anything: the RPC verifies a call (stf.STF.VerifyCall) before
// it submits it with its operation hash (stf.SignedCall.Hash), which the
// pool takes on trust; the block producer executes what Ready returns and
// reports the outcome with MarkInBlock and MarkInvalid.
package pool

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/types"
)

// ModuleName is the codespace of the pool's errors.
const ModuleName = "pool"

// Named errors.
var (
	ErrDuplicate     = types.NewError(ModuleName, 1, "Duplicate", "operation is already in the pool")
	ErrPoolFull      = types.NewError(ModuleName, 2, "PoolFull", "pool is full")
	ErrAccountFull   = types.NewError(ModuleName, 3, "TooManyForAccount", "signer has too many operations in the pool")
	ErrNonceTaken    = types.NewError(ModuleName, 4, "NonceTaken", "another operation of the signer with this nonce is in the pool")
	ErrInvalidConfig = types.NewError(ModuleName, 5, "InvalidConfig", "invalid pool configuration")
	ErrMalformed     = types.NewError(ModuleName, 6, "Malformed", "no operation")
	ErrFutureFull    = types.NewError(ModuleName, 7, "TooManyFuture", "too many operations wait for a lower nonce (of this signer, or in the pool); send the missing nonces first")
	// ErrStaleNonce is the STF's error, so that a client sees one name for
	// a used nonce whether the pool or the STF finds it.
	ErrStaleNonce = stf.ErrStaleNonce
)

// Defaults of Config.
const (
	DefaultMaxSize             = 100_000
	DefaultMaxPerAccount       = 10_000
	DefaultMaxFuture           = 10_000
	DefaultMaxFuturePerAccount = 64
	DefaultFutureTTL           = 2 * time.Minute
)

// Config bounds the pool. Zero fields take their defaults.
//
// Future operations (above a gap in their signer's nonces) are bounded
// apart and expire: anyone can make keys and sign operations with far
// nonces for free, and those would otherwise hold their place forever,
// since no block executes or refuses them.
type Config struct {
	// MaxSize bounds the number of pooled operations.
	MaxSize int
	// MaxPerAccount bounds the pooled operations of one signer.
	MaxPerAccount int
	// MaxFuture bounds the Future operations of all signers.
	MaxFuture int
	// MaxFuturePerAccount bounds the Future operations of one signer.
	MaxFuturePerAccount int
	// FutureTTL is how long an operation may stay Future; ExpireFuture
	// then drops it.
	FutureTTL time.Duration
}

// DefaultConfig returns the default bounds.
func DefaultConfig() Config {
	return Config{MaxSize: DefaultMaxSize, MaxPerAccount: DefaultMaxPerAccount, MaxFuture: DefaultMaxFuture,
		MaxFuturePerAccount: DefaultMaxFuturePerAccount, FutureTTL: DefaultFutureTTL}
}

func (c Config) withDefaults() Config {
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.MaxPerAccount == 0 {
		c.MaxPerAccount = DefaultMaxPerAccount
	}
	if c.MaxFuture == 0 {
		c.MaxFuture = DefaultMaxFuture
	}
	if c.MaxFuturePerAccount == 0 {
		c.MaxFuturePerAccount = DefaultMaxFuturePerAccount
	}
	if c.FutureTTL == 0 {
		c.FutureTTL = DefaultFutureTTL
	}
	return c
}

// ValidateBasic checks the bounds: zero means the default, negative is
// refused.
func (c Config) ValidateBasic() error {
	if c.MaxSize < 0 {
		return ErrInvalidConfig.Wrap("MaxSize %d is negative", c.MaxSize)
	}
	if c.MaxPerAccount < 0 {
		return ErrInvalidConfig.Wrap("MaxPerAccount %d is negative", c.MaxPerAccount)
	}
	if c.MaxFuture < 0 {
		return ErrInvalidConfig.Wrap("MaxFuture %d is negative", c.MaxFuture)
	}
	if c.MaxFuturePerAccount < 0 {
		return ErrInvalidConfig.Wrap("MaxFuturePerAccount %d is negative", c.MaxFuturePerAccount)
	}
	if c.FutureTTL < 0 {
		return ErrInvalidConfig.Wrap("FutureTTL %s is negative", c.FutureTTL)
	}
	return nil
}

// Status is an operation's status as its watchers see it.
type Status uint8

// Statuses. Finalized, Invalid and Dropped are final: no status follows
// them and the watcher's channel is closed after them. InSidechainBlock is
// not: the block may still be retracted by a fork (Retracted, after which
// the operation is pooled again or is InSidechainBlock of the winning
// block), until the parentchain anchors it (Finalized).
const (
	// Submitted: the pool accepted the operation.
	Submitted Status = iota + 1
	// Ready: the operation can execute in the next block.
	Ready
	// Future: the operation waits for a lower nonce of its signer.
	Future
	// InSidechainBlock: the operation executed in a block (StatusEvent.BlockHash).
	InSidechainBlock
	// Invalid: the operation cannot execute (StatusEvent.Reason), e.g. its
	// nonce was used by another operation or the STF refused it.
	Invalid
	// Dropped: the operation left the pool without a verdict (Remove).
	Dropped
	// Retracted: the block the operation was in lost a fork.
	Retracted
	// Finalized: the operation's block (StatusEvent.BlockHash) is anchored
	// on the parentchain.
	Finalized
)

var statusNames = [...]string{"", "Submitted", "Ready", "Future", "InSidechainBlock", "Invalid", "Dropped", "Retracted", "Finalized"}

// String returns the status's name as the trusted RPC spells it.
func (s Status) String() string {
	if int(s) < len(statusNames) && s != 0 {
		return statusNames[s]
	}
	return "Unknown"
}

// Final reports whether no status follows s.
func (s Status) Final() bool { return s == Finalized || s == Invalid || s == Dropped }

// StatusEvent is one status of one operation.
type StatusEvent struct {
	Hash   [32]byte
	Status Status
	// BlockHash is the sidechain block of an InSidechainBlock status.
	BlockHash [32]byte
	// Reason says why an operation is Invalid.
	Reason string
}

// Entry is a pooled operation.
type Entry struct {
	Hash [32]byte
	Op   *stf.SignedCall
	// Status is Ready or Future at the time of the call.
	Status Status
}

// watchBuffer is a watcher channel's capacity. Non-final statuses are sent
// only while at least one slot stays free, so the final status always gets
// through; a watcher that lags behind by watchBuffer-1 statuses misses
// intermediate ones.
const watchBuffer = 16

type entry struct {
	hash  [32]byte
	op    *stf.SignedCall
	seq   uint64 // arrival order
	ready bool
	// futureSince is the first ExpireFuture sweep that saw the entry
	// Future (zero: none yet, or it is Ready).
	futureSince time.Time
}

func (e *entry) export() Entry {
	st := Future
	if e.ready {
		st = Ready
	}
	return Entry{Hash: e.hash, Op: e.op, Status: st}
}

// queue holds one signer's operations. Invariant: no operation has a nonce
// below next; the nonces [next, readyEnd) are all present and Ready; the
// nonce readyEnd is absent; every operation above it is Future.
type queue struct {
	next     uint64
	readyEnd uint64
	ops      map[uint64]*entry
}

// future returns how many of q's operations are Future.
func (q *queue) future() int { return len(q.ops) - int(q.readyEnd-q.next) }

// Pool is the top pool. It is safe for concurrent use.
type Pool struct {
	mu       sync.Mutex
	cfg      Config
	seq      uint64
	byHash   map[[32]byte]*entry
	accounts map[account.ID]*queue
	watchers map[[32]byte][]*watcher
	nwatch   int // watchers in all of watchers
	future   int // Future operations in all queues
}

// watcher is one subscription: a channel (Subscribe, SubmitAndWatch) or a
// function (SubmitAndWatchFunc).
type watcher struct {
	ch chan StatusEvent
	fn func(StatusEvent)
	// inBlock is when the operation was last reported InSidechainBlock
	// (zero otherwise); ExpireWatches ends watches that wait too long for
	// Finalized after it.
	inBlock time.Time
}

// send delivers a non-final ev to w without blocking.
func (w *watcher) send(ev StatusEvent) {
	if w.fn != nil {
		w.fn(ev)
		return
	}
	if len(w.ch) < cap(w.ch)-1 {
		w.ch <- ev
	}
}

// end delivers the final ev (or, if nil, nothing) and closes w.
func (w *watcher) end(ev *StatusEvent) {
	if w.fn != nil {
		if ev != nil {
			w.fn(*ev)
		}
		return
	}
	if ev != nil {
		w.ch <- *ev // a slot is always free for it
	}
	close(w.ch)
}

// New returns an empty pool; zero fields of cfg take their defaults.
func New(cfg Config) (*Pool, error) {
	if err := cfg.ValidateBasic(); err != nil {
		return nil, err
	}
	return &Pool{
		cfg:      cfg.withDefaults(),
		byHash:   map[[32]byte]*entry{},
		accounts: map[account.ID]*queue{},
		watchers: map[[32]byte][]*watcher{},
	}, nil
}

// Config returns the pool's bounds, defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// Submit adds op, whose operation hash is hash, for a signer whose nonce in
// the current state is stateNonce. It refuses the operation if it is pooled
// already (ErrDuplicate), its nonce is below the state nonce or the pool's
// (ErrStaleNonce)
// or held by another pooled operation (ErrNonceTaken), or a bound is reached
// (ErrPoolFull, ErrAccountFull). An accepted operation's watchers receive
// Submitted, then Ready or Future, which Submit also returns.
func (p *Pool) Submit(op *stf.SignedCall, hash [32]byte, stateNonce uint64) (Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.submitLocked(op, hash, stateNonce)
}

// SubmitAndWatch is Submit and Subscribe in one step, so no status is
// missed: the channel receives Submitted, then Ready or Future, and so on.
// On error there is no channel.
func (p *Pool) SubmitAndWatch(op *stf.SignedCall, hash [32]byte, stateNonce uint64) (Status, <-chan StatusEvent, error) {
	ch := make(chan StatusEvent, watchBuffer)
	st, err := p.submitWatched(op, hash, stateNonce, &watcher{ch: ch})
	if err != nil {
		return 0, nil, err
	}
	return st, ch, nil
}

// SubmitAndWatchFunc is SubmitAndWatch with a function that receives the
// statuses instead of a channel: it is called with the pool's lock held, so
// it must not block or call the pool. It receives every status; after the
// final one (or an expiry, ExpireWatches) it is not called again. A
// function costs no goroutine or buffer per operation, which matters at
// thousands of watched operations a second.
func (p *Pool) SubmitAndWatchFunc(op *stf.SignedCall, hash [32]byte, stateNonce uint64, fn func(StatusEvent)) (Status, error) {
	return p.submitWatched(op, hash, stateNonce, &watcher{fn: fn})
}

// Pending is one operation for SubmitMany.
type Pending struct {
	Op   *stf.SignedCall
	Hash [32]byte
	// Watch, if not nil, receives the operation's statuses, as
	// SubmitAndWatchFunc's function does.
	Watch func(StatusEvent)
}

// Result is one operation's outcome in SubmitMany: its status once pooled
// (Ready or Future), or the error that refused it.
type Result struct {
	Status Status
	Err    error
}

// SubmitMany submits ops in order under one hold of the pool's lock and
// returns each one's outcome, as Submit would. It reads each signer's state
// nonce with nonceOf while it holds the lock; nonceOf must not call the
// pool.
//
// Callers that read the state without the block producer's lock must use
// it rather than Submit: a state nonce read before the pool's lock may be
// older than what the pool was told since. If a block executes a signer's
// last pooled operation between such a read and Submit, the pool forgets
// the signer (its queue is empty) and the stale nonce starts a new queue
// below the gap that nothing will fill: the signer's next operations stay
// Future until they expire. The producer applies a block's state before it
// marks the block's operations (MarkInBlock), so a nonce read under the
// pool's lock is never older than the pool's own knowledge.
func (p *Pool) SubmitMany(ops []Pending, nonceOf func(account.ID) uint64) []Result {
	out := make([]Result, len(ops))
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range ops {
		if o.Op == nil {
			out[i].Err = ErrMalformed
			continue
		}
		if o.Watch != nil {
			out[i].Status, out[i].Err = p.submitWatchedLocked(o.Op, o.Hash, nonceOf(o.Op.Signer), &watcher{fn: o.Watch})
		} else {
			out[i].Status, out[i].Err = p.submitLocked(o.Op, o.Hash, nonceOf(o.Op.Signer))
		}
	}
	return out
}

func (p *Pool) submitWatched(op *stf.SignedCall, hash [32]byte, stateNonce uint64, w *watcher) (Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.submitWatchedLocked(op, hash, stateNonce, w)
}

// submitWatchedLocked is submitLocked with w watching from the operation's
// first status on; w is forgotten if the operation is refused.
func (p *Pool) submitWatchedLocked(op *stf.SignedCall, hash [32]byte, stateNonce uint64, w *watcher) (Status, error) {
	p.addWatcherLocked(hash, w)
	st, err := p.submitLocked(op, hash, stateNonce)
	if err != nil {
		p.removeWatcherLocked(hash, w)
		return 0, err
	}
	return st, nil
}

func (p *Pool) addWatcherLocked(hash [32]byte, w *watcher) {
	p.watchers[hash] = append(p.watchers[hash], w)
	p.nwatch++
}

// removeWatcherLocked forgets w without a status; a channel is closed.
func (p *Pool) removeWatcherLocked(hash [32]byte, w *watcher) {
	ws := p.watchers[hash]
	i := slices.Index(ws, w)
	if i < 0 {
		return
	}
	w.end(nil)
	p.nwatch--
	if ws = slices.Delete(ws, i, i+1); len(ws) == 0 {
		delete(p.watchers, hash)
	} else {
		p.watchers[hash] = ws
	}
}

// ExpireWatches ends the watches whose operation has been InSidechainBlock
// since before t without reaching a final status (its block is not
// anchored yet: the primary is gone, or this enclave halted). A channel is
// closed without a final status; a function is not called again. It
// returns how many ended.
func (p *Pool) ExpireWatches(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for hash, ws := range p.watchers {
		for _, w := range slices.Clone(ws) {
			if !w.inBlock.IsZero() && w.inBlock.Before(t) {
				p.removeWatcherLocked(hash, w)
				n++
			}
		}
	}
	return n
}

func (p *Pool) submitLocked(op *stf.SignedCall, hash [32]byte, stateNonce uint64) (Status, error) {
	if op == nil {
		return 0, ErrMalformed
	}
	if _, dup := p.byHash[hash]; dup {
		return 0, ErrDuplicate.Wrap("0x%x", hash)
	}
	q := p.accounts[op.Signer]
	if q != nil && q.next > stateNonce {
		stateNonce = q.next // the pool may have seen a later state
	}
	// A state nonce above q.next does not advance the queue here: the
	// caller reads the state without the importer's lock, and may see a
	// block's state before the importer marks its operations in the block
	// (MarkInBlock); advancing would report them Invalid. The importer
	// brings the queue up (MarkInBlock, Prune) once it has marked them.
	switch {
	case op.Nonce < stateNonce:
		return 0, ErrStaleNonce.Wrap("%s: nonce %d, state nonce %d", op.Signer, op.Nonce, stateNonce)
	case q != nil && q.ops[op.Nonce] != nil:
		return 0, ErrNonceTaken.Wrap("%s: nonce %d", op.Signer, op.Nonce)
	case len(p.byHash) >= p.cfg.MaxSize:
		return 0, ErrPoolFull.Wrap("%d operations", len(p.byHash))
	case q != nil && len(q.ops) >= p.cfg.MaxPerAccount:
		return 0, ErrAccountFull.Wrap("%s has %d operations", op.Signer, len(q.ops))
	}
	if q == nil {
		q = &queue{next: stateNonce, readyEnd: stateNonce, ops: map[uint64]*entry{}}
	}
	if op.Nonce != q.readyEnd { // it would be Future
		switch {
		case q.future() >= p.cfg.MaxFuturePerAccount:
			return 0, ErrFutureFull.Wrap("%s: %d operations wait for nonce %d", op.Signer, q.future(), q.readyEnd)
		case p.future >= p.cfg.MaxFuture:
			return 0, ErrFutureFull.Wrap("%d operations in the pool wait for a lower nonce", p.future)
		}
	}
	p.accounts[op.Signer] = q
	p.seq++
	e := &entry{hash: hash, op: op, seq: p.seq}
	q.ops[op.Nonce] = e
	p.byHash[hash] = e
	p.future++ // until promote readies it
	p.notify(StatusEvent{Hash: hash, Status: Submitted})
	if op.Nonce == q.readyEnd {
		p.promote(q)
		return Ready, nil
	}
	p.notify(StatusEvent{Hash: hash, Status: Future})
	return Future, nil
}

// promote extends the ready run over the nonces following it.
func (p *Pool) promote(q *queue) {
	for {
		e := q.ops[q.readyEnd]
		if e == nil {
			return
		}
		if !e.ready {
			e.ready, e.futureSince = true, time.Time{}
			p.future--
			p.notify(StatusEvent{Hash: e.hash, Status: Ready})
		}
		q.readyEnd++
	}
}

// demote makes the ready operations from nonce from on Future.
func (p *Pool) demote(q *queue, from uint64) {
	for n := from; n < q.readyEnd; n++ {
		if e := q.ops[n]; e != nil && e.ready {
			e.ready = false
			p.future++
			p.notify(StatusEvent{Hash: e.hash, Status: Future})
		}
	}
	if from < q.readyEnd {
		q.readyEnd = from
	}
}

// advance raises q's state nonce to n (> q.next): operations below it are
// stale and leave the pool as Invalid. The caller drops q if it is empty.
func (p *Pool) advance(q *queue, n uint64) int {
	pruned := 0
	stale := func(nonce uint64, e *entry) {
		delete(q.ops, nonce)
		delete(p.byHash, e.hash)
		if !e.ready {
			p.future--
		}
		p.notify(StatusEvent{Hash: e.hash, Status: Invalid, Reason: "stale nonce: the signer's nonce was used"})
		pruned++
	}
	if n-q.next <= uint64(len(q.ops)) {
		// No operation is below q.next: look up the few nonces in between
		// rather than walk the map (a block advances each signer by the
		// operations it executed, usually one).
		for nonce := q.next; nonce < n; nonce++ {
			if e := q.ops[nonce]; e != nil {
				stale(nonce, e)
			}
		}
	} else {
		for nonce, e := range q.ops {
			if nonce < n {
				stale(nonce, e)
			}
		}
	}
	q.next = n
	if q.readyEnd < n {
		q.readyEnd = n
	}
	p.promote(q)
	return pruned
}

// NextNonce returns the nonce who's next operation should carry: past its
// state nonce stateNonce and past its operations Ready in the pool, as the
// parentchain's next nonce counts its mempool. A client that submitted
// through one validateer and asks another, not yet at the block holding
// that operation but holding it forwarded, thus does not reuse its nonce.
func (p *Pool) NextNonce(who account.ID, stateNonce uint64) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if q := p.accounts[who]; q != nil && q.readyEnd > stateNonce {
		return q.readyEnd
	}
	return stateNonce
}

// Prune tells the pool that who's nonce in the state is now stateNonce: its
// operations with lower nonces would be stale and leave the pool as Invalid;
// those from stateNonce on are Ready or Future accordingly. A lower
// stateNonce than the pool knew (after a fork's state rollback) is accepted.
// It returns how many operations were pruned.
func (p *Pool) Prune(who account.ID, stateNonce uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.accounts[who]
	switch {
	case q == nil || stateNonce == q.next:
		return 0
	case stateNonce > q.next:
		n := p.advance(q, stateNonce)
		p.dropEmpty(who, q)
		return n
	}
	// Rollback: all pooled nonces are above stateNonce, so none is Ready.
	p.demote(q, q.next)
	q.next, q.readyEnd = stateNonce, stateNonce
	p.promote(q)
	return 0
}

// PruneAccounts is Prune for each of ids that has pooled operations, with
// its state nonce from nonceOf (called with the pool's lock held; it must
// not call the pool). The importer calls it with the accounts a peer's
// block changed, whose operations this pool may not have held.
func (p *Pool) PruneAccounts(ids []account.ID, nonceOf func(account.ID) uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, id := range ids {
		if q := p.accounts[id]; q != nil {
			if next := nonceOf(id); next > q.next {
				n += p.advance(q, next)
				p.dropEmpty(id, q)
			}
		}
	}
	return n
}

// detach takes e out of the pool. If keepRun is false, the signer's
// operations after e lose their Ready status (a gap opened at e's nonce).
func (p *Pool) detach(e *entry, keepRun bool) *queue {
	q := p.accounts[e.op.Signer]
	delete(p.byHash, e.hash)
	delete(q.ops, e.op.Nonce)
	if !e.ready {
		p.future--
	}
	if !keepRun && e.ready {
		p.demote(q, e.op.Nonce)
	}
	return q
}

func (p *Pool) dropEmpty(signer account.ID, q *queue) {
	if len(q.ops) == 0 {
		delete(p.accounts, signer)
	}
}

// ExpireFuture drops the operations that have been Future since before
// now minus the configured FutureTTL (their watchers receive Dropped) and
// returns how many. The enclave calls it about once a second: an
// operation's Future time counts from the first call that sees it Future,
// so it is dropped between FutureTTL and FutureTTL plus one period later.
func (p *Pool) ExpireFuture(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.future == 0 {
		return 0
	}
	cutoff := now.Add(-p.cfg.FutureTTL)
	n := 0
	for signer, q := range p.accounts {
		if q.future() == 0 {
			continue
		}
		for _, e := range q.ops {
			switch {
			case e.ready:
			case e.futureSince.IsZero():
				e.futureSince = now
			case e.futureSince.Before(cutoff):
				p.detach(e, true) // a Future operation ends no Ready run
				p.notify(StatusEvent{Hash: e.hash, Status: Dropped, Reason: "waited longer than " + p.cfg.FutureTTL.String() + " for a lower nonce"})
				n++
			}
		}
		p.dropEmpty(signer, q)
	}
	return n
}

// FutureLen returns how many pooled operations are Future.
func (p *Pool) FutureLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.future
}

// Remove takes operations out of the pool without a verdict; their
// watchers receive Dropped. Operations after a removed one of the same
// signer become Future. It returns how many were pooled. When the outcome
// is known, use MarkInBlock or MarkInvalid instead: they remove as well.
func (p *Pool) Remove(hashes ...[32]byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, h := range hashes {
		e := p.byHash[h]
		if e == nil {
			continue
		}
		q := p.detach(e, false)
		p.dropEmpty(e.op.Signer, q)
		p.notify(StatusEvent{Hash: h, Status: Dropped})
		n++
	}
	return n
}

// MarkInBlock reports operations executed in the sidechain block blockHash:
// they leave the pool, their signers' state nonces are known to be past
// them, and their watchers receive InSidechainBlock(blockHash). Watchers of
// hashes not in the pool are notified too.
func (p *Pool) MarkInBlock(hashes [][32]byte, blockHash [32]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range hashes {
		if e := p.byHash[h]; e != nil {
			q := p.detach(e, true)
			if next := e.op.Nonce + 1; next > q.next {
				p.advance(q, next)
			}
			p.dropEmpty(e.op.Signer, q)
		}
		p.notify(StatusEvent{Hash: h, Status: InSidechainBlock, BlockHash: blockHash})
	}
}

// MarkFinalized reports operations whose block, blockHash, the parentchain
// anchored: their watchers receive Finalized, the final status.
func (p *Pool) MarkFinalized(hashes [][32]byte, blockHash [32]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range hashes {
		p.notify(StatusEvent{Hash: h, Status: Finalized, BlockHash: blockHash})
	}
}

// Retract reports operations whose block lost a fork: their watchers
// receive Retracted. The caller pools again those the winning branch does
// not hold.
func (p *Pool) Retract(hashes [][32]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range hashes {
		p.notify(StatusEvent{Hash: h, Status: Retracted})
	}
}

// MarkInvalid reports an operation that cannot execute: it leaves the pool
// (its signer's later operations become Future) and its watchers receive
// Invalid(reason), even if it was not pooled.
func (p *Pool) MarkInvalid(hash [32]byte, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.byHash[hash]; e != nil {
		q := p.detach(e, false)
		p.dropEmpty(e.op.Signer, q)
	}
	p.notify(StatusEvent{Hash: hash, Status: Invalid, Reason: reason})
}

// Ready returns up to max Ready operations (all of them if max <= 0) in
// execution order: round robin across signers, each signer's operations in
// increasing nonce order. Signers take turns in the order their first ready
// operation arrived; each round takes one operation of each signer that
// has one left. So one busy signer cannot fill a block while others wait,
// and executing the list in order never meets a nonce gap. The operations
// stay pooled until removed or marked.
func (p *Pool) Ready(max int) []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	var qs []*queue
	total := 0
	for _, q := range p.accounts {
		if q.readyEnd > q.next {
			qs = append(qs, q)
			total += int(q.readyEnd - q.next)
		}
	}
	slices.SortFunc(qs, func(a, b *queue) int { return cmp.Compare(a.ops[a.next].seq, b.ops[b.next].seq) })
	if max <= 0 || max > total {
		max = total
	}
	out := make([]Entry, 0, max)
	for round := uint64(0); len(out) < max; round++ {
		for _, q := range qs {
			if n := q.next + round; n < q.readyEnd {
				out = append(out, q.ops[n].export())
				if len(out) == max {
					break
				}
			}
		}
	}
	return out
}

// Pending returns every pooled operation, Ready and Future, in arrival
// order.
func (p *Pool) Pending() []Entry {
	p.mu.Lock()
	es := make([]*entry, 0, len(p.byHash))
	for _, e := range p.byHash {
		es = append(es, e)
	}
	out := make([]Entry, len(es))
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	for i, e := range es {
		out[i] = e.export()
	}
	p.mu.Unlock()
	return out
}

// Get returns the pooled operation of hash.
func (p *Pool) Get(hash [32]byte) (Entry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.byHash[hash]
	if e == nil {
		return Entry{}, false
	}
	return e.export(), true
}

// Len returns the number of pooled operations.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byHash)
}

// Subscribe returns a channel that receives the statuses of the operation
// hash from now on, and is closed after a final one. If the operation is
// pooled, its current status (Ready or Future) is sent first. A hash need
// not be pooled yet (subscribe, then submit), but then the caller must
// Unsubscribe if the submission fails or the operation is never marked;
// SubmitAndWatch does both steps at once.
func (p *Pool) Subscribe(hash [32]byte) <-chan StatusEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan StatusEvent, watchBuffer)
	p.addWatcherLocked(hash, &watcher{ch: ch})
	if e := p.byHash[hash]; e != nil {
		ch <- StatusEvent{Hash: hash, Status: e.export().Status}
	}
	return ch
}

// Unsubscribe stops and closes a channel returned by Subscribe or
// SubmitAndWatch. Unsubscribing a closed or unknown channel does nothing.
func (p *Pool) Unsubscribe(hash [32]byte, ch <-chan StatusEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.watchers[hash] {
		if w.ch != nil && (<-chan StatusEvent)(w.ch) == ch {
			p.removeWatcherLocked(hash, w)
			return
		}
	}
}

// Watchers returns the number of open subscriptions.
func (p *Pool) Watchers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nwatch
}

// notify sends ev to the watchers of its hash without blocking; p.mu is
// held. A final status ends and forgets them.
func (p *Pool) notify(ev StatusEvent) {
	ws := p.watchers[ev.Hash]
	if len(ws) == 0 {
		return
	}
	if ev.Status.Final() {
		for _, w := range ws {
			w.end(&ev)
		}
		p.nwatch -= len(ws)
		delete(p.watchers, ev.Hash)
		return
	}
	for _, w := range ws {
		switch ev.Status {
		case InSidechainBlock:
			w.inBlock = time.Now()
		case Retracted:
			w.inBlock = time.Time{}
		}
		w.send(ev)
	}
}
