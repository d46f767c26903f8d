package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// The node's RPC limits hold on a live node: a body beyond MaxRPCBodyBytes,
// a header beyond MaxRPCHeaderBytes and a transaction beyond MaxTxBytes are
// refused, each with its own answer, and the node serves the next request.
func TestDevNodeRPCLimits(t *testing.T) {
	c, chain, addr := startDevNode(t)
	ctx := context.Background()
	post := func(body []byte, header string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set("X-Filler", header)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	healthy := func(after string) {
		t.Helper()
		if code, body := post([]byte(`{"jsonrpc":"2.0","id":1,"method":"health"}`), ""); code != http.StatusOK || !strings.Contains(body, `"result"`) {
			t.Fatalf("after %s, health answered %d %s", after, code, body)
		}
	}
	healthy("start")

	big := []byte(`{"jsonrpc":"2.0","id":1,"method":"health","params":{"pad":"` + strings.Repeat("x", node.MaxRPCBodyBytes) + `"}}`)
	if code, body := post(big, ""); code == http.StatusOK && !strings.Contains(body, `"error"`) {
		t.Errorf("a %d-byte body was served: %d %.200s", len(big), code, body)
	}
	healthy("an oversized body")

	if code, body := post([]byte(`{"jsonrpc":"2.0","id":1,"method":"health"}`), strings.Repeat("h", 2*node.MaxRPCHeaderBytes)); code != http.StatusRequestHeaderFieldsTooLarge { // net/http allows 4 KiB of slack
		t.Errorf("an oversized header: %d %.200s, want 431", code, body)
	}
	healthy("an oversized header")

	// An invoke as large as the chain allows goes through CheckTx (and is
	// refused there for its unknown shard); a transaction beyond
	// MaxTxBytes never reaches it.
	alice, _ := account.DevPair("//Alice")
	invoke := func(size int) []byte {
		call, err := types.NewCall(c.Codec(), enclavebridge.ModuleName, "invoke", enclavebridge.InvokeArgs{Shard: sidechain.ShardID{7}, Ciphertext: make([]byte, size)})
		if err != nil {
			t.Fatal(err)
		}
		return c.Codec().Sign(alice, chain, 0, call)
	}
	errs, err := c.BroadcastBatch(ctx, [][]byte{invoke(enclavebridge.MaxInvocationSize), invoke(types.MaxTxBytes), invoke(node.MaxTxBytes)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(errs[0]), "UnknownShard") {
		t.Errorf("the largest invoke: %v, want enclavebridge.UnknownShard from CheckTx", errs[0])
	}
	if !errors.Is(errs[1], types.ErrTxTooLarge) {
		t.Errorf("a transaction over %d bytes: %v, want the application's tx.TooLarge", types.MaxTxBytes, errs[1])
	}
	if errs[2] == nil || !strings.Contains(strings.ToLower(errs[2].Error()), "too large") {
		t.Errorf("a transaction over %d bytes: %v, want the mempool's size refusal", node.MaxTxBytes, errs[2])
	}
	healthy("an oversized transaction")
}

// The node's RPC port follows JSON-RPC 2.0 (its front, front.go), where
// CometBFT's own server does not: ids null and fractional echoed, invalid
// requests answered with their id, empty and invalid batches answered as
// the specification's examples (§7) say, notifications unanswered.
func TestDevNodeRPCIsJSONRPC2(t *testing.T) {
	_, _, addr := startDevNode(t)
	type answer struct {
		ID    json.RawMessage `json:"id"`
		Error *struct {
			Code int `json:"code"`
		} `json:"error"`
		Result json.RawMessage `json:"result"`
	}
	post := func(body string) (int, []byte) {
		t.Helper()
		res, err := http.Post(addr, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	// want: the id and the error code (0: a result) of each answer, in
	// order; nil: no answer at all.
	type want struct {
		id   string
		code int
	}
	for _, c := range []struct {
		name, body string
		batch      bool
		want       []want
	}{
		{"id null", `{"jsonrpc":"2.0","method":"health","id":null}`, false, []want{{"null", 0}}},
		{"fractional id", `{"jsonrpc":"2.0","method":"health","id":1.5}`, false, []want{{"1.5", 0}}},
		{"string id", `{"jsonrpc":"2.0","method":"health","id":"a b"}`, false, []want{{`"a b"`, 0}}},
		{"unknown method", `{"jsonrpc":"2.0","method":"foobar","id":"1"}`, false, []want{{`"1"`, -32601}}},
		{"invalid JSON", `{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]`, false, []want{{"null", -32700}}},
		{"invalid request object", `{"jsonrpc":"2.0","method":1,"params":"bar"}`, false, []want{{"null", -32600}}},
		{"empty batch", `[]`, false, []want{{"null", -32600}}},
		{"invalid batch", `[1,2,3]`, true, []want{{"null", -32600}, {"null", -32600}, {"null", -32600}}},
		{"mixed batch", `[{"jsonrpc":"2.0","method":"health","id":"1"},{"jsonrpc":"2.0","method":"health"},{"foo":"boo"},{"jsonrpc":"2.0","method":"foo.get","params":{"name":"myself"},"id":"5"},{"jsonrpc":"2.0","method":"status","id":9}]`,
			true, []want{{`"1"`, 0}, {"null", -32600}, {`"5"`, -32601}, {"9", 0}}},
		{"notifications only", `[{"jsonrpc":"2.0","method":"health"},{"jsonrpc":"2.0","method":"health"}]`, false, nil},
		{"a notification", `{"jsonrpc":"2.0","method":"health"}`, false, nil},
	} {
		code, body := post(c.body)
		if c.want == nil {
			if code != http.StatusNoContent || len(body) != 0 {
				t.Errorf("%s: HTTP %d %q, want no answer", c.name, code, body)
			}
			continue
		}
		var got []answer
		var err error
		if c.batch {
			err = json.Unmarshal(body, &got)
		} else {
			var a answer
			err = json.Unmarshal(body, &a)
			got = []answer{a}
		}
		if err != nil || len(got) != len(c.want) {
			t.Errorf("%s: answer %s (%v), want %d responses", c.name, body, err, len(c.want))
			continue
		}
		for i, w := range c.want {
			gotCode := 0
			if got[i].Error != nil {
				gotCode = got[i].Error.Code
			}
			if string(got[i].ID) != w.id || gotCode != w.code || (w.code == 0 && got[i].Result == nil) {
				t.Errorf("%s: response %d is %s, want id %s code %d", c.name, i, body, w.id, w.code)
			}
		}
	}
	// URI requests pass through.
	if res, err := http.Get(addr + "/health"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("GET /health: %v %v", res, err)
	} else {
		res.Body.Close()
	}
}
