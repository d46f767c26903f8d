package rpcclient

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/integritee-go/integritee/api/trustedrpc"
)

// What a message from the server is to the client.
const (
	msgIgnored = iota // anything the client does not wait for, or cannot read
	msgUpdate         // a trustedrpc.WatchNotification: sub and status
	msgAnswer         // the answer to call id: result, or err
)

// message is a message from the server, decoded.
type message struct {
	kind   int
	sub    []byte            // msgUpdate: the subscription (may alias the message)
	status trustedrpc.Status // msgUpdate
	id     uint64            // msgAnswer
	result []byte            // msgAnswer without err: the result (may alias the message)
	err    error             // msgAnswer: an *Error, or why the error object is unreadable
}

// decodeMessage decodes one message from the server. The server's
// notifications and results, whose bytes it writes itself (enclave/rpc
// appendNotification, jsonrpc appendResult), are recognised as bytes and
// decoded without reflection; anything else is decoded with encoding/json,
// to the same values.
func decodeMessage(b []byte) message {
	var m message
	if fastUpdate(b, &m) || fastAnswer(b, &m) {
		return m
	}
	return slowDecode(b)
}

// updatePrefix begins every notification the server writes.
const updatePrefix = `{"jsonrpc":"2.0","method":"` + trustedrpc.WatchNotification + `","params":{"subscription":"`

// fastUpdate decodes b if it is exactly
// {"jsonrpc":"2.0","method":WatchNotification,"params":{"subscription":S,"result":R}}
// where S is a string without escapes and R one of the status encodings
// fastStatus knows. b is then valid JSON that slowDecode decodes to the same
// update.
func fastUpdate(b []byte, m *message) bool {
	if !bytes.HasPrefix(b, []byte(updatePrefix)) || !bytes.HasSuffix(b, []byte("}}")) {
		return false
	}
	rest := b[len(updatePrefix) : len(b)-2]
	n := plainLen(rest)
	if n == len(rest) || rest[n] != '"' {
		return false
	}
	sub := rest[:n]
	rest, ok := bytes.CutPrefix(rest[n+1:], []byte(`,"result":`))
	if !ok {
		return false
	}
	if !fastStatus(rest, &m.status) {
		return false
	}
	m.kind, m.sub = msgUpdate, sub
	return true
}

// fastStatus decodes r as trustedrpc.Status.UnmarshalJSON does if r is a
// string without escapes, or an object of one member, InSidechainBlock,
// Finalized or Invalid, whose value is such a string (for a block hash: 0x
// and 64 hex digits); false for anything else, which may still be a status:
// slowDecode decides.
func fastStatus(r []byte, s *trustedrpc.Status) bool {
	if v, ok := plainString(r); ok {
		*s = trustedrpc.Status{Kind: kindOf(v)}
		return true
	}
	if len(r) < 2 || r[0] != '{' || r[len(r)-1] != '}' {
		return false
	}
	body := r[1 : len(r)-1]
	if len(body) == 0 || body[0] != '"' {
		return false
	}
	n := 1 + plainLen(body[1:])
	if n == len(body) || body[n] != '"' {
		return false
	}
	k, rest := body[1:n], body[n+1:]
	if len(rest) == 0 || rest[0] != ':' {
		return false
	}
	v, ok := plainString(rest[1:])
	if !ok {
		return false
	}
	switch string(k) {
	case trustedrpc.InSidechainBlock, trustedrpc.Finalized:
		// The hash as sidechain.Hash.UnmarshalText decodes it, without
		// its copy to a string; slowDecode judges any other form.
		*s = trustedrpc.Status{Kind: kindOf(k)}
		if len(v) != 2+2*len(s.BlockHash) || v[0] != '0' || v[1] != 'x' {
			return false
		}
		_, err := hex.Decode(s.BlockHash[:], v[2:])
		return err == nil
	case trustedrpc.Invalid:
		*s = trustedrpc.Status{Kind: trustedrpc.Invalid, Reason: string(v)}
		return true
	}
	return false
}

// kindOf returns k as a string, the package's constant when it is one (no
// allocation for the kinds the server sends).
func kindOf(k []byte) string {
	for _, c := range statusKinds {
		if string(k) == c {
			return c
		}
	}
	return string(k)
}

// statusKinds are the status kinds the server sends.
var statusKinds = [...]string{trustedrpc.Submitted, trustedrpc.Ready, trustedrpc.Future, trustedrpc.InSidechainBlock,
	trustedrpc.Invalid, trustedrpc.Dropped, trustedrpc.Retracted, trustedrpc.Finalized}

// plainLen returns the length of b's longest prefix of plain bytes:
// printable ASCII other than '"' and '\', which stand for themselves in a
// JSON string.
func plainLen(b []byte) int {
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return i
		}
	}
	return len(b)
}

// plainString returns the contents of b if b is a JSON string of plain
// bytes only, quotes included.
func plainString(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' || plainLen(b[1:len(b)-1]) != len(b)-2 {
		return nil, false
	}
	return b[1 : len(b)-1], true
}

// Around an answer's result, as the server writes it.
const (
	answerPrefix = `{"jsonrpc":"2.0","result":`
	answerID     = `,"id":`
)

// fastAnswer decodes b if it is exactly {"jsonrpc":"2.0","result":R,"id":N}
// with R valid JSON and N an unsigned decimal integer that fits a uint64.
// b is then valid JSON that slowDecode decodes to the same answer.
func fastAnswer(b []byte, m *message) bool {
	if !bytes.HasPrefix(b, []byte(answerPrefix)) || b[len(b)-1] != '}' {
		return false
	}
	end := len(b) - 1
	start := end
	for start > len(answerPrefix) && b[start-1] >= '0' && b[start-1] <= '9' {
		start--
	}
	id, ok := parseID(b[start:end])
	if !ok {
		return false
	}
	head, ok := bytes.CutSuffix(b[:start], []byte(answerID))
	if !ok || len(head) < len(answerPrefix) {
		return false
	}
	result := head[len(answerPrefix):]
	if !json.Valid(result) {
		return false
	}
	m.kind, m.id, m.result = msgAnswer, id, result
	return true
}

// parseID parses d as a JSON number that is an unsigned integer fitting a
// uint64, the ids the client sends.
func parseID(d []byte) (uint64, bool) {
	if len(d) == 0 || len(d) > 20 || (d[0] == '0' && len(d) > 1) {
		return 0, false
	}
	var id uint64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		next := id*10 + uint64(c-'0')
		if next/10 != id {
			return 0, false
		}
		id = next
	}
	return id, true
}

// envelope is any JSON-RPC message, decoded once.
type envelope struct {
	ID     json.RawMessage `json:"id"`
	Method *string         `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// errorObject is a JSON-RPC error object.
type errorObject struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// slowDecode decodes any message with encoding/json. It reads as updates
// the notifications of trustedrpc.WatchNotification ("id" absent or null)
// whose params decode into trustedrpc.Update, and as answers the responses
// with an unsigned integer "id" and an "error" (not null) or a "result";
// everything else, such as the server's own requests or a malformed
// message, is ignored.
func slowDecode(b []byte) message {
	var e envelope
	if json.Unmarshal(b, &e) != nil {
		return message{}
	}
	isNull := func(r json.RawMessage) bool { return len(r) == 0 || string(r) == "null" }
	if e.Method != nil {
		if *e.Method != trustedrpc.WatchNotification || !isNull(e.ID) || isNull(e.Params) {
			return message{}
		}
		var u trustedrpc.Update
		if json.Unmarshal(e.Params, &u) != nil {
			return message{}
		}
		return message{kind: msgUpdate, sub: []byte(u.Subscription), status: u.Result}
	}
	id, ok := parseID(e.ID)
	if !ok {
		return message{}
	}
	switch {
	case !isNull(e.Error):
		var o errorObject
		if err := json.Unmarshal(e.Error, &o); err != nil {
			return message{kind: msgAnswer, id: id, err: fmt.Errorf("rpcclient: unreadable error answer %.200s: %w", e.Error, err)}
		}
		return message{kind: msgAnswer, id: id, err: newError(o.Code, o.Message, o.Data)}
	case e.Result != nil:
		return message{kind: msgAnswer, id: id, result: e.Result}
	}
	return message{}
}

// newError makes the *Error of an error object; data {"module","name"}
// names the enclave's error.
func newError(code int64, msg string, data json.RawMessage) *Error {
	e := &Error{Code: code, Message: msg}
	var d struct{ Module, Name string }
	if len(data) > 0 && json.Unmarshal(data, &d) == nil && d.Module != "" {
		e.Name = d.Module + "." + d.Name
	}
	return e
}
