package enclave

import (
	"bytes"
	"context"
	"errors"
	"slices"

	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	scmodule "github.com/integritee-go/integritee/parentchain/modules/sidechain"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/proof"
)

// StateRead is the host's answer for one parentchain state key: the stored
// value (nil when the key is absent) and the proof ops that show it against
// the app hash of the height asked for (package parentchain/proof). The
// enclave trusts none of it until the proof verifies.
type StateRead struct {
	Key   []byte
	Value []byte
	Ops   *cmtcrypto.ProofOps
}

// ErrStateUnavailable is what Host.ReadParentchainState returns when the
// node cannot prove the height asked for (pruned, or not yet committed).
// The enclave then knows no fresh fact and waits, acting on none.
var ErrStateUnavailable = errors.New("enclave: parentchain state not provable at that height")

// chainView is what the enclave knows of the parentchain's state, every
// fact read by proof from the state after one verified block. The enclave
// acts on it (authoring, unshielding, confirming) only while it is fresh:
// read at the height the light client last verified.
type chainView struct {
	// Height is the verified parentchain height the view was read at; 0
	// for none.
	Height int64 `cbor:"1,keyasint"`
	// Authorities are the shard's ShardStatus signers as the chain filters
	// them (registered, with the authorised fingerprint), in order.
	Authorities []account.ID `cbor:"2,keyasint"`
	// Finalized is the shard's last sidechain block confirmed on the
	// parentchain, if any.
	Finalized *scmodule.BlockConfirmation `cbor:"3,keyasint,omitempty"`
	// SelfAuthorised is set when this enclave's own registration is one the
	// chain authorises for the shard (fingerprint and security flags).
	SelfAuthorised bool `cbor:"8,keyasint"`
	// Fingerprint is the mrenclave the chain authorises for the shard.
	Fingerprint [32]byte `cbor:"5,keyasint"`
	// Flags and Params are the registry's security flags and parameters.
	Flags  teerex.SecurityFlags `cbor:"6,keyasint"`
	Params teerex.Params        `cbor:"7,keyasint"`
	// Root is the sidechain root account the chain gives a new shard: its
	// sudo account on a chain whose security flags allow simulated
	// attestation (a development chain), none otherwise.
	Root account.ID `cbor:"10,keyasint"`
	// Payouts are the shard's executed unshieldings as the chain counts them.
	Payouts enclavebridge.Payouts `cbor:"9,keyasint"`
	// AppHash is the app hash the view was read against.
	AppHash []byte `cbor:"4,keyasint"`
	// Forked are outbox sequence numbers under which the chain paid another
	// call: this state forked from the one that requested them.
	Forked []uint64 `cbor:"-"`
	// Unpaid are the outbox's call hashes the chain proved not executed;
	// Paid those it proved executed (the next block removes them).
	Unpaid map[[32]byte]bool `cbor:"-"`
	Paid   map[[32]byte]bool `cbor:"-"`
	// Members are the status's registered, authorised enclaves, silent ones
	// included: the shard's enclaves whose blocks on-boarding accepts where
	// the authorities at a block's layer-one head are no longer provable.
	Members []account.ID `cbor:"11,keyasint"`
	// SelfActivity is the parentchain height of this enclave's last
	// activity in the shard's status (0: not in it).
	SelfActivity int64 `cbor:"12,keyasint"`
}

// readStateLocked asks the host for keys at height and verifies every
// answer against appHash; absent keys are missing from the result.
func (e *Enclave) readStateLocked(ctx context.Context, height int64, appHash []byte, keys [][]byte) (map[string][]byte, error) {
	reads, err := e.host.ReadParentchainState(ctx, height, keys)
	if err != nil {
		return nil, err
	}
	if len(reads) != len(keys) {
		return nil, ErrBadParentchainProof.Wrap("%d answers for %d keys", len(reads), len(keys))
	}
	out := make(map[string][]byte, len(keys))
	for i, k := range keys {
		r := reads[i]
		if !bytes.Equal(r.Key, k) {
			return nil, ErrBadParentchainProof.Wrap("answer %d is for key %q, asked %q", i, r.Key, k)
		}
		if err := proof.Verify(r.Ops, appHash, k, r.Value); err != nil {
			return nil, ErrBadParentchainProof.Wrap("key %q at height %d: %v", k, height, err)
		}
		if r.Value != nil {
			out[string(k)] = r.Value
		}
	}
	return out, nil
}

// decodeRead decodes a proven value with the chain's strict codec.
func (e *Enclave) decodeRead(vals map[string][]byte, key []byte, v any) (bool, error) {
	b, ok := vals[string(key)]
	if !ok {
		return false, nil
	}
	if err := e.codec.Unmarshal(b, v); err != nil {
		return false, ErrBadParentchainProof.Wrap("proven value of %q does not decode: %v", key, err)
	}
	return true, nil
}

// readViewLocked reads the view at the verified block v: the shard's
// status and configuration, the registry's security flags and parameters,
// the registrations of the shard's enclaves and of this one, the shard's
// last confirmed sidechain block and payouts, and for each outbox entry
// whether it was paid and which call its sequence paid. It applies the
// chain's own rule (enclavebridge.FilterStatus) to what it read.
func (e *Enclave) readViewLocked(ctx context.Context, v *lightclient.Verified) (*chainView, error) {
	outbox := e.state.Outbox()
	keys := [][]byte{
		enclavebridge.StatusKey(e.shard),
		enclavebridge.ConfigKey(e.shard),
		scmodule.LatestKey(e.shard),
		teerex.FlagsKey(),
		teerex.ParamsKey(),
		enclavebridge.PayoutsKey(e.shard),
		sudo.KeyKey(),
	}
	const fixed = 7
	keys = append(keys, e.outboxKeys(outbox)...)
	vals, err := e.readStateLocked(ctx, v.Height, v.AppHash, keys)
	if err != nil {
		return nil, err
	}
	view := &chainView{Height: v.Height, AppHash: v.AppHash, Unpaid: map[[32]byte]bool{}, Paid: map[[32]byte]bool{}}
	var raw []enclavebridge.ShardSignerStatus
	if _, err := e.decodeRead(vals, keys[0], &raw); err != nil {
		return nil, err
	}
	var cfg enclavebridge.UpgradableShardConfig
	hasCfg, err := e.decodeRead(vals, keys[1], &cfg)
	if err != nil {
		return nil, err
	}
	var latest scmodule.BlockConfirmation
	if ok, err := e.decodeRead(vals, keys[2], &latest); err != nil {
		return nil, err
	} else if ok {
		view.Finalized = &latest
	}
	if _, err := e.decodeRead(vals, keys[3], &view.Flags); err != nil {
		return nil, err
	}
	if _, err := e.decodeRead(vals, keys[4], &view.Params); err != nil {
		return nil, err
	}
	view.Params = teerex.ParamsOf(view.Params)
	if _, err := e.decodeRead(vals, keys[5], &view.Payouts); err != nil {
		return nil, err
	}
	var sudoKey account.ID
	if _, err := e.decodeRead(vals, keys[6], &sudoKey); err != nil {
		return nil, err
	}
	if view.Flags.AllowSim {
		view.Root = sudoKey
	}
	if view.Forked, err = e.outboxFacts(vals, keys[fixed:], outbox, view.Unpaid); err != nil {
		return nil, err
	}
	for _, u := range outbox {
		if !view.Unpaid[u.CallHash] {
			view.Paid[u.CallHash] = true
		}
	}

	// The registrations of this enclave and of the status's enclaves, in a
	// second read.
	ids := []account.ID{e.Signer()}
	for _, s := range raw {
		if s.Signer != e.Signer() {
			ids = append(ids, s.Signer)
		}
	}
	rk := make([][]byte, len(ids))
	for i, id := range ids {
		rk[i] = teerex.EnclaveKey(id)
	}
	rv, err := e.readStateLocked(ctx, v.Height, v.AppHash, rk)
	if err != nil {
		return nil, err
	}
	regs := map[account.ID]teerex.Enclave{}
	for i, id := range ids {
		var reg teerex.Enclave
		if ok, err := e.decodeRead(rv, rk[i], &reg); err != nil {
			return nil, err
		} else if ok {
			regs[id] = reg
		}
	}
	var cp *enclavebridge.UpgradableShardConfig
	if hasCfg {
		cp = &cfg
	}
	fp := enclavebridge.AuthorisedFingerprintOf(e.shard, cp, v.Height)
	view.Fingerprint = fp
	if me, ok := regs[e.Signer()]; ok {
		view.SelfAuthorised = me.MrEnclave == e.MrEnclave() && enclavebridge.Authorises(me, fp, view.Flags)
	}
	lookup := func(id account.ID) (teerex.Enclave, bool) {
		r, ok := regs[id]
		return r, ok
	}
	for _, s := range enclavebridge.FilterStatus(raw, fp, view.Flags, v.Height, view.Params.ShardSilenceBlocks, lookup) {
		view.Authorities = append(view.Authorities, s.Signer)
	}
	for _, s := range enclavebridge.FilterStatus(raw, fp, view.Flags, v.Height, 0, lookup) {
		view.Members = append(view.Members, s.Signer)
		if s.Signer == e.Signer() {
			view.SelfActivity = s.LastActivity
		}
	}
	return view, nil
}

// refreshViewLocked reads the view at v and, if it verifies, makes it the
// enclave's; outbox entries the chain proved paid leave the outbox with the
// next block this enclave authors (inbox.go). A host
// that withholds or forges a proof leaves the old view in place, which is
// then stale: the enclave waits instead of acting on it.
func (e *Enclave) refreshViewLocked(ctx context.Context, v *lightclient.Verified) {
	view, err := e.readViewLocked(ctx, v)
	switch {
	case errors.Is(err, ErrStateUnavailable):
		e.log.Debug("parentchain state not provable; waiting for a later block", "height", v.Height)
		return
	case err != nil:
		e.stats.ProofFailures++
		e.log.Warn("parentchain state refused; acting on no parentchain fact until a later block proves one", "height", v.Height, "err", err)
		return
	}
	if len(view.Authorities) != len(e.sync.View.Authorities) {
		e.log.Info("shard authorities", "height", v.Height, "count", len(view.Authorities), "members", len(view.Members))
	}
	e.sync.View = *view
	e.viewLive = true
	// Behind the chain: the view still serves to check peers' blocks (the
	// way to catch up), but the enclave authors, confirms and pays nothing
	// until its state holds what the chain knows.
	if err := e.checkNotBehindLocked(view); err != nil {
		e.haltLocked(err)
	} else if e.halted != nil {
		e.log.Info("caught up with the parentchain's view of the shard; acting again", "head", e.headNumberLocked())
		e.halted = nil
	}
}

// viewFreshLocked reports whether the view was read at the light client's
// height, so that its facts are the chain's current ones.
// A view restored from sealed progress is not fresh until this run
// verified a block: the chain may have moved on while the enclave was down
// (paid, confirmed, changed its authorities), so it acts on nothing it read
// before a restart.
func (e *Enclave) viewFreshLocked() bool {
	return e.viewLive && e.sync.View.Height != 0 && e.sync.View.Height == e.lc.Height()
}

// readUnpaidLocked reads, at the fresh view's height, whether the chain
// executed the outbox entries the view has not read yet (entries created
// after it), and records those proven unpaid.
func (e *Enclave) readUnpaidLocked(ctx context.Context, entries []stf.Unshielding) error {
	keys := e.outboxKeys(entries)
	vals, err := e.readStateLocked(ctx, e.sync.View.Height, e.sync.View.AppHash, keys)
	if err != nil {
		if !errors.Is(err, ErrStateUnavailable) {
			e.stats.ProofFailures++
		}
		return err
	}
	if e.sync.View.Unpaid == nil {
		e.sync.View.Unpaid = map[[32]byte]bool{}
	}
	if e.sync.View.Paid == nil {
		e.sync.View.Paid = map[[32]byte]bool{}
	}
	forked, err := e.outboxFacts(vals, keys, entries, e.sync.View.Unpaid)
	if err != nil {
		return err
	}
	for _, u := range entries {
		if !e.sync.View.Unpaid[u.CallHash] {
			e.sync.View.Paid[u.CallHash] = true
		}
	}
	if len(forked) > 0 {
		e.haltLocked(forkedError(forked))
		return e.halted
	}
	return nil
}

// outboxKeys are the state keys that tell, for each outbox entry, whether
// the chain paid it and which call it paid under the entry's sequence.
func (e *Enclave) outboxKeys(entries []stf.Unshielding) [][]byte {
	keys := make([][]byte, 0, 2*len(entries))
	for _, u := range entries {
		keys = append(keys, enclavebridge.UnshieldKey(e.shard, u.CallHash), enclavebridge.PayoutSeqKey(e.shard, u.Seq))
	}
	return keys
}

// outboxFacts reads the answers to outboxKeys(entries): entries proven
// unpaid go into unpaid, and it returns the sequences under which the chain
// paid another call (this state forked from the one that requested them).
func (e *Enclave) outboxFacts(vals map[string][]byte, keys [][]byte, entries []stf.Unshielding, unpaid map[[32]byte]bool) ([]uint64, error) {
	var forked []uint64
	for i, u := range entries {
		if _, paid := vals[string(keys[2*i])]; !paid {
			unpaid[u.CallHash] = true
		}
		var other [32]byte
		if ok, err := e.decodeRead(vals, keys[2*i+1], &other); err != nil {
			return nil, err
		} else if ok && other != u.CallHash {
			forked = append(forked, u.Seq)
		}
	}
	return forked, nil
}

func forkedError(seqs []uint64) error {
	return ErrHalted.Wrap("the parentchain paid other calls under this state's unshieldings %v", seqs)
}

// haltLocked stops the enclave from acting while its state is behind the
// chain's: it authors, confirms and pays nothing, and only imports peers'
// blocks, until a view shows it caught up. A lone enclave started from an
// old copy of its files therefore stays halted; one with peers catches up.
func (e *Enclave) haltLocked(err error) {
	if e.halted == nil {
		e.log.Error("halting: the parentchain knows more of this shard than the enclave's state; catching up from peers", "err", err)
	}
	e.halted = err
}

// checkNotBehindLocked compares verified chain state with the enclave's
// own: more payouts of the shard than the state ever requested, or a
// confirmed sidechain block beyond the head, mean the state is an old copy
// (rolled back by the host). Acting on it could pay the same funds again.
func (e *Enclave) checkNotBehindLocked(v *chainView) error {
	if e.head == nil {
		return nil // a fresh enclave acts only on a new shard, or joins (shardIsNewLocked)
	}
	if len(v.Forked) > 0 {
		return forkedError(v.Forked)
	}
	if seq := e.state.OutboxSeq(); v.Payouts.Count > seq {
		return ErrHalted.Wrap("the parentchain executed %d unshieldings of the shard (the last at height %d); this enclave's state requested %d", v.Payouts.Count, v.Payouts.LastHeight, seq)
	}
	head := e.head.Header.Number
	if f := v.Finalized; f != nil && f.Number > head {
		return ErrHalted.Wrap("the parentchain confirmed sidechain block %d; this enclave's head is %d", f.Number, head)
	}
	return nil
}

// shardIsNewLocked reports whether the verified chain shows the shard with
// no history, so that an enclave without blocks may start it: no confirmed
// sidechain block, no payout, no authority but this enclave. An enclave
// without blocks of a shard with history must get its state from a peer
// (JoinShard); one whose files were wiped, alone, therefore stops instead
// of starting the shard afresh and paying out its funds again.
func (e *Enclave) shardIsNewLocked() bool {
	v := e.sync.View
	if v.Finalized != nil || v.Payouts.Count > 0 {
		return false
	}
	for _, a := range v.Authorities {
		if a != e.Signer() {
			return false
		}
	}
	return true
}

// heartbeatDueLocked reports whether this enclave, an authority of the
// shard, has been quiet on the parentchain for a third of the chain's
// silence bound (and sent no heartbeat since), so that it should confirm a
// block to stay in the authority set.
func (e *Enclave) heartbeatDueLocked() bool {
	v := e.sync.View
	if !e.viewFreshLocked() || e.head == nil || v.SelfActivity == 0 || !slices.Contains(v.Members, e.Signer()) {
		return false
	}
	every := max(int64(v.Params.ShardSilenceBlocks/3), 1)
	return v.Height-v.SelfActivity >= every && v.Height-e.heartbeatAt >= every
}
