// Package jsonrpc is the server side of JSON-RPC 2.0
// (https://www.jsonrpc.org/specification) over websockets, as the
// validateer's ports serve it: single requests, notifications and batches,
// ids echoed byte for byte, the specification's error codes, and bounded
// resources per server (connections) and per connection (messages in
// flight, message size, write time, idleness).
//
// It is written here rather than taken from a library because the two Go
// libraries at hand each break the specification where a strict server
// cannot: github.com/sourcegraph/jsonrpc2 reads no batches and cannot echo an
// "id" of null or a fractional or negative number (it keeps ids as uint64 or
// string), and github.com/creachadair/jrpc2 takes "id": null for a
// notification (its fixID), which the specification says is a request that
// must be answered with "id": null. Clients may keep using either library:
// the wire format is the standard one.
//
// This package knows nothing of the methods it serves: a Handler does.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Error codes of the specification (§5.1), and the first of the range it
// leaves to the application's own server errors.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	CodeServerError    = -32000
)

// Error is a JSON-RPC error object. A Handler that returns one has it sent
// as is; any other error is sent as CodeInternalError with its text.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("jsonrpc: error %d: %s", e.Code, e.Message) }

// Errorf returns an Error of code whose message is formatted.
func Errorf(code int, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// WithData returns a copy of e whose data is v, encoded as JSON (e itself if
// v does not encode).
func (e *Error) WithData(v any) *Error {
	b, err := json.Marshal(v)
	if err != nil {
		return e
	}
	c := *e
	c.Data = b
	return &c
}

// Request is one request or notification of a message, checked against the
// specification before a Handler sees it.
type Request struct {
	// Method is the method's name, never empty.
	Method string
	// Params is the "params" member, an array or an object; nil when the
	// request has none.
	Params json.RawMessage
	// ID is the "id" member exactly as the client wrote it: a string, a
	// number or null. It is nil for a notification (no "id" member).
	ID json.RawMessage

	afterReply []func()
}

// Notification reports whether r is a notification: it has no "id" member
// and gets no response, not even an error.
func (r *Request) Notification() bool { return r.ID == nil }

// AfterReply has f run once the message carrying r's response has been
// written, or failed to be (for a request in a batch: the batch's answer;
// for a notification: once it has been handled). A Handler uses it to send
// what must follow its answer, such as a subscription's notifications.
func (r *Request) AfterReply(f func()) { r.afterReply = append(r.afterReply, f) }

var null = json.RawMessage("null")

// parseRequest checks one request object. On failure it returns the error
// and the id to answer it with: the request's own if it has a valid one,
// else null (§5: an id that cannot be detected is null).
func parseRequest(raw json.RawMessage) (*Request, json.RawMessage, *Error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, null, Errorf(CodeInvalidRequest, "Invalid Request: not a JSON object")
	}
	// A map, not a struct: member names are case-sensitive, and an absent
	// member must be told from a null one.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, null, Errorf(CodeInvalidRequest, "Invalid Request: not a JSON object")
	}
	id, hasID := m["id"]
	if hasID && !validID(id) {
		return nil, null, Errorf(CodeInvalidRequest, `Invalid Request: "id" must be a string, a number or null`)
	}
	errID := null
	if hasID {
		errID = id
	}
	var version, method string
	if json.Unmarshal(m["jsonrpc"], &version) != nil || version != "2.0" {
		return nil, errID, Errorf(CodeInvalidRequest, `Invalid Request: "jsonrpc" must be "2.0"`)
	}
	if json.Unmarshal(m["method"], &method) != nil || method == "" {
		return nil, errID, Errorf(CodeInvalidRequest, `Invalid Request: "method" must be a non-empty string`)
	}
	if _, ok := m["result"]; ok {
		return nil, errID, Errorf(CodeInvalidRequest, `Invalid Request: a request has no "result" member`)
	}
	if _, ok := m["error"]; ok {
		return nil, errID, Errorf(CodeInvalidRequest, `Invalid Request: a request has no "error" member`)
	}
	params, hasParams := m["params"]
	if hasParams && (len(params) == 0 || (params[0] != '[' && params[0] != '{')) {
		return nil, errID, Errorf(CodeInvalidRequest, `Invalid Request: "params" must be an array or an object`)
	}
	r := &Request{Method: method, Params: params}
	if hasID {
		r.ID = id
	}
	return r, nil, nil
}

// validID reports whether raw, a valid JSON value, is an id the
// specification allows: a string, a number or null.
func validID(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	switch c := raw[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
		return true
	default:
		return bytes.Equal(raw, null)
	}
}

// appendResult appends the response {"jsonrpc":"2.0","result":…,"id":…}.
func appendResult(b []byte, id, result json.RawMessage) []byte {
	b = append(b, `{"jsonrpc":"2.0","result":`...)
	b = append(b, result...)
	b = append(b, `,"id":`...)
	b = append(b, id...)
	return append(b, '}')
}

// appendError appends the response {"jsonrpc":"2.0","error":…,"id":…}.
func appendError(b []byte, id json.RawMessage, e *Error) []byte {
	obj, err := json.Marshal(e)
	if err != nil { // data that is not JSON: leave it out
		obj, _ = json.Marshal(&Error{Code: e.Code, Message: e.Message})
	}
	if id == nil {
		id = null
	}
	b = append(b, `{"jsonrpc":"2.0","error":`...)
	b = append(b, obj...)
	b = append(b, `,"id":`...)
	b = append(b, id...)
	return append(b, '}')
}
