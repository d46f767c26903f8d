// Package sudo gives one key, the sudo key, the root origin: it dispatches a
// call on its behalf as root, for security flags, shard configuration and the
// like. It is the Substrate sudo pallet's counterpart.
package sudo

import (
	"encoding/json"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/types"
)

// ModuleName is the module's name in calls, events, errors and queries.
const ModuleName = "sudo"

// Errors.
var (
	ErrRequireSudo = types.NewError(ModuleName, 1, "RequireSudo", "sender is not the sudo key")
	ErrNoKey       = types.NewError(ModuleName, 2, "NoSudoKey", "the chain has no sudo key")
)

var keySudo = []byte("sudo/key")

// KeyKey is the state key of the sudo (root) account.
func KeyKey() []byte { return append([]byte{}, keySudo...) }

// Dispatcher runs a call in a context; the application provides it.
type Dispatcher interface {
	Dispatch(ctx *types.Context, call types.Call) error
}

// SudoArgs are the arguments of sudo.sudo.
type SudoArgs struct {
	Call types.Call `cbor:"1,keyasint"`
}

// SetKeyArgs are the arguments of sudo.set_key.
type SetKeyArgs struct {
	New account.ID `cbor:"1,keyasint"`
}

// Genesis is the module's genesis state.
type Genesis struct {
	// Key is the sudo key; none if absent.
	Key *account.ID `json:"key,omitempty"`
}

// Module is the sudo module.
type Module struct {
	codec *types.Codec
	d     Dispatcher
}

// New returns the sudo module dispatching through d.
func New(codec *types.Codec, d Dispatcher) *Module { return &Module{codec: codec, d: d} }

// Name implements types.Module.
func (*Module) Name() string { return ModuleName }

// InitGenesis sets the sudo key.
func (m *Module) InitGenesis(ctx *types.Context, section json.RawMessage) error {
	var g Genesis
	if err := types.DecodeGenesis(ModuleName, section, &g); err != nil {
		return err
	}
	if g.Key != nil {
		ctx.Set(keySudo, *g.Key)
	}
	return nil
}

// Key returns the sudo key.
func (m *Module) Key(ctx *types.Context) (account.ID, bool) {
	var id account.ID
	ok := ctx.Get(keySudo, &id)
	return id, ok
}

func (m *Module) requireSudo(ctx *types.Context) error {
	key, ok := m.Key(ctx)
	if !ok {
		return ErrNoKey
	}
	if ctx.Origin.Signer != key {
		return ErrRequireSudo.Wrap("sender %s", ctx.Origin.Signer)
	}
	return nil
}

// Exec implements types.Module.
func (m *Module) Exec(ctx *types.Context, method string, args []byte) error {
	switch method {
	case "sudo":
		var a SudoArgs
		if err := ctx.DecodeArgs("sudo.sudo", args, &a); err != nil {
			return err
		}
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		// The inner call writes into the caller's store: the application
		// runs every call in its own overlay and discards it on error.
		root := ctx.WithStore(ctx.Store)
		root.Origin.Root = true
		if err := m.d.Dispatch(root, a.Call); err != nil {
			return err
		}
		for _, e := range root.Events() {
			ctx.Emit(e)
		}
		ctx.Event(ModuleName, "Sudid", "call", a.Call)
		return nil
	case "set_key":
		var a SetKeyArgs
		if err := ctx.DecodeArgs("sudo.set_key", args, &a); err != nil {
			return err
		}
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		ctx.Set(keySudo, a.New)
		ctx.Event(ModuleName, "KeyChanged", "new", a.New)
		return nil
	}
	return types.ErrUnknownCall.Wrap("sudo.%s", method)
}

// KeyInfo is the answer to the key query.
type KeyInfo struct {
	Key *account.ID `json:"key"`
}

// Query implements types.Module. Paths: key.
func (m *Module) Query(r types.Reader, path []string) (any, error) {
	if len(path) == 1 && path[0] == "key" {
		ctx := types.QueryContext(r, m.codec)
		if k, ok := m.Key(ctx); ok {
			return KeyInfo{Key: &k}, nil
		}
		return KeyInfo{}, nil
	}
	return nil, types.ErrUnknownPath.Wrap("/sudo/%v", path)
}
