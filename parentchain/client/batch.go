package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// BroadcastBatch sends txs with broadcast_tx_sync in one JSON-RPC batch
// (one HTTP request; the node checks them in order) and returns each
// transaction's outcome: nil once the node's CheckTx accepted it, else its
// own error, a *TxError for a refusal. CometBFT's client drops the errors of
// a batch's elements, so this one reads each element itself. The error is
// for the request as a whole (transport, or a batch the node refused
// outright: none of txs was checked then). The node refuses batches of more
// than its RPC's max_request_batch_size elements.
func (c *Client) BroadcastBatch(ctx context.Context, txs [][]byte) ([]error, error) {
	if len(txs) == 0 {
		return nil, nil
	}
	var body bytes.Buffer
	body.WriteByte('[')
	for i, tx := range txs {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"jsonrpc":"2.0","id":%d,"method":"broadcast_tx_sync","params":{"tx":"%s"}}`, i, base64.StdEncoding.EncodeToString(tx))
	}
	body.WriteByte(']')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.addr, &body)
	if err != nil {
		return nil, fmt.Errorf("broadcast batch: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("broadcast batch: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("broadcast batch: %w", err)
	}
	return parseBatchResponse(b, len(txs))
}

// rpcResponse is one JSON-RPC 2.0 response of a batch.
type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result *struct {
		Code      uint32 `json:"code"`
		Log       string `json:"log"`
		Codespace string `json:"codespace"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    string `json:"data"`
	} `json:"error"`
}

// parseBatchResponse maps the node's answer to a batch of n requests with
// ids 0..n-1 to one outcome per request. CometBFT answers a batch with an
// array, but with a single object when the batch yields one response, and
// with a single error without id when it refuses the batch as a whole.
func parseBatchResponse(b []byte, n int) ([]error, error) {
	var resps []rpcResponse
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var one rpcResponse
		if err := json.Unmarshal(t, &one); err != nil {
			return nil, fmt.Errorf("broadcast batch: answer: %w", err)
		}
		resps = []rpcResponse{one}
	} else if err := json.Unmarshal(t, &resps); err != nil {
		return nil, fmt.Errorf("broadcast batch: answer: %w", err)
	}
	errs := make([]error, n)
	seen := make([]bool, n)
	for _, r := range resps {
		id, err := strconv.Atoi(string(r.ID))
		if err != nil || id < 0 || id >= n {
			if r.Error != nil {
				return nil, fmt.Errorf("broadcast batch: RPC error %d - %s: %s", r.Error.Code, r.Error.Message, r.Error.Data)
			}
			return nil, fmt.Errorf("broadcast batch: answer with id %s", r.ID)
		}
		if seen[id] {
			return nil, fmt.Errorf("broadcast batch: two answers with id %d", id)
		}
		seen[id] = true
		switch {
		case r.Error != nil:
			// The text of CometBFT's client's RPCError, which parseInvalidTx reads.
			e := fmt.Errorf("RPC error %d - %s: %s", r.Error.Code, r.Error.Message, r.Error.Data)
			if te := parseInvalidTx(e); te != nil {
				errs[id] = te
			} else {
				errs[id] = fmt.Errorf("broadcast: %w", e)
			}
		case r.Result == nil:
			errs[id] = errors.New("broadcast: answer with neither result nor error")
		case r.Result.Code != 0:
			errs[id] = &TxError{Stage: "check", Codespace: r.Result.Codespace, Code: r.Result.Code, Log: r.Result.Log}
		}
	}
	for i, ok := range seen {
		if !ok {
			errs[i] = errors.New("broadcast: no answer for this transaction")
		}
	}
	return errs, nil
}
