package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/types"
)

// A batch's answer, as CometBFT v1.0 writes it: an accepted transaction, one
// CheckTx refused (a JSON-RPC error carrying ErrInvalidTx's text), one with a
// non-zero code in its result, and another error.
const batchAnswer = `[
{"jsonrpc":"2.0","id":0,"result":{"code":0,"data":"","log":"","codespace":"","hash":"AB"}},
{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal error","data":"broadcast error on transaction validation: tx 79 is invalid: code=1, data=, log='balances.InsufficientBalance: balance too low: x has 4, needs 6', codespace='balances'"}},
{"jsonrpc":"2.0","id":2,"result":{"code":4,"data":"","log":"tx.FutureNonce: nonce 3","codespace":"tx","hash":"CD"}},
{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"Internal error","data":"mempool is full"}}
]`

func TestParseBatchResponseReadsEachElement(t *testing.T) {
	errs, err := parseBatchResponse([]byte(batchAnswer), 5)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil {
		t.Errorf("accepted transaction: %v", errs[0])
	}
	if !errors.Is(errs[1], balances.ErrInsufficientBalance) {
		t.Errorf("refused transaction: %v", errs[1])
	}
	var te *TxError
	if !errors.As(errs[2], &te) || te.Code != 4 || te.Codespace != "tx" || te.Stage != "check" {
		t.Errorf("non-zero code: %#v", errs[2])
	}
	if errs[3] == nil || !strings.Contains(errs[3].Error(), "mempool is full") {
		t.Errorf("other error: %v", errs[3])
	}
	if errs[4] == nil || !strings.Contains(errs[4].Error(), "no answer") {
		t.Errorf("missing answer: %v", errs[4])
	}
}

func TestParseBatchResponseSingleObjectAndWholeBatchRefused(t *testing.T) {
	// One element: CometBFT answers with an object, not an array.
	errs, err := parseBatchResponse([]byte(`{"jsonrpc":"2.0","id":0,"result":{"code":0}}`), 1)
	if err != nil || len(errs) != 1 || errs[0] != nil {
		t.Fatalf("single answer: %v %v", errs, err)
	}
	// A batch over max_request_batch_size: one error without an id.
	_, err = parseBatchResponse([]byte(`{"jsonrpc":"2.0","id":-1,"error":{"code":-32600,"message":"Invalid Request","data":"batch request exceeds maximum (10) allowed number of requests"}}`), 20)
	if err == nil || !strings.Contains(err.Error(), "exceeds maximum") {
		t.Fatalf("refused batch: %v", err)
	}
	for _, bad := range []string{`[{"id":0,"result":{}},{"id":0,"result":{}}]`, `[{"id":7,"result":{}}]`, `not json`} {
		if _, err := parseBatchResponse([]byte(bad), 2); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestBroadcastBatchSendsOneRequestInOrder(t *testing.T) {
	txs := [][]byte{[]byte("first"), []byte("second"), []byte("third")}
	var requests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		body, _ := io.ReadAll(r.Body)
		var reqs []struct {
			ID     int    `json:"id"`
			Method string `json:"method"`
			Params struct {
				Tx []byte `json:"tx"`
			} `json:"params"`
		}
		if err := json.Unmarshal(body, &reqs); err != nil {
			t.Errorf("request: %v", err)
			return
		}
		var out []string
		for i, q := range reqs {
			if q.ID != i || q.Method != "broadcast_tx_sync" || string(q.Params.Tx) != string(txs[i]) {
				t.Errorf("request %d: %+v", i, q)
			}
			code := uint32(0)
			if i == 2 {
				code = types.ErrTxStaleNonce.Code
			}
			b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": q.ID, "result": map[string]any{"code": code, "codespace": "tx", "log": "stale"}})
			out = append(out, string(b))
		}
		w.Write([]byte("[" + strings.Join(out, ",") + "]"))
	}))
	defer srv.Close()
	c, err := Dial(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := c.BroadcastBatch(context.Background(), txs)
	if err != nil {
		t.Fatal(err)
	}
	if requests != 1 || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], types.ErrTxStaleNonce) {
		t.Fatalf("%d requests, outcomes %v", requests, errs)
	}
}
