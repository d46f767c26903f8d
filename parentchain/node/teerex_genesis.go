package node

import "github.com/integritee-go/integritee/parentchain/modules/teerex"

// addTeerexGenesis adds the attestation security flags to the genesis: dev
// and local chains accept unverified and simulated attestation and debug
// enclaves unless Secure is set.
func addTeerexGenesis(sections map[string]any, opts GenesisOptions) {
	allow := !opts.Secure
	sections[teerex.ModuleName] = teerex.Genesis{
		SecurityFlags: teerex.SecurityFlags{AllowSkip: allow, AllowSim: allow, AllowDebug: allow},
		Params:        teerex.DefaultParams(),
	}
}
