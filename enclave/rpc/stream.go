package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// request is the shape every incoming message must have.
type request struct {
	JSONRPC *string          `json:"jsonrpc"`
	Method  *string          `json:"method"`
	ID      *json.RawMessage `json:"id"`
	Params  *json.RawMessage `json:"params"`
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
			var id struct {
				ID json.RawMessage `json:"id"`
			}
			_ = json.Unmarshal(data, &id)
			if err := s.refuse(id.ID, code, msg); err != nil {
				return err
			}
			continue
		}
		return json.Unmarshal(data, v)
	}
}

// check validates a message against JSON-RPC 2.0 and returns an error
// message and code, or code 0.
func check(data []byte) (string, int) {
	if !json.Valid(data) {
		return "Parse error: not valid JSON", CodeParseError
	}
	if len(data) > 0 && data[0] == '[' {
		return "Invalid Request: batch requests are not supported", CodeInvalidRequest
	}
	var r request
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Sprintf("Invalid Request: %v", err), CodeInvalidRequest
	}
	switch {
	case r.JSONRPC == nil || *r.JSONRPC != "2.0":
		return `Invalid Request: "jsonrpc" must be "2.0"`, CodeInvalidRequest
	case r.Method == nil || *r.Method == "":
		return `Invalid Request: "method" must be a non-empty string`, CodeInvalidRequest
	}
	if r.ID != nil {
		var x any
		_ = json.Unmarshal(*r.ID, &x)
		switch x.(type) {
		case nil, string, float64:
		default:
			return `Invalid Request: "id" must be a string, a number or null`, CodeInvalidRequest
		}
	}
	if r.Params != nil {
		p := *r.Params
		if len(p) == 0 || (p[0] != '[' && p[0] != '{') {
			return `Invalid Request: "params" must be an array or an object`, CodeInvalidRequest
		}
	}
	return "", 0
}

func (s *strictStream) Close() error { return s.conn.Close() }
