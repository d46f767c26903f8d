package e2e

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
)

// rawConn is a websocket to a validateer's port that exchanges raw text.
type rawConn struct {
	t *testing.T
	c *ws.Conn
}

func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	d := ws.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 10 * time.Second} //nolint:gosec // the RA-TLS check is not under test here
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

func (r *rawConn) send(msg string) {
	r.t.Helper()
	if err := r.c.WriteMessage(ws.TextMessage, []byte(msg)); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

func (r *rawConn) next() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, b, err := r.c.ReadMessage()
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return string(b)
}

// TestJSONRPCSpecificationOnTheValidateersPorts sends the JSON-RPC 2.0
// specification's examples (§7) as raw text to a running validateer's
// trusted port (over TLS) and untrusted port, with our methods in place of
// the specification's, and compares the raw answers. An example that must
// not be answered is followed by a probe whose answer must come next.
func TestJSONRPCSpecificationOnTheValidateersPorts(t *testing.T) {
	n := startDevNode(t, "")
	w := startWorker(t, n, "")
	shard := w.mustT(t, t.TempDir(), "trusted", "get-fingerprint")
	c := dialRaw(t, fmt.Sprintf("wss://127.0.0.1:%d", w.trusted))
	const version = `"0.1.0"`
	const probe = `{"jsonrpc":"2.0","id":"probe","method":"system_version"}`
	parseError := `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error: not valid JSON"},"id":null}`
	notObject := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: not a JSON object"},"id":null}`
	for _, ex := range []struct{ name, send, want string }{
		{"positional parameters", `{"jsonrpc": "2.0", "method": "author_getShard", "params": [], "id": 1}`,
			`{"jsonrpc":"2.0","result":"` + shard + `","id":1}`},
		{"named parameters", `{"jsonrpc": "2.0", "method": "author_getShard", "params": {}, "id": 3}`,
			`{"jsonrpc":"2.0","result":"` + shard + `","id":3}`},
		{"named parameters with a name the method lacks", `{"jsonrpc": "2.0", "method": "author_pendingExtrinsics", "params": {"subtrahend": 23}, "id": 4}`,
			`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params: author_pendingExtrinsics takes params [\"shard\"]: no \"shard\""},"id":4}`},
		{"a notification", `{"jsonrpc": "2.0", "method": "rpc_methods", "params": [1,2,3,4,5]}`, ""},
		{"a notification of an unknown method", `{"jsonrpc": "2.0", "method": "foobar"}`, ""},
		{"non-existent method", `{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
			`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: foobar"},"id":"1"}`},
		{"invalid JSON", `{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`, parseError},
		{"invalid Request object", `{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: \"method\" must be a non-empty string"},"id":null}`},
		{"batch, invalid JSON", `[{"jsonrpc": "2.0", "method": "system_version", "id": "1"},{"jsonrpc": "2.0", "method"]`, parseError},
		{"empty Array", `[]`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: an empty batch"},"id":null}`},
		{"invalid batch, not empty", `[1]`, `[` + notObject + `]`},
		{"invalid batch", `[1,2,3]`, `[` + notObject + `,` + notObject + `,` + notObject + `]`},
		{"mixed batch", `[
			{"jsonrpc": "2.0", "method": "system_version", "id": "1"},
			{"jsonrpc": "2.0", "method": "system_health", "params": [7]},
			{"jsonrpc": "2.0", "method": "author_getShard", "params": [], "id": "2"},
			{"foo": "boo"},
			{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
			{"jsonrpc": "2.0", "method": "author_getFingerprint", "id": null}
		]`, `[{"jsonrpc":"2.0","result":` + version + `,"id":"1"},` +
			`{"jsonrpc":"2.0","result":"` + shard + `","id":"2"},` +
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: \"jsonrpc\" must be \"2.0\""},"id":null},` +
			`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: foo.get"},"id":"5"},` +
			`{"jsonrpc":"2.0","result":"` + shard + `","id":null}]`},
		{"all-notification batch", `[{"jsonrpc": "2.0", "method": "system_version"},{"jsonrpc": "2.0", "method": "foobar", "params": [7]}]`, ""},
		{"ids in every form", `[{"jsonrpc":"2.0","method":"system_version","id":-1.5e3},{"jsonrpc":"2.0","method":"system_version","id":"\u00e9"}]`,
			`[{"jsonrpc":"2.0","result":` + version + `,"id":-1.5e3},{"jsonrpc":"2.0","result":` + version + `,"id":"\u00e9"}]`},
	} {
		c.send(ex.send)
		want := ex.want
		if want == "" {
			c.send(probe)
			want = `{"jsonrpc":"2.0","result":` + version + `,"id":"probe"}`
		}
		if got := c.next(); got != want {
			t.Errorf("%s: sent %s\n got %s\nwant %s", ex.name, ex.send, got, want)
		}
	}

	// The untrusted port speaks the same protocol.
	u := dialRaw(t, fmt.Sprintf("ws://127.0.0.1:%d", w.untrusted))
	fetch := `{"jsonrpc":"2.0","id":%s,"method":"sidechain_fetchBlocksFromPeer","params":["` + shard + `",1,1]}`
	u.send(fmt.Sprintf(fetch, "null"))
	if got := u.next(); !strings.HasPrefix(got, `{"jsonrpc":"2.0","result":[`) || !strings.HasSuffix(got, `],"id":null}`) {
		t.Errorf("untrusted fetch of block 1: %.200s", got)
	}
	for msg, want := range map[string]string{
		`[]`: `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: an empty batch"},"id":null}`,
		`{"jsonrpc":"2.0","id":7,"method":"system_version"}`:                     `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: system_version"},"id":7}`,
		`{"jsonrpc":"2.0","method":"sidechain_fetchBlocksFromPeer","params":[]}`: "",
	} {
		u.send(msg)
		if want == "" {
			u.send(`{"jsonrpc":"2.0","id":"probe","method":"nope"}`)
			want = `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: nope"},"id":"probe"}`
		}
		if got := u.next(); got != want {
			t.Errorf("untrusted: sent %s\n got %s\nwant %s", msg, got, want)
		}
	}
}
