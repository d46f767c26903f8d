package app

import (
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/types"
)

// newModules lists the chain's modules in genesis order.
func newModules(codec *types.Codec, d sudo.Dispatcher) []types.Module {
	bal := balances.New(codec)
	return []types.Module{
		bal,
		sudo.New(codec, d),
	}
}
