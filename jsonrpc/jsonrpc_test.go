package jsonrpc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestParseRequestFollowsTheSpecification(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		code      int    // 0: a request
		id        string // the request's id (or the error's); "" for none
	}{
		{"a call", `{"jsonrpc":"2.0","method":"m","params":[1],"id":7}`, 0, `7`},
		{"named params", `{"jsonrpc":"2.0","method":"m","params":{"a":1},"id":"x"}`, 0, `"x"`},
		{"a notification", `{"jsonrpc":"2.0","method":"m"}`, 0, ``},
		{"null id is a request", `{"jsonrpc":"2.0","method":"m","id":null}`, 0, `null`},
		{"fractional id", `{"jsonrpc":"2.0","method":"m","id":-1.5e3}`, 0, `-1.5e3`},
		{"member names are case-sensitive", `{"jsonrpc":"2.0","Method":"m","id":1}`, CodeInvalidRequest, `1`},
		{"no jsonrpc", `{"method":"m","id":1}`, CodeInvalidRequest, `1`},
		{"object id", `{"jsonrpc":"2.0","method":"m","id":{}}`, CodeInvalidRequest, `null`},
		{"boolean id", `{"jsonrpc":"2.0","method":"m","id":false}`, CodeInvalidRequest, `null`},
		{"null params", `{"jsonrpc":"2.0","method":"m","params":null,"id":1}`, CodeInvalidRequest, `1`},
		{"a response", `{"jsonrpc":"2.0","result":1,"id":1}`, CodeInvalidRequest, `1`},
		{"a request with an error member", `{"jsonrpc":"2.0","method":"m","error":1,"id":1}`, CodeInvalidRequest, `1`},
		{"not an object", `"m"`, CodeInvalidRequest, `null`},
		{"invalid without id", `{"jsonrpc":"2.0","method":1}`, CodeInvalidRequest, `null`},
	} {
		req, errID, e := parseRequest(json.RawMessage(tc.raw))
		switch {
		case tc.code == 0 && e != nil:
			t.Errorf("%s: refused: %v", tc.name, e)
		case tc.code == 0 && string(req.ID) != tc.id:
			t.Errorf("%s: id %s, want %s", tc.name, req.ID, tc.id)
		case tc.code == 0 && (tc.id == "") != req.Notification():
			t.Errorf("%s: Notification() = %v", tc.name, req.Notification())
		case tc.code != 0 && (e == nil || e.Code != tc.code || string(errID) != tc.id):
			t.Errorf("%s: %v (id %s), want code %d id %s", tc.name, e, errID, tc.code, tc.id)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Limits){
		"connections": func(l *Limits) { l.MaxConnections = 0 },
		"in flight":   func(l *Limits) { l.MaxInFlight = 0 },
		"message":     func(l *Limits) { l.MaxMessageBytes = 10 },
		"batch":       func(l *Limits) { l.MaxBatch = 0 },
		"write":       func(l *Limits) { l.WriteTimeout = 0 },
		"idle":        func(l *Limits) { l.IdleTimeout = -time.Second },
	} {
		l := DefaultLimits()
		mut(&l)
		if l.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// testServer serves h over plain websockets and returns a connected client.
func testServer(t *testing.T, h HandlerFunc) *websocket.Conn {
	t.Helper()
	s := NewServer(DefaultLimits(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)), func(*Conn) Handler { return h })
	hs := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); hs.Close() })
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func exchange(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	return next(t, c)
}

func next(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerErrorsAndPanicsAreAnsweredAndTheConnectionStays(t *testing.T) {
	c := testServer(t, func(_ context.Context, r *Request) (any, error) {
		switch r.Method {
		case "plain":
			return nil, errors.New("disk on fire")
		case "typed":
			return nil, Errorf(CodeServerError, "refused").WithData(map[string]string{"name": "X"})
		case "panic":
			panic("bug")
		case "raw":
			return json.RawMessage(`{"a":1}`), nil
		case "unencodable":
			return make(chan int), nil
		}
		return r.Method, nil
	})
	for msg, want := range map[string]string{
		`{"jsonrpc":"2.0","id":1,"method":"plain"}`:       `{"jsonrpc":"2.0","error":{"code":-32603,"message":"disk on fire"},"id":1}`,
		`{"jsonrpc":"2.0","id":1,"method":"typed"}`:       `{"jsonrpc":"2.0","error":{"code":-32000,"message":"refused","data":{"name":"X"}},"id":1}`,
		`{"jsonrpc":"2.0","id":1,"method":"panic"}`:       `{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"},"id":1}`,
		`{"jsonrpc":"2.0","id":1,"method":"raw"}`:         `{"jsonrpc":"2.0","result":{"a":1},"id":1}`,
		`{"jsonrpc":"2.0","id":1,"method":"unencodable"}`: `{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error: result does not encode: json: unsupported type: chan int"},"id":1}`,
		` {"jsonrpc":"2.0","id":1,"method":"ok"} `:        `{"jsonrpc":"2.0","result":"ok","id":1}`,
	} {
		if got := exchange(t, c, msg); got != want {
			t.Errorf("%s\n got %s\nwant %s", msg, got, want)
		}
	}
	if err := c.WriteMessage(websocket.BinaryMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"ok"}`)); err != nil {
		t.Fatal(err)
	}
	if got := next(t, c); !strings.Contains(got, `"code":-32600`) || !strings.Contains(got, "text frames") {
		t.Errorf("binary frame: %s", got)
	}
}

// What a request's handler has run after its reply, such as a
// notification written on the connection, follows the reply: for a batch,
// the whole batch's answer.
func TestAfterReplyRunsOnceTheAnswerIsWritten(t *testing.T) {
	var conn *Conn
	s := NewServer(DefaultLimits(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *Conn) Handler {
		conn = c
		return HandlerFunc(func(_ context.Context, r *Request) (any, error) {
			r.AfterReply(func() { _ = conn.Write([]byte(`{"jsonrpc":"2.0","method":"after","params":[` + string(r.ID) + `]}`)) })
			return "r", nil
		})
	})
	hs := httptest.NewServer(s)
	defer hs.Close()
	defer s.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := exchange(t, c, `{"jsonrpc":"2.0","id":1,"method":"m"}`); got != `{"jsonrpc":"2.0","result":"r","id":1}` {
		t.Fatalf("first: %s", got)
	}
	if got := next(t, c); got != `{"jsonrpc":"2.0","method":"after","params":[1]}` {
		t.Fatalf("second: %s", got)
	}
	if got := exchange(t, c, `[{"jsonrpc":"2.0","id":2,"method":"m"},{"jsonrpc":"2.0","id":3,"method":"m"}]`); !strings.HasPrefix(got, "[") {
		t.Fatalf("batch: first message %s, want the batch's answer", got)
	}
	for _, id := range []string{"2", "3"} {
		if got := next(t, c); got != `{"jsonrpc":"2.0","method":"after","params":[`+id+`]}` {
			t.Fatalf("after the batch: %s", got)
		}
	}
}
