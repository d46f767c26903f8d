// Package statetest is the test kit of the state layer: a store with every
// module of the chain, for module tests that cannot import the application.
package statetest

import (
	"testing"

	"github.com/integritee-go/integritee/parentchain/state"
)

// Modules are the chain's state modules; app.StateConfig's list, which a
// test of package app keeps equal to this one.
var Modules = []string{"balances", "enclavebridge", "sidechain", "sudo", "system", "teerex"}

// Config returns a state configuration with Modules.
func Config() state.Config { return state.Config{Modules: Modules} }

// Open opens a store with Modules in dir and closes it when the test ends.
func Open(t testing.TB, dir string) *state.Store {
	t.Helper()
	s, err := state.Open(dir, Config())
	if err != nil {
		t.Fatalf("state.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
