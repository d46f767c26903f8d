package rpc

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"

	ws "github.com/gorilla/websocket"
)

// JSON-RPC 2.0 error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603
	// CodeApplication is the code of errors of the request's substance: a
	// ciphertext that does not decrypt, a bad signature, a stale nonce. The
	// error's data names it (e.g. "stf.StaleNonce").
	CodeApplication = -32000
)

// strictStream is a jsonrpc2.ObjectStream over a websocket that answers
// malformed messages itself. sourcegraph/jsonrpc2 closes the connection on
// any message it cannot decode; JSON-RPC 2.0 asks for a Parse error (-32700)
// or Invalid Request (-32600) response instead, and the connection stays up.
type strictStream struct {
	conn *ws.Conn
	wmu  sync.Mutex
}

type errorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   errorObject     `json:"error"`
}

type errorObject struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (s *strictStream) WriteObject(obj any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.conn.WriteJSON(obj)
}

// WriteRaw writes one message already encoded, between jsonrpc2's own
// writes (the notifier's hand-encoded notifications).
func (s *strictStream) WriteRaw(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.conn.WriteMessage(ws.TextMessage, b)
}

func (s *strictStream) refuse(id json.RawMessage, code int, msg string) error {
	if id == nil {
		id = json.RawMessage("null")
	}
	return s.WriteObject(errorResponse{JSONRPC: "2.0", ID: id, Error: errorObject{Code: code, Message: msg}})
}

// ReadObject returns the next well-formed request, answering the others.
func (s *strictStream) ReadObject(v any) error {
	for {
		typ, data, err := s.conn.ReadMessage()
		if err != nil {
			var ce *ws.CloseError
			if errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF) {
				return io.EOF
			}
			return err
		}
		if typ != ws.TextMessage {
			if err := s.refuse(nil, CodeInvalidRequest, "Invalid Request: messages must be text frames"); err != nil {
				return err
			}
			continue
		}
		if msg, code := check(data); code != 0 {
			// Echo the id only when it is a valid one.
			var id struct {
				ID json.RawMessage `json:"id"`
			}
			_ = json.Unmarshal(data, &id)
			if !validID(id.ID) {
				id.ID = nil
			}
			if err := s.refuse(id.ID, code, msg); err != nil {
				return err
			}
			continue
		}
		return json.Unmarshal(data, v)
	}
}

// check validates a message against JSON-RPC 2.0 and returns an error
// message and code, or code 0. Members are looked up in a map so that an
// explicit null is told from an absent member.
func check(data []byte) (string, int) {
	if !json.Valid(data) {
		return "Parse error: not valid JSON", CodeParseError
	}
	if len(data) > 0 && data[0] == '[' {
		return "Invalid Request: batch requests are not supported", CodeInvalidRequest
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return "Invalid Request: not a JSON object", CodeInvalidRequest
	}
	var version, method string
	if json.Unmarshal(m["jsonrpc"], &version) != nil || version != "2.0" {
		return `Invalid Request: "jsonrpc" must be "2.0"`, CodeInvalidRequest
	}
	if json.Unmarshal(m["method"], &method) != nil || method == "" {
		return `Invalid Request: "method" must be a non-empty string`, CodeInvalidRequest
	}
	if _, ok := m["result"]; ok {
		return `Invalid Request: a request has no "result" member`, CodeInvalidRequest
	}
	if _, ok := m["error"]; ok {
		return `Invalid Request: a request has no "error" member`, CodeInvalidRequest
	}
	if id, ok := m["id"]; ok && !validID(id) {
		return `Invalid Request: "id" must be a string or a non-negative integer below 2^63`, CodeInvalidRequest
	}
	if p, ok := m["params"]; ok && (len(p) == 0 || (p[0] != '[' && p[0] != '{')) {
		return `Invalid Request: "params" must be an array or an object`, CodeInvalidRequest
	}
	return "", 0
}

func (s *strictStream) Close() error { return s.conn.Close() }

// validID reports whether raw is an id this server answers: a string or a
// non-negative integer below 2^63. (JSON-RPC 2.0 also allows null and
// fractions, and discourages both; the JSON-RPC library cannot echo them,
// so they are refused as Invalid Request rather than answered wrongly.)
func validID(raw json.RawMessage) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return false
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return true
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return err == nil && n >= 0
}
