package client

import (
	"errors"
	"testing"

	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/types"
)

func TestParseInvalidTx(t *testing.T) {
	err := errors.New(`error in json rpc client, with http response metadata: (Status: 200 OK, Protocol HTTP/1.1). RPC error -32603 - Internal error: broadcast error on transaction validation: tx 79 is invalid: code=1, data=, log='balances.InsufficientBalance: balance too low: x has 4, needs 6', codespace='balances'`)
	te := parseInvalidTx(err)
	if te == nil {
		t.Fatal("not parsed")
	}
	if !errors.Is(te, balances.ErrInsufficientBalance) || errors.Is(te, types.ErrTxStaleNonce) {
		t.Errorf("Is: %+v", te)
	}
	if te.Error() != "transaction rejected: balances.InsufficientBalance: balance too low: x has 4, needs 6" {
		t.Errorf("message %q", te.Error())
	}
	if parseInvalidTx(errors.New("connection refused")) != nil {
		t.Error("parsed an unrelated error")
	}
}

func TestHTTPAddress(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:9944":              "http://127.0.0.1:9944",
		"wss://node.example:443/websocket": "https://node.example:443",
		"http://h:1":                       "http://h:1",
	} {
		if got, err := HTTPAddress(in); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://h:1", "ws://", "::"} {
		if _, err := HTTPAddress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
