package app

import (
	"github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/modules/sidechain"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/types"
)

// newModules lists the chain's modules in genesis order. Attestation
// verifiers for real TEEs are added to teerex here.
func newModules(codec *types.Codec, d sudo.Dispatcher) []types.Module {
	bal := balances.New(codec)
	reg := teerex.New(codec, sim.NewVerifier())
	bridge := enclavebridge.New(codec, bal, reg)
	return []types.Module{
		bal,
		sudo.New(codec, d),
		reg,
		bridge,
		sidechain.New(codec, bridge),
	}
}
