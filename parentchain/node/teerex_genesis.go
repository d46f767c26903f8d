package node

// addTeerexGenesis adds the attestation security flags to the genesis.
func addTeerexGenesis(sections map[string]any, opts GenesisOptions) {
	allow := !opts.Secure
	sections["teerex"] = map[string]any{
		"security_flags": map[string]bool{"allow_skip": allow, "allow_sim": allow, "allow_debug": allow},
	}
}
