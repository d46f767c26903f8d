package jsonrpc

import (
	"bytes"
	"encoding/json"
)

// Result is a handled request's outcome: its encoded result, or Err.
type Result struct {
	Result json.RawMessage
	Err    *Error
}

// AnswerAll answers one message (a request, a notification or a batch of at
// most maxBatch) as the specification asks, for servers that are not this
// package's websocket connections, such as an HTTP front of another
// server: what is malformed is answered here with the specification's
// errors, and call gets every valid request of the message at once, in
// order (notifications too: they are executed, and their results dropped),
// and returns one Result each. Ids are echoed byte for byte. The answer is
// nil when the message holds only notifications.
func AnswerAll(data []byte, maxBatch int, call func([]*Request) []Result) []byte {
	if !json.Valid(data) {
		return appendError(nil, null, Errorf(CodeParseError, "Parse error: not valid JSON"))
	}
	data = bytes.TrimLeft(data, " \t\r\n")
	batch := data[0] == '['
	elems := []json.RawMessage{data}
	if batch {
		elems = nil
		if err := json.Unmarshal(data, &elems); err != nil { // valid JSON: cannot fail
			return appendError(nil, null, Errorf(CodeParseError, "Parse error: %v", err))
		}
		switch {
		case len(elems) == 0:
			return appendError(nil, null, Errorf(CodeInvalidRequest, "Invalid Request: an empty batch"))
		case len(elems) > maxBatch:
			return appendError(nil, null, Errorf(CodeInvalidRequest, "Invalid Request: a batch of %d requests; at most %d", len(elems), maxBatch))
		}
	}
	resps := make([][]byte, len(elems))
	reqs := make([]*Request, 0, len(elems))
	idx := make([]int, 0, len(elems))
	for i, e := range elems {
		req, errID, perr := parseRequest(e)
		if perr != nil {
			resps[i] = appendError(nil, errID, perr)
			continue
		}
		reqs, idx = append(reqs, req), append(idx, i)
	}
	if len(reqs) > 0 {
		res := call(reqs)
		for j, req := range reqs {
			if req.Notification() {
				continue
			}
			r := Result{Err: Errorf(CodeInternalError, "Internal error: no result")}
			if j < len(res) {
				r = res[j]
			}
			switch {
			case r.Err != nil:
				resps[idx[j]] = appendError(nil, req.ID, r.Err)
			case r.Result == nil:
				resps[idx[j]] = appendResult(nil, req.ID, null)
			default:
				resps[idx[j]] = appendResult(nil, req.ID, r.Result)
			}
		}
	}
	if !batch {
		return resps[0]
	}
	out := []byte{'['}
	for _, r := range resps {
		if r == nil {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, r...)
	}
	if len(out) == 1 {
		return nil
	}
	return append(out, ']')
}
