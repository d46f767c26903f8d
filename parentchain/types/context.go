package types

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/integritee-go/integritee/account"
)

// KV is the state a call reads and writes. Reads of absent keys return
// (nil, false). Implementations panic on storage I/O failure, which the node
// cannot recover from and must not paper over.
type KV interface {
	Get(key []byte) ([]byte, bool)
	Set(key, value []byte)
	Delete(key []byte)
}

// Origin is who a call runs as.
type Origin struct {
	// Signer is the account that signed the transaction.
	Signer account.ID
	// Root is set when the call runs with the root origin (through sudo).
	Root bool
}

// Block is what a call knows of the block it executes in.
type Block struct {
	Height int64
	Time   time.Time
}

// Attr is one key/value attribute of an event.
type Attr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Event is something a call did, as clients see it. Its ABCI type is
// "module.Name".
type Event struct {
	Module string `json:"module"`
	Name   string `json:"name"`
	Attrs  []Attr `json:"attributes"`
}

// Type returns the event's ABCI type, "module.Name".
func (e Event) Type() string { return e.Module + "." + e.Name }

// NewEvent builds an event from alternating keys and values, each value
// formatted with %v.
func NewEvent(module, name string, kv ...any) Event { return newEvent(nil, module, name, kv) }

// newEvent is NewEvent with accounts named through names (nil: none).
func newEvent(names *AccountNames, module, name string, kv []any) Event {
	e := Event{Module: module, Name: name}
	if len(kv) >= 2 {
		e.Attrs = make([]Attr, 0, len(kv)/2)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Attrs = append(e.Attrs, Attr{Key: names.format(kv[i]), Value: names.format(kv[i+1])})
	}
	return e
}

// AccountNames remembers the SS58 form of recently named accounts,
// direct-mapped by the account's first two bytes (bounded: 4,096 entries).
// Events name the same accounts again and again (a transaction's signer in
// its fee event, its call's events and its result, in CheckTx and again in
// its block), and each SS58 encoding costs a base58 conversion and a
// BLAKE2b checksum (1.8 µs). An entry is used only for the very account it
// holds. Each chain's Codec holds one; it is safe for concurrent use.
type AccountNames struct {
	slots [4096]atomic.Pointer[accountString]
}

type accountString struct {
	id account.ID
	s  string
}

// String returns id.String(), the account's SS58 address. A nil
// AccountNames remembers nothing.
func (n *AccountNames) String(id account.ID) string {
	if n == nil {
		return id.String()
	}
	slot := &n.slots[int(binary.BigEndian.Uint16(id[:2]))%len(n.slots)]
	if e := slot.Load(); e != nil && e.id == id {
		return e.s
	}
	s := id.String()
	slot.Store(&accountString{id: id, s: s})
	return s
}

// format is fmt.Sprint(v), without fmt for strings and accounts.
func (n *AccountNames) format(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case account.ID:
		return n.String(v)
	default:
		return fmt.Sprint(v)
	}
}

// Context is the environment of one call.
type Context struct {
	Store  KV
	Codec  *Codec
	Block  Block
	Origin Origin
	events []Event
}

// Emit records an event.
func (c *Context) Emit(e Event) { c.events = append(c.events, e) }

// Event records the event NewEvent(module, name, kv...) would build, with
// accounts named through the codec's AccountNames.
func (c *Context) Event(module, name string, kv ...any) {
	var names *AccountNames
	if c.Codec != nil {
		names = &c.Codec.Names
	}
	c.Emit(newEvent(names, module, name, kv))
}

// Events returns the events emitted so far.
func (c *Context) Events() []Event { return c.events }

// WithStore returns a copy of c that reads and writes s and records events
// separately, for running a nested call whose effects may be discarded.
func (c *Context) WithStore(s KV) *Context {
	return &Context{Store: s, Codec: c.Codec, Block: c.Block, Origin: c.Origin}
}

// Get decodes the value at key into v and reports whether it was present.
func (c *Context) Get(key []byte, v any) bool {
	b, ok := c.Store.Get(key)
	if !ok {
		return false
	}
	if err := c.Codec.UnmarshalLoose(b, v); err != nil {
		panic(fmt.Sprintf("state: corrupt value at %q: %v", key, err))
	}
	return true
}

// Set encodes v at key.
func (c *Context) Set(key []byte, v any) { c.Store.Set(key, c.Codec.MustMarshal(v)) }

// Module is one part of the chain's logic: its calls and its queries.
type Module interface {
	// Name is the module's name in calls, events, errors and query paths.
	Name() string
	// Exec runs method with CBOR-encoded args. A returned error undoes the
	// call's writes and events; the transaction's fee is still charged.
	Exec(ctx *Context, method string, args []byte) error
	// Query answers a read-only query; path is the abci_query path below
	// "/<module>/", split at "/". The result is encoded as JSON.
	Query(r Reader, path []string) (any, error)
}

// Reader reads committed state, for queries.
type Reader interface {
	Get(key []byte) ([]byte, bool)
	// Iterate calls fn for each key with the prefix, in key order, until fn
	// returns false.
	Iterate(prefix []byte, fn func(key, value []byte) bool)
}

// DecodeArgs decodes a call's arguments into v, or returns ErrBadArgs.
func (c *Context) DecodeArgs(call string, args []byte, v any) error {
	if err := c.Codec.Unmarshal(args, v); err != nil {
		return ErrBadArgs.Wrap("%s: %v", call, err)
	}
	return nil
}

// Run decodes a call's arguments into an A and runs fn with them: the
// shape of most cases of a module's Exec.
func Run[A any](ctx *Context, call string, args []byte, fn func(*Context, A) error) error {
	var a A
	if err := ctx.DecodeArgs(call, args, &a); err != nil {
		return err
	}
	return fn(ctx, a)
}

// RequireRoot returns ErrBadOrigin unless the call runs as root.
func (c *Context) RequireRoot(call string) error {
	if !c.Origin.Root {
		return ErrBadOrigin.Wrap("%s may only be called through sudo", call)
	}
	return nil
}

// ErrUnknownPath is returned for a query path no module answers.
var ErrUnknownPath = NewError("query", 1, "UnknownPath", "no such query path")

// ErrBadQuery is returned for a query with a malformed argument.
var ErrBadQuery = NewError("query", 2, "BadArgument", "malformed query argument")

// ErrNotFound is returned by queries for absent entries.
var ErrNotFound = NewError("query", 3, "NotFound", "no such entry")

// ErrHeightUnavailable answers a proven query for a height the node cannot
// prove: not committed yet, or older than the versions it keeps.
var ErrHeightUnavailable = NewError("query", 4, "HeightUnavailable", "height is not provable on this node")

// QueryContext returns a context that reads committed state and panics on
// any write, for answering queries with a module's ordinary accessors.
func QueryContext(r Reader, codec *Codec) *Context {
	return &Context{Store: readOnlyKV{r}, Codec: codec}
}

type readOnlyKV struct{ Reader }

func (readOnlyKV) Set([]byte, []byte) { panic("state: write in a query") }
func (readOnlyKV) Delete([]byte)      { panic("state: write in a query") }

// GenesisModule is a module with genesis state: its section of the
// application's genesis, as JSON.
type GenesisModule interface {
	Module
	InitGenesis(ctx *Context, section json.RawMessage) error
}

// DecodeGenesis decodes a module's genesis section strictly.
func DecodeGenesis(module string, section json.RawMessage, v any) error {
	if len(section) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(section))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("genesis: %s: %w", module, err)
	}
	return nil
}
