package node_test

import (
	"bytes"
	"context"
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
