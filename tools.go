//go:build tools

// Package tools records build-time tools the module depends on, so that
// go.mod and go.sum keep what building them needs (go mod tidy considers
// all build tags). It is never compiled into anything.
//
// The e2e light-proxy test builds CometBFT's own command at the version
// go.mod pins: go build github.com/cometbft/cometbft/cmd/cometbft.
package tools

import (
	_ "github.com/cometbft/cometbft/cmd/cometbft"
)
