package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// fuzzConn is a connection without a socket whose handler echoes a
// request's params as its result, and answers method "fail" with an error.
func fuzzConn() *Conn {
	s := NewServer(DefaultLimits(), nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{s: s, ctx: ctx, cancel: cancel}
	c.h = HandlerFunc(func(_ context.Context, req *Request) (any, error) {
		if req.Method == "fail" {
			return nil, Errorf(-32000, "failed")
		}
		if req.Params == nil {
			return nil, nil
		}
		return req.Params, nil
	})
	return c
}

// response is one JSON-RPC 2.0 response as the specification defines it.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// FuzzAnswer: any message a client sends gets either no answer (only
// notifications) or valid JSON that is one response, or an array of them,
// each with "jsonrpc": "2.0", an id, and exactly one of result and error;
// a single request with a valid id gets its id back byte for byte.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}`,
		`{"jsonrpc":"2.0","method":"subtract","params":{"subtrahend":23,"minuend":42},"id":"a"}`,
		`{"jsonrpc":"2.0","method":"update","params":[1,2,3,4,5]}`,
		`{"jsonrpc":"2.0","method":"fail","id":null}`,
		`{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]`,
		`{"jsonrpc":"2.0","method":1,"params":"bar"}`,
		`[]`, `[1]`, `[1,2,3]`,
		`[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"jsonrpc":"2.0","method":"notify_hello","params":[7]},{"foo":"boo"},{"jsonrpc":"2.0","method":"get_data","id":-1.5e3}]`,
		`[{"jsonrpc":"2.0","method":"notify_sum","params":[1,2,4]},{"jsonrpc":"2.0","method":"notify_hello","params":[7]}]`,
		` {"jsonrpc":"2.0","method":"x","id":1,"result":1}`, `{"jsonrpc":"1.0","method":"x","id":1}`, `"text"`, `null`,
	} {
		f.Add([]byte(s))
	}
	c := fuzzConn()
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, _ := c.answer(msg)
		if out == nil {
			return // only notifications: no answer
		}
		if !json.Valid(out) {
			t.Fatalf("answer to %q is not JSON: %q", msg, out)
		}
		var rs []response
		if trimmed := bytes.TrimLeft(out, " "); trimmed[0] == '[' {
			if err := json.Unmarshal(out, &rs); err != nil || len(rs) == 0 {
				t.Fatalf("batch answer %q: %v", out, err)
			}
		} else {
			var r response
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("answer %q: %v", out, err)
			}
			rs = []response{r}
			var req struct {
				ID json.RawMessage `json:"id"`
			}
			if m := bytes.TrimLeft(msg, " \t\r\n"); len(m) > 0 && m[0] == '{' && json.Unmarshal(msg, &req) == nil && validID(req.ID) && r.Error == nil {
				if !bytes.Equal(r.ID, req.ID) {
					t.Fatalf("answer id %s, request id %s", r.ID, req.ID)
				}
			}
		}
		for _, r := range rs {
			if r.JSONRPC != "2.0" || r.ID == nil || (r.Result == nil) == (r.Error == nil) {
				t.Fatalf("malformed response %+v in %q", r, out)
			}
		}
	})
}
