// Package trustedrpc holds the wire types of a validateer's trusted
// JSON-RPC (the enclave's server, enclave/rpc): the watch statuses and
// their JSON, the header answer, the notification, the method list and the
// protocol's bounds. Clients import this, never the enclave's server.
package trustedrpc

import (
	"encoding/json"
	"fmt"

	"github.com/integritee-go/integritee/sidechain"
)

// MaxMessageBytes bounds one JSON-RPC message.
const MaxMessageBytes = 4 << 20

// Status is a trusted operation's status, as watchers receive it. It
// encodes as "Submitted", "Ready", "Future", "Dropped", "Retracted",
// {"InSidechainBlock":"0x…"}, {"Finalized":"0x…"} or {"Invalid":"reason"}.
// Finalized, Invalid and Dropped end the watch; InSidechainBlock may be
// followed by Retracted (its block lost a fork) and then by Ready or
// another InSidechainBlock.
type Status struct {
	Kind      string
	BlockHash sidechain.Hash
	Reason    string
}

// Status kinds.
const (
	Submitted        = "Submitted"
	Ready            = "Ready"
	Future           = "Future"
	InSidechainBlock = "InSidechainBlock"
	Invalid          = "Invalid"
	Dropped          = "Dropped"
	Retracted        = "Retracted"
	Finalized        = "Finalized"
)

// Final reports whether no status follows s.
func (s Status) Final() bool {
	return s.Kind == Finalized || s.Kind == Invalid || s.Kind == Dropped
}

// MarshalJSON implements json.Marshaler.
func (s Status) MarshalJSON() ([]byte, error) {
	switch s.Kind {
	case InSidechainBlock, Finalized:
		return json.Marshal(map[string]string{s.Kind: s.BlockHash.String()})
	case Invalid:
		return json.Marshal(map[string]string{Invalid: s.Reason})
	}
	return json.Marshal(s.Kind)
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *Status) UnmarshalJSON(b []byte) error {
	var k string
	if json.Unmarshal(b, &k) == nil {
		s.Kind = k
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for _, k := range []string{InSidechainBlock, Finalized} {
		if h, ok := m[k]; ok {
			s.Kind = k
			return s.BlockHash.UnmarshalText([]byte(h))
		}
	}
	if r, ok := m[Invalid]; ok {
		s.Kind, s.Reason = Invalid, r
		return nil
	}
	return fmt.Errorf("rpc: unknown status %s", b)
}

// Header is the answer to chain_getHeader.
type Header struct {
	sidechain.Header
	Hash sidechain.Hash `json:"hash"`
	// StateHash is the state hash after the block (its data's
	// StateHashAfter): validateers with the same head hold the same state.
	StateHash sidechain.Hash `json:"stateHash"`
}

// Methods lists the methods served, for rpc_methods.
var Methods = []string{
	"author_submitAndWatchExtrinsic", "author_submitExtrinsic", "author_pendingExtrinsics",
	"author_submitTrustedOperation", "author_submitAndWatchTrustedOperation",
	"author_submitTrustedOperations", "author_submitAndWatchTrustedOperations",
	"author_getShieldingKey", "author_getFingerprint", "author_getShard", "author_getMuRaUrl",
	"author_getUntrustedUrl", "state_executeGetter", "chain_getHeader", "sidechain_importBlock",
	"sidechain_forwardOperations",
	"system_version", "system_health", "rpc_methods",
}

// MaxForwardedOperations bounds one sidechain_forwardOperations call.
const MaxForwardedOperations = 1024

// MaxBatchOperations bounds the operations of one
// author_submitTrustedOperations or author_submitAndWatchTrustedOperations
// call.
const MaxBatchOperations = 1024

// BatchResult is one element of the answer to
// author_submitTrustedOperations and author_submitAndWatchTrustedOperations:
// the operation's hash (with watch, also its subscription) and its status
// once pooled, Ready or Future, if the pool took it, or the error that
// refused it. With watch, the notifications follow from the next status on:
// neither Submitted nor this status is sent again.
type BatchResult struct {
	Hash   string      `json:"hash,omitempty"`
	Status string      `json:"status,omitempty"`
	Error  *BatchError `json:"error,omitempty"`
}

// BatchError is a refused element's error, shaped like a JSON-RPC error
// object: data names the enclave's error ({"module","name","code"}) when it
// has one.
type BatchError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// WatchNotification is the method of the notifications that
// author_submitAndWatchExtrinsic, author_submitAndWatchTrustedOperation and
// author_submitAndWatchTrustedOperations send.
const WatchNotification = "author_extrinsicUpdate"

// Update is a notification's params.
type Update struct {
	Subscription string `json:"subscription"`
	Result       Status `json:"result"`
}
