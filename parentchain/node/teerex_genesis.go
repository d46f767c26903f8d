package node

import "github.com/integritee-go/integritee/parentchain/modules/teerex"

// addTeerexGenesis adds the attestation security flags to the genesis: a
// secure genesis (the default of `integritee-node init`) forbids unverified
// (skip) and simulated attestation and debug enclaves; the dev genesis
// (`--dev`, in-process test chains) allows all three.
func addTeerexGenesis(sections map[string]any, opts GenesisOptions) {
	allow := !opts.Secure
	sections[teerex.ModuleName] = teerex.Genesis{
		SecurityFlags: teerex.SecurityFlags{AllowSkip: allow, AllowSim: allow, AllowDebug: allow},
		Params:        teerex.DefaultParams(),
	}
}
