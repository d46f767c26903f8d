package stf

import (
	"bytes"
	"crypto/sha256"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/fxamacker/cbor/v2"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// Account is a sidechain account's record.
type Account struct {
	Free types.Balance `cbor:"1,keyasint" json:"free"`
	// Nonce is the nonce the account's next call must carry.
	Nonce uint64 `cbor:"2,keyasint" json:"nonce"`
}

// IsZero reports whether the record is empty: such records are not stored.
func (a Account) IsZero() bool { return a.Free.IsZero() && a.Nonce == 0 }

// Unshielding is a pending payout on the parentchain: the enclave sends
// enclave-bridge.unshield_funds(Shard, Beneficiary, Amount, CallHash) and,
// once the parentchain has executed it, removes the entry.
type Unshielding struct {
	// CallHash is the hash of the trusted operation that unshielded; the
	// parentchain pays each call hash at most once.
	CallHash    [32]byte          `cbor:"1,keyasint" json:"call_hash"`
	Beneficiary account.ID        `cbor:"2,keyasint" json:"beneficiary"`
	Amount      types.Balance     `cbor:"3,keyasint" json:"amount"`
	Shard       sidechain.ShardID `cbor:"4,keyasint" json:"shard"`
	// Seq is the entry's place in the state's history of unshieldings
	// (1, 2, ...); Outbox fills it in from the stored record.
	Seq uint64 `cbor:"-" json:"seq"`
}

// outboxRecord is an outbox entry as stored: Seq orders the outbox by
// insertion.
type outboxRecord struct {
	Seq         uint64      `cbor:"1,keyasint"`
	Unshielding Unshielding `cbor:"2,keyasint"`
}

// The state's key schema. Every key the state holds has one of these forms
// and its value is the canonical CBOR of the type named; zero values
// (an empty account, a zero issuance) are not stored, so that one logical
// state has one representation.
const (
	prefixAccount = "acct/"    // + 32-byte account id → Account (non-zero)
	keyIssuance   = "issuance" // → types.Balance (non-zero)
	keyRoot       = "root"     // → account.ID
	prefixOutbox  = "outbox/"  // + 32-byte call hash → outboxRecord
	keyOutboxSeq  = "outboxseq"
)

func accountKey(id account.ID) string { return prefixAccount + string(id[:]) }

// Accounts returns the accounts whose records d changes, in d's order.
func (d Diff) Accounts() []account.ID {
	var out []account.ID
	for _, c := range d {
		if strings.HasPrefix(c.Key, prefixAccount) && len(c.Key) == len(prefixAccount)+account.IDLen {
			out = append(out, account.ID([]byte(c.Key[len(prefixAccount):])))
		}
	}
	return out
}
func outboxKey(callHash [32]byte) string { return prefixOutbox + string(callHash[:]) }

// Change is one entry of a Diff: Key is set to Value, or deleted when Value
// is nil.
type Change struct {
	Key   string
	Value []byte
}

// Deleted reports whether the change deletes its key.
func (c Change) Deleted() bool { return c.Value == nil }

// Diff is an ordered list of changes. Applying it applies the changes in
// order; a later change of a key overrides an earlier one. The diffs this
// package makes hold each key once, in ascending byte order.
type Diff []Change

// diffEntry is a Change as encoded: the CBOR array [key, value-or-null].
type diffEntry struct {
	_     struct{} `cbor:",toarray"`
	Key   []byte
	Value []byte
}

// bulkDec decodes diffs and snapshots, which hold more entries than the
// chain codec's array bound (4096). It is otherwise as strict; the
// canonical-form check follows every decode.
var bulkDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   16,
		MaxArrayElements:  1 << 30,
		MaxMapPairs:       4096,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

func (d Diff) entries() []diffEntry {
	es := make([]diffEntry, 0, len(d)) // never nil: an empty diff encodes as []
	for _, c := range d {
		es = append(es, diffEntry{Key: []byte(c.Key), Value: c.Value})
	}
	return es
}

// Encode returns the diff's canonical encoding: a CBOR array of
// [key (byte string), value (byte string) or null for a deletion].
func (d Diff) Encode() []byte { return canonical.MustMarshal(d.entries()) }

// DecodeDiff decodes a diff strictly (canonical encoding only) and checks
// that every change fits the state's key schema. Errors wrap ErrBadDiff.
func DecodeDiff(b []byte) (Diff, error) {
	var es []diffEntry
	if err := bulkDec.Unmarshal(b, &es); err != nil {
		return nil, ErrBadDiff.Wrap("%v", err)
	}
	if es == nil {
		return nil, ErrBadDiff.Wrap("not an array")
	}
	d := make(Diff, 0, len(es))
	for _, e := range es {
		d = append(d, Change{Key: string(e.Key), Value: e.Value})
	}
	if !bytes.Equal(d.Encode(), b) {
		return nil, ErrBadDiff.Wrap("%v", types.ErrNonCanonical)
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Hash returns SHA-256 of the diff's canonical encoding.
func (d Diff) Hash() [32]byte { return sha256.Sum256(d.Encode()) }

// NextStateHash chains the state hash across a diff:
// SHA-256(prev || SHA-256(d.Encode())). A block's state hash after is
// NextStateHash(its state hash before, its diff), so the cost per block is
// that of its diff, never that of the whole state. The chain's first hash
// is the genesis state's SnapshotHash.
func NextStateHash(prev [32]byte, d Diff) [32]byte {
	dh := d.Hash()
	return sha256.Sum256(append(prev[:], dh[:]...))
}

// MergeDiffs returns one diff with the effect of applying ds in order: the
// last change of each key, sorted by key. A block producer merges the diffs
// of the calls it executed into the block's diff.
func MergeDiffs(ds ...Diff) Diff {
	last := map[string][]byte{}
	for _, d := range ds {
		for _, c := range d {
			last[c.Key] = c.Value
		}
	}
	out := make(Diff, 0, len(last))
	for k, v := range last {
		out = append(out, Change{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (d Diff) validate() error {
	for i, c := range d {
		if err := validateEntry(c.Key, c.Value); err != nil {
			return ErrBadDiff.Wrap("change %d: %v", i, err)
		}
	}
	return nil
}

type schemaError string

func (e schemaError) Error() string { return string(e) }

// validateEntry checks that key is of the schema and value (nil: deletion)
// is the canonical, non-zero encoding of the key's type.
func validateEntry(key string, value []byte) error {
	var v any
	switch {
	case strings.HasPrefix(key, prefixAccount) && len(key) == len(prefixAccount)+account.IDLen:
		v = new(Account)
	case key == keyIssuance:
		v = new(types.Balance)
	case key == keyRoot:
		v = new(account.ID)
	case strings.HasPrefix(key, prefixOutbox) && len(key) == len(prefixOutbox)+32:
		v = new(outboxRecord)
	case key == keyOutboxSeq:
		v = new(uint64)
	default:
		return schemaError("unknown key " + quoteKey(key))
	}
	if value == nil {
		return nil
	}
	if err := canonical.Unmarshal(value, v); err != nil {
		return schemaError("value of " + quoteKey(key) + ": " + err.Error())
	}
	switch x := v.(type) {
	case *Account:
		if x.IsZero() {
			return schemaError("empty account stored")
		}
	case *types.Balance:
		if x.IsZero() {
			return schemaError("zero issuance stored")
		}
	case *outboxRecord:
		if outboxKey(x.Unshielding.CallHash) != key {
			return schemaError("outbox entry stored under another call hash")
		}
	case *uint64:
		if *x == 0 {
			return schemaError("zero outbox sequence stored")
		}
	}
	return nil
}

func quoteKey(k string) string {
	const max = 48
	if len(k) > max {
		k = k[:max] + "…"
	}
	return strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '.'
		}
		return r
	}, k), ".")
}

// State is a shard's sidechain state: an in-memory key/value map holding the
// accounts, the total issuance, the root account and the outbox of pending
// unshieldings. Reads go through typed accessors; every write goes through
// a Tx (see Begin) or a Diff (see Apply), so each change is recorded and
// can be replayed by the shard's other validateers.
//
// State is safe for concurrent use. Transactions are optimistic: a Tx whose
// state was changed by someone else after Begin fails to commit with
// ErrConflict.
type State struct {
	mu      sync.RWMutex
	kv      map[string][]byte
	size    int
	version uint64
	outbox  map[string]struct{} // keys under prefixOutbox, for Outbox
}

// NewState returns the genesis state of a shard whose root account (the
// only one allowed to call set_balance) is root. A zero root means no
// account is root.
func NewState(root account.ID) *State {
	s := &State{kv: map[string][]byte{}, outbox: map[string]struct{}{}}
	if !root.IsZero() {
		tx := s.Begin()
		tx.SetRoot(root)
		if _, err := tx.Commit(); err != nil {
			panic(err) // nobody else holds s yet
		}
	}
	return s
}

func (s *State) get(key string) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.kv[key]
	return v, ok
}

// putLocked sets or (value nil) deletes key; s.mu must be held for writing.
func (s *State) putLocked(key string, value []byte) {
	if old, ok := s.kv[key]; ok {
		s.size -= len(key) + len(old)
		delete(s.kv, key)
		delete(s.outbox, key)
	}
	if value == nil {
		return
	}
	value = bytes.Clone(value)
	s.kv[key] = value
	s.size += len(key) + len(value)
	if strings.HasPrefix(key, prefixOutbox) {
		s.outbox[key] = struct{}{}
	}
}

// Account returns id's record (zero if it has none).
func (s *State) Account(id account.ID) Account { return readAccount(s.get, id) }

// TotalIssuance returns the sum of all free balances.
func (s *State) TotalIssuance() types.Balance { return readIssuance(s.get) }

// Root returns the root account (zero if there is none).
func (s *State) Root() account.ID { return readRoot(s.get) }

// OutboxSeq returns how many unshieldings the state has ever put in its
// outbox: an upper bound on the payouts the parentchain may have made for
// the shard from this state's history.
func (s *State) OutboxSeq() uint64 {
	var seq uint64
	if v, ok := s.get(keyOutboxSeq); ok {
		mustDecode(v, &seq)
	}
	return seq
}

// Outbox returns the pending unshieldings in the order they were made.
func (s *State) Outbox() []Unshielding {
	s.mu.RLock()
	recs := make([]outboxRecord, 0, len(s.outbox))
	for k := range s.outbox {
		var r outboxRecord
		mustDecode(s.kv[k], &r)
		recs = append(recs, r)
	}
	s.mu.RUnlock()
	slices.SortFunc(recs, func(a, b outboxRecord) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	out := make([]Unshielding, len(recs))
	for i, r := range recs {
		out[i] = r.Unshielding
		out[i].Seq = r.Seq
	}
	return out
}

// RemoveFromOutbox removes the pending unshielding of callHash, once the
// parentchain has paid it, and returns the change as a diff, which the
// caller must put in the next sidechain block like any other. It returns
// ErrNotInOutbox (and changes nothing) if there is no such entry.
func (s *State) RemoveFromOutbox(callHash [32]byte) (Diff, error) {
	tx := s.Begin()
	if !tx.RemoveFromOutbox(callHash) {
		tx.Discard()
		return nil, ErrNotInOutbox.Wrap("0x%x", callHash)
	}
	return tx.Commit()
}

// InitRoot sets the root account of a state that has none, and returns the
// change as a diff for the next block. It changes nothing (nil diff) if the
// state already has a root or root is zero: once set, a shard's root is
// the state's, whatever a later configuration says.
func (s *State) InitRoot(root account.ID) (Diff, error) {
	if root.IsZero() || !s.Root().IsZero() {
		return nil, nil
	}
	tx := s.Begin()
	tx.SetRoot(root)
	return tx.Commit()
}

// Size returns the state's size in bytes: the sum of its keys' and values'
// lengths.
func (s *State) Size() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.size
}

// Len returns the number of keys the state holds.
func (s *State) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.kv)
}

// Apply applies a diff made by another validateer's transaction (through a
// sidechain block). It checks every change against the key schema first and
// applies nothing (ErrBadDiff) if one does not fit. It does not check the
// state hash; the block importer compares NextStateHash with the block's.
func (s *State) Apply(d Diff) error {
	if err := d.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyLocked(d)
	return nil
}

func (s *State) applyLocked(d Diff) {
	if len(d) == 0 {
		return
	}
	for _, c := range d {
		s.putLocked(c.Key, c.Value)
	}
	s.version++
}

// snapshotV1 is the snapshot format: version 1, then every key and value
// in ascending key order.
type snapshotV1 struct {
	Version uint64      `cbor:"1,keyasint"`
	Entries []diffEntry `cbor:"2,keyasint"`
}

const snapshotVersion = 1

// Snapshot returns the whole state in a canonical, deterministic encoding:
// equal states have equal snapshots. It is what the enclave encrypts at
// rest and hands over to a joining validateer.
func (s *State) Snapshot() []byte {
	s.mu.RLock()
	keys := make([]string, 0, len(s.kv))
	for k := range s.kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	es := make([]diffEntry, len(keys))
	for i, k := range keys {
		es[i] = diffEntry{Key: []byte(k), Value: s.kv[k]}
	}
	b := canonical.MustMarshal(&snapshotV1{Version: snapshotVersion, Entries: es})
	s.mu.RUnlock()
	return b
}

// Frozen returns a copy of the state that later changes to s do not
// reach, for a snapshot taken while s goes on: a copy of the map only, since
// a stored value is never changed in place (every write stores a new one).
func (s *State) Frozen() *State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &State{kv: maps.Clone(s.kv), size: s.size, version: s.version, outbox: maps.Clone(s.outbox)}
}

// SnapshotHash returns SHA-256 of Snapshot(): the state hash that starts a
// chain of NextStateHash, at genesis or at a validateer's handover.
func (s *State) SnapshotHash() [32]byte { return sha256.Sum256(s.Snapshot()) }

// StateFromSnapshot decodes a snapshot into a new state. Errors wrap
// ErrBadSnapshot.
func StateFromSnapshot(b []byte) (*State, error) {
	s := &State{kv: map[string][]byte{}, outbox: map[string]struct{}{}}
	if err := s.RestoreSnapshot(b); err != nil {
		return nil, err
	}
	return s, nil
}

// RestoreSnapshot replaces the state's contents with a snapshot's. The
// snapshot must be canonical (as Snapshot makes it: strictly ascending
// keys, each of the key schema); otherwise ErrBadSnapshot is returned and
// the state is unchanged. Open transactions will fail to commit.
func (s *State) RestoreSnapshot(b []byte) error {
	var snap snapshotV1
	if err := bulkDec.Unmarshal(b, &snap); err != nil {
		return ErrBadSnapshot.Wrap("%v", err)
	}
	if snap.Version != snapshotVersion {
		return ErrBadSnapshot.Wrap("version %d, want %d", snap.Version, snapshotVersion)
	}
	if snap.Entries == nil {
		snap.Entries = []diffEntry{}
	}
	if again := canonical.MustMarshal(&snap); !bytes.Equal(again, b) {
		return ErrBadSnapshot.Wrap("%v", types.ErrNonCanonical)
	}
	kv := make(map[string][]byte, len(snap.Entries))
	outbox := map[string]struct{}{}
	size := 0
	for i, e := range snap.Entries {
		k := string(e.Key)
		if i > 0 && bytes.Compare(snap.Entries[i-1].Key, e.Key) >= 0 {
			return ErrBadSnapshot.Wrap("entry %d: keys not strictly ascending", i)
		}
		if e.Value == nil {
			return ErrBadSnapshot.Wrap("entry %d: no value", i)
		}
		if err := validateEntry(k, e.Value); err != nil {
			return ErrBadSnapshot.Wrap("entry %d: %v", i, err)
		}
		kv[k] = e.Value
		size += len(k) + len(e.Value)
		if strings.HasPrefix(k, prefixOutbox) {
			outbox[k] = struct{}{}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv, s.outbox, s.size = kv, outbox, size
	s.version++
	return nil
}

// Begin starts a transaction on the state. Its writes are visible to its
// own reads only, until Commit applies them (all at once) or Discard drops
// them. Only one transaction should be open at a time; of two concurrent
// ones, the second to commit fails with ErrConflict.
func (s *State) Begin() *Tx {
	s.mu.RLock()
	v := s.version
	s.mu.RUnlock()
	return &Tx{st: s, version: v, writes: map[string][]byte{}}
}

// Tx is a transaction on a State: a recorder of writes that become a Diff.
// A Tx is not safe for concurrent use; writing to a committed or discarded
// Tx panics (a programming error).
type Tx struct {
	st      *State
	parent  *Tx // set for a nested transaction
	version uint64
	writes  map[string][]byte // nil value: deletion
	closed  bool
}

// Begin starts a transaction nested in t: it sees t's writes, and its own
// reach t (not the state) on Commit.
func (t *Tx) Begin() *Tx {
	return &Tx{st: t.st, parent: t, version: t.version, writes: map[string][]byte{}}
}

func (t *Tx) get(key string) ([]byte, bool) {
	if v, ok := t.writes[key]; ok {
		return v, v != nil
	}
	if t.parent != nil {
		return t.parent.get(key)
	}
	return t.st.get(key)
}

func (t *Tx) put(key string, value []byte) {
	if t.closed {
		panic("stf: write to a closed transaction")
	}
	t.writes[key] = value
}

// Account returns id's record as the transaction sees it.
func (t *Tx) Account(id account.ID) Account { return readAccount(t.get, id) }

// SetAccount writes id's record; an empty record deletes it.
func (t *Tx) SetAccount(id account.ID, a Account) {
	if a.IsZero() {
		t.put(accountKey(id), nil)
		return
	}
	t.put(accountKey(id), canonical.MustMarshal(&a))
}

// TotalIssuance returns the total issuance as the transaction sees it.
func (t *Tx) TotalIssuance() types.Balance { return readIssuance(t.get) }

// SetTotalIssuance writes the total issuance.
func (t *Tx) SetTotalIssuance(b types.Balance) {
	if b.IsZero() {
		t.put(keyIssuance, nil)
		return
	}
	t.put(keyIssuance, canonical.MustMarshal(b))
}

// Root returns the root account as the transaction sees it.
func (t *Tx) Root() account.ID { return readRoot(t.get) }

// SetRoot writes the root account; the zero id removes it.
func (t *Tx) SetRoot(id account.ID) {
	if id.IsZero() {
		t.put(keyRoot, nil)
		return
	}
	t.put(keyRoot, canonical.MustMarshal(id))
}

// AddToOutbox appends a pending unshielding. It returns
// ErrDuplicateUnshield if one with the same call hash is pending.
func (t *Tx) AddToOutbox(u Unshielding) error {
	key := outboxKey(u.CallHash)
	if _, ok := t.get(key); ok {
		return ErrDuplicateUnshield.Wrap("0x%x", u.CallHash)
	}
	var seq uint64
	if v, ok := t.get(keyOutboxSeq); ok {
		mustDecode(v, &seq)
	}
	seq++
	t.put(keyOutboxSeq, canonical.MustMarshal(seq))
	t.put(key, canonical.MustMarshal(&outboxRecord{Seq: seq, Unshielding: u}))
	return nil
}

// RemoveFromOutbox removes the pending unshielding of callHash and reports
// whether there was one.
func (t *Tx) RemoveFromOutbox(callHash [32]byte) bool {
	key := outboxKey(callHash)
	if _, ok := t.get(key); !ok {
		return false
	}
	t.put(key, nil)
	return true
}

// Diff returns the changes the transaction would commit: each key written
// once, in ascending order, leaving out writes that change nothing.
func (t *Tx) Diff() Diff {
	t.st.mu.RLock()
	defer t.st.mu.RUnlock()
	return t.diffLocked()
}

func (t *Tx) diffLocked() Diff {
	d := make(Diff, 0, len(t.writes))
	for k, v := range t.writes {
		old, had := t.st.kv[k]
		if (v == nil && !had) || (v != nil && had && bytes.Equal(old, v)) {
			continue
		}
		d = append(d, Change{Key: k, Value: v})
	}
	sort.Slice(d, func(i, j int) bool { return d[i].Key < d[j].Key })
	return d
}

// Commit applies the transaction's writes to the state and returns them as
// a diff. It fails with ErrConflict, applying nothing, if the state changed
// since Begin, and with ErrTxClosed after Commit or Discard.
func (t *Tx) Commit() (Diff, error) {
	if t.closed {
		return nil, ErrTxClosed
	}
	t.closed = true
	if t.parent != nil {
		// Nested: the writes go to the parent; the diff is relative to the
		// state, as every diff is.
		if t.parent.closed {
			return nil, ErrTxClosed
		}
		d := t.Diff()
		for k, v := range t.writes {
			t.parent.put(k, v)
		}
		return d, nil
	}
	t.st.mu.Lock()
	defer t.st.mu.Unlock()
	if t.st.version != t.version {
		return nil, ErrConflict
	}
	d := t.diffLocked()
	t.st.applyLocked(d)
	return d, nil
}

// Discard drops the transaction's writes. Discarding a closed transaction
// does nothing.
func (t *Tx) Discard() {
	t.closed = true
	t.writes = nil
}

type getter func(key string) ([]byte, bool)

func mustDecode(b []byte, v any) {
	// Every stored value passed validateEntry or was written by a Tx.
	if err := canonical.UnmarshalLoose(b, v); err != nil {
		panic("stf: corrupt state value: " + err.Error())
	}
}

func readAccount(get getter, id account.ID) Account {
	var a Account
	if v, ok := get(accountKey(id)); ok {
		mustDecode(v, &a)
	}
	return a
}

func readIssuance(get getter) types.Balance {
	var b types.Balance
	if v, ok := get(keyIssuance); ok {
		mustDecode(v, &b)
	}
	return b
}

func readRoot(get getter) account.ID {
	var id account.ID
	if v, ok := get(keyRoot); ok {
		mustDecode(v, &id)
	}
	return id
}
