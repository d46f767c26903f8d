package client

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"

	"github.com/integritee-go/integritee/parentchain/proof"
	"github.com/integritee-go/integritee/parentchain/types"
)

// fakeQueryNode answers every abci_query with what answer returns for the
// request's params, and records those params.
func fakeQueryNode(t *testing.T, answer func(params map[string]any) abci.QueryResponse) (*Client, *[]map[string]any) {
	t.Helper()
	var seen []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req rpctypes.RPCRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("request: %v", err)
			return
		}
		if req.Method != "abci_query" {
			t.Errorf("method %q", req.Method)
		}
		var params map[string]any
		if err := json.Unmarshal(req.Params, &params); err != nil {
			t.Errorf("params %s: %v", req.Params, err)
		}
		seen = append(seen, params)
		resp := rpctypes.NewRPCSuccessResponse(req.ID, &ctypes.ResultABCIQuery{Response: answer(params)})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)
	c, err := Dial(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, &seen
}

// oneKeyState is a state with a single module holding a single key: the
// key's leaf is its module's root, so its proof has no aunts.
func oneKeyState(key, value []byte) (appHash []byte, ops *cmtcrypto.ProofOps) {
	m, _ := proof.Module(key)
	root := proof.ValueLeafHash(key, value)
	names, roots := []string{m}, []proof.Hash{root}
	return proof.AppHash(names, roots), &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{
		proof.SimpleOp(key, sha256.Sum256(value), nil),
		proof.ModuleOp(names, roots, 0),
	}}
}

func TestProveKeyReturnsTheAnswerUnchecked(t *testing.T) {
	key := []byte("balances/acct/" + strings.Repeat("\x01", 32))
	value := types.NewCodec().MustMarshal(map[int]uint64{2: 5})
	appHash, ops := oneKeyState(key, value)
	c, seen := fakeQueryNode(t, func(map[string]any) abci.QueryResponse {
		return abci.QueryResponse{Key: key, Value: value, Height: 7, ProofOps: ops}
	})
	pv, err := c.ProveKey(t.Context(), key, 7)
	if err != nil {
		t.Fatal(err)
	}
	p := (*seen)[0]
	if p["path"] != "/store/balances/key" || p["prove"] != true || p["height"] != "7" || !strings.EqualFold(p["data"].(string), "62616C616E6365732F616363742F"+strings.Repeat("01", 32)) {
		t.Errorf("request params %v", p)
	}
	if string(pv.Key) != string(key) || string(pv.Value) != string(value) || pv.Height != 7 {
		t.Errorf("answer %+v", pv)
	}
	// The proof survives the JSON-RPC round trip: it still verifies.
	if err := proof.Verify(pv.ProofOps, appHash, pv.Key, pv.Value); err != nil {
		t.Errorf("round-tripped proof: %v", err)
	}
	// ProveKey itself checks nothing about the proof: a wrong value comes
	// back as sent, and only proof.Verify refuses it.
	c2, _ := fakeQueryNode(t, func(map[string]any) abci.QueryResponse {
		return abci.QueryResponse{Key: key, Value: []byte("forged"), Height: 7, ProofOps: ops}
	})
	pv, err = c2.ProveKey(t.Context(), key, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.Verify(pv.ProofOps, appHash, pv.Key, pv.Value); !errors.Is(err, proof.ErrMismatch) {
		t.Errorf("forged value: %v", err)
	}
}

func TestProveKeyRefusesConfusedAnswers(t *testing.T) {
	key := []byte("balances/acct/" + strings.Repeat("\x01", 32))
	_, ops := oneKeyState(key, []byte{0xa0})
	for name, tc := range map[string]struct {
		height int64
		resp   abci.QueryResponse
		want   string
	}{
		"error code":  {0, abci.QueryResponse{Code: 6, Codespace: "query", Log: "query.UnknownPath: /store"}, "query /store/balances/key: query.UnknownPath: /store"},
		"other key":   {0, abci.QueryResponse{Key: []byte("balances/fee"), Height: 3, ProofOps: ops}, "node answered for key"},
		"no height":   {0, abci.QueryResponse{Key: key, ProofOps: ops}, "node answered for height 0, asked 0"},
		"wrong level": {4, abci.QueryResponse{Key: key, Height: 3, ProofOps: ops}, "node answered for height 3, asked 4"},
		"no proof":    {0, abci.QueryResponse{Key: key, Height: 3}, "node sent no proof"},
	} {
		c, _ := fakeQueryNode(t, func(map[string]any) abci.QueryResponse { return tc.resp })
		_, err := c.ProveKey(t.Context(), key, tc.height)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	c, _ := fakeQueryNode(t, func(map[string]any) abci.QueryResponse { return abci.QueryResponse{} })
	if _, err := c.ProveKey(t.Context(), []byte("nomodule"), 0); !errors.Is(err, proof.ErrBadKey) {
		t.Errorf("key without module: %v", err)
	}
}
