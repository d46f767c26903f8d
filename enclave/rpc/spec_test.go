package rpc_test

import (
	"strings"
	"testing"
)

// TestSpecificationExamples sends the JSON-RPC 2.0 specification's own
// examples (§7, https://www.jsonrpc.org/specification#examples) as raw text
// over a real websocket and compares the raw answers. Our methods stand in
// for the specification's: state_executeGetter (the fake backend answers
// "19") for subtract, author_pendingExtrinsics for sum, system_version for
// get_data; our error messages say more than the specification's after
// the same words. An example the server must not answer is followed by a
// probe, whose answer must be the next message.
func TestSpecificationExamples(t *testing.T) {
	b := &fakeBackend{getterValue: "19"}
	url, _ := serve(t, b)
	c := dial(t, url)
	shard := testShard.String()
	pending := `["` + testHash.String() + `","0x01` + strings.Repeat("00", 31) + `"]`
	const (
		parseError     = `{"code":-32700,"message":"Parse error: not valid JSON"}`
		invalidRequest = `{"code":-32600,"message":"Invalid Request: not a JSON object"}`
	)
	noAnswer := ""
	for _, ex := range []struct{ name, send, want string }{
		{"rpc call with positional parameters",
			`{"jsonrpc": "2.0", "method": "state_executeGetter", "params": ["` + shard + `", "0x2a17"], "id": 1}`,
			`{"jsonrpc":"2.0","result":"19","id":1}`},
		{"rpc call with positional parameters, id 2",
			`{"jsonrpc": "2.0", "method": "state_executeGetter", "params": ["` + shard + `", "0x172a"], "id": 2}`,
			`{"jsonrpc":"2.0","result":"19","id":2}`},
		{"rpc call with named parameters",
			`{"jsonrpc": "2.0", "method": "state_executeGetter", "params": {"shard": "` + shard + `", "getter": "0x2a17"}, "id": 3}`,
			`{"jsonrpc":"2.0","result":"19","id":3}`},
		{"rpc call with named parameters in another order",
			`{"jsonrpc": "2.0", "method": "state_executeGetter", "params": {"getter": "0x2a17", "shard": "` + shard + `"}, "id": 4}`,
			`{"jsonrpc":"2.0","result":"19","id":4}`},
		{"a notification",
			`{"jsonrpc": "2.0", "method": "author_submitExtrinsic", "params": ["` + shard + `", "0x0102030405"]}`,
			noAnswer},
		{"a notification without params",
			`{"jsonrpc": "2.0", "method": "foobar"}`,
			noAnswer},
		{"rpc call of non-existent method",
			`{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
			`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: foobar"},"id":"1"}`},
		{"rpc call with invalid JSON",
			`{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`,
			`{"jsonrpc":"2.0","error":` + parseError + `,"id":null}`},
		{"rpc call with invalid Request object",
			`{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: \"method\" must be a non-empty string"},"id":null}`},
		{"rpc call Batch, invalid JSON",
			`[
			  {"jsonrpc": "2.0", "method": "author_pendingExtrinsics", "params": ["` + shard + `"], "id": "1"},
			  {"jsonrpc": "2.0", "method"
			]`,
			`{"jsonrpc":"2.0","error":` + parseError + `,"id":null}`},
		{"rpc call with an empty Array",
			`[]`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: an empty batch"},"id":null}`},
		{"rpc call with an invalid Batch (but not empty)",
			`[1]`,
			`[{"jsonrpc":"2.0","error":` + invalidRequest + `,"id":null}]`},
		{"rpc call with invalid Batch",
			`[1,2,3]`,
			`[{"jsonrpc":"2.0","error":` + invalidRequest + `,"id":null},{"jsonrpc":"2.0","error":` + invalidRequest + `,"id":null},{"jsonrpc":"2.0","error":` + invalidRequest + `,"id":null}]`},
		{"rpc call Batch",
			`[
			  {"jsonrpc": "2.0", "method": "author_pendingExtrinsics", "params": ["` + shard + `"], "id": "1"},
			  {"jsonrpc": "2.0", "method": "author_submitExtrinsic", "params": ["` + shard + `", "0x07"]},
			  {"jsonrpc": "2.0", "method": "state_executeGetter", "params": ["` + shard + `", "0x2a17"], "id": "2"},
			  {"foo": "boo"},
			  {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
			  {"jsonrpc": "2.0", "method": "system_version", "id": "9"}
			]`,
			`[{"jsonrpc":"2.0","result":` + pending + `,"id":"1"},` +
				`{"jsonrpc":"2.0","result":"19","id":"2"},` +
				`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: \"jsonrpc\" must be \"2.0\""},"id":null},` +
				`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: foo.get"},"id":"5"},` +
				`{"jsonrpc":"2.0","result":"v-test","id":"9"}]`},
		{"rpc call Batch (all notifications)",
			`[
			  {"jsonrpc": "2.0", "method": "author_pendingExtrinsics", "params": ["` + shard + `"]},
			  {"jsonrpc": "2.0", "method": "author_submitExtrinsic", "params": ["` + shard + `", "0x07"]}
			]`,
			noAnswer},
	} {
		t.Run(ex.name, func(t *testing.T) {
			send(t, c, ex.send)
			want := ex.want
			if want == noAnswer {
				send(t, c, `{"jsonrpc":"2.0","id":"probe","method":"system_version"}`)
				want = `{"jsonrpc":"2.0","result":"v-test","id":"probe"}`
			}
			if got := readRaw(t, c); got != want {
				t.Fatalf("sent %s\n got %s\nwant %s", ex.send, got, want)
			}
		})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.submitted) != 0 {
		t.Fatalf("a notification submitted %x", b.submitted)
	}
}
