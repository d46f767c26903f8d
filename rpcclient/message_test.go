package rpcclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/sidechain"
)

// notification is a notification as the server writes it: its
// appendNotification writes exactly what json.Marshal makes of this.
func notification(sub string, s trustedrpc.Status) []byte {
	b, err := json.Marshal(struct {
		JSONRPC string            `json:"jsonrpc"`
		Method  string            `json:"method"`
		Params  trustedrpc.Update `json:"params"`
	}{"2.0", trustedrpc.WatchNotification, trustedrpc.Update{Subscription: sub, Result: s}})
	if err != nil {
		panic(err)
	}
	return b
}

var (
	testSub   = sidechain.Hash{0xab, 0xcd}.String()
	testBlock = sidechain.Hash{0xB1, 0x0C}
	statuses  = []trustedrpc.Status{
		{Kind: trustedrpc.Submitted}, {Kind: trustedrpc.Ready}, {Kind: trustedrpc.Future},
		{Kind: trustedrpc.Dropped}, {Kind: trustedrpc.Retracted},
		{Kind: trustedrpc.InSidechainBlock, BlockHash: testBlock},
		{Kind: trustedrpc.Finalized, BlockHash: testBlock},
		{Kind: trustedrpc.Invalid, Reason: "stale nonce: the signer's nonce was used"},
		{Kind: trustedrpc.Invalid, Reason: "quote \" backslash \\ <tag> & \x01 é"},
	}
)

func TestNotificationsDecode(t *testing.T) {
	for _, s := range statuses {
		b := notification(testSub, s)
		m := decodeMessage(b)
		if m.kind != msgUpdate || string(m.sub) != testSub || m.status != s {
			t.Errorf("%s: decoded %+v", b, m)
		}
		// Only reasons with characters JSON escapes need encoding/json.
		var fast message
		if escapes := s.Reason != "" && plainLen([]byte(s.Reason)) != len(s.Reason); fastUpdate(b, &fast) == escapes {
			t.Errorf("%s: fast path %v", b, !escapes)
		}
	}
}

func TestAnswersDecode(t *testing.T) {
	for _, tc := range []struct {
		msg    string
		id     uint64
		result string
		err    string
		fast   bool
	}{
		{msg: `{"jsonrpc":"2.0","result":"0xabc","id":0}`, id: 0, result: `"0xabc"`, fast: true},
		{msg: `{"jsonrpc":"2.0","result":[{"hash":"0x01","status":"Ready"},{"error":{"code":1,"message":"m"}}],"id":18446744073709551615}`,
			id: 1<<64 - 1, result: `[{"hash":"0x01","status":"Ready"},{"error":{"code":1,"message":"m"}}]`, fast: true},
		{msg: `{"jsonrpc":"2.0","result":null,"id":12}`, id: 12, result: `null`, fast: true},
		{msg: `{"id":12,"result":{"a":1},"jsonrpc":"2.0"}`, id: 12, result: `{"a":1}`},
		{msg: ` {"jsonrpc":"2.0","result":1,"id":3} `, id: 3, result: `1`},
		{msg: `{"jsonrpc":"2.0","result":1,"id":1,"id":2}`, id: 2, result: `1`}, // the last, as encoding/json reads it
		{msg: `{"jsonrpc":"2.0","error":{"code":-32000,"message":"m","data":{"module":"stf","name":"StaleNonce"}},"id":5}`,
			id: 5, err: "m"},
	} {
		m := decodeMessage([]byte(tc.msg))
		var err string
		if m.err != nil {
			err = m.err.Error()
		}
		if m.kind != msgAnswer || m.id != tc.id || string(m.result) != tc.result || err != tc.err {
			t.Errorf("%s: decoded %+v", tc.msg, m)
		}
		var fast message
		if fastAnswer([]byte(tc.msg), &fast) != tc.fast {
			t.Errorf("%s: fast path %v", tc.msg, !tc.fast)
		}
	}
	for _, msg := range []string{
		`{"jsonrpc":"2.0","result":1,"id":01}`, `{"jsonrpc":"2.0","result":1,"id":18446744073709551616}`,
		`{"jsonrpc":"2.0","result":1,"id":-1}`, `{"jsonrpc":"2.0","result":1,"id":"1"}`,
		`{"jsonrpc":"2.0","result":1,"id":1e2}`, `{"jsonrpc":"2.0","result":,"id":1}`,
		`{"jsonrpc":"2.0","result":1}`, `{"jsonrpc":"2.0","id":1}`,
	} {
		if m := decodeMessage([]byte(msg)); m.kind != msgIgnored {
			t.Errorf("%s: decoded %+v, want it ignored", msg, m)
		}
	}
}

// FuzzClientMessage checks that the decoder neither panics nor reads a
// message differently from encoding/json: its fast path (the server's own
// bytes) must agree with slowDecode on every message it takes.
func FuzzClientMessage(f *testing.F) {
	for _, s := range statuses {
		f.Add(notification(testSub, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, want := decodeMessage(b), slowDecode(b)
		got.result, want.result = bytes.TrimSpace(got.result), bytes.TrimSpace(want.result)
		if got.kind != want.kind || !bytes.Equal(got.sub, want.sub) || got.status != want.status ||
			got.id != want.id || !bytes.Equal(got.result, want.result) || fmt.Sprint(got.err) != fmt.Sprint(want.err) {
			t.Fatalf("%q:\ndecoded  %+v\nencoding/json %+v", b, got, want)
		}
		var m message
		if (fastUpdate(b, &m) || fastAnswer(b, &m)) && !json.Valid(b) {
			t.Fatalf("the fast path took %q, which is not JSON", b)
		}
		if got.kind == msgAnswer && got.err == nil && !json.Valid(got.result) {
			t.Fatalf("%q: result %q is not JSON", b, got.result)
		}
	})
}

// BenchmarkDecodeNotification is the cost of decoding one notification as
// the server writes it: fast is decodeMessage (the client's path),
// encoding-json the fallback that decodes any message. For comparison,
// github.com/sourcegraph/jsonrpc2, which the client used before, spent about
// 10-17 µs and 67-91 allocations on one (gorilla's ReadJSON, then
// anyMessage.UnmarshalJSON, then the params again).
func BenchmarkDecodeNotification(b *testing.B) {
	for _, s := range statuses[5:8] {
		msg := notification(testSub, s)
		for name, decode := range map[string]func([]byte) message{"fast": decodeMessage, "encoding-json": slowDecode} {
			b.Run(s.Kind+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					if m := decode(msg); m.kind != msgUpdate {
						b.Fatal(m)
					}
				}
			})
		}
	}
}
