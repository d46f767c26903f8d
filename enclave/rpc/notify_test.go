package rpc

import (
	"encoding/json"
	"testing"

	"github.com/integritee-go/integritee/sidechain"
)

func TestAppendNotificationIsWhatJSONMarshalMakes(t *testing.T) {
	h := sidechain.Hash{0xab, 0xcd}
	for _, s := range []Status{
		{Kind: Submitted}, {Kind: Ready}, {Kind: Future}, {Kind: Dropped}, {Kind: Retracted},
		{Kind: InSidechainBlock, BlockHash: h}, {Kind: Finalized, BlockHash: h},
		{Kind: Invalid, Reason: "stale nonce: the signer's nonce was used"},
		{Kind: Invalid, Reason: "quote \" backslash \\ <tag> & \x01 é"},
	} {
		u := Update{Subscription: h.String(), Result: s}
		want, err := json.Marshal(struct {
			JSONRPC string `json:"jsonrpc"`
			Method  string `json:"method"`
			Params  Update `json:"params"`
		}{"2.0", WatchNotification, u})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendNotification(nil, u); string(got) != string(want) {
			t.Errorf("%+v:\n got %s\nwant %s", s, got, want)
		}
	}
}
