package jsonrpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
)

// countingListener counts the writes of the connections it accepts.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// WriteBatch on a connection accepted through CorkListener, below TLS as the
// validateer serves it, sends its messages intact and in order with one
// system call per 64 KiB instead of one per message; other writes are
// unchanged.
func TestWriteBatchBelowTLSIsOneWrite(t *testing.T) {
	conns := make(chan *Conn, 1)
	s := NewServer(DefaultLimits(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *Conn) Handler {
		conns <- c
		return HandlerFunc(func(context.Context, *Request) (any, error) { return "r", nil })
	})
	var writes atomic.Int64
	hs := httptest.NewUnstartedServer(s)
	hs.Listener = CorkListener(countingListener{hs.Listener, &writes})
	hs.StartTLS()
	t.Cleanup(func() { s.Close(); hs.Close() })
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test server
	c, _, err := d.Dial("wss"+strings.TrimPrefix(hs.URL, "https"), http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	conn := <-conns
	if corkOf(conn.ws.NetConn()) == nil {
		t.Fatal("no corkConn below the TLS connection")
	}

	msgs := make([][]byte, 200) // about 20 KiB
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"n","params":[%d,"%s"]}`, i, strings.Repeat("x", 60))
	}
	before := writes.Load()
	if err := conn.WriteBatch(msgs); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load() - before; n != 1 {
		t.Fatalf("%d writes for a batch of %d messages, want 1", n, len(msgs))
	}
	for i, m := range msgs {
		if got := next(t, c); got != string(m) {
			t.Fatalf("message %d: %s, want %s", i, got, m)
		}
	}
	// A single message and an answer are written at once, not held back.
	before = writes.Load()
	if err := conn.Write(msgs[0]); err != nil {
		t.Fatal(err)
	}
	if got := next(t, c); got != string(msgs[0]) || writes.Load() == before {
		t.Fatalf("single write: %s after %d writes", got, writes.Load()-before)
	}
	if got := exchange(t, c, `{"jsonrpc":"2.0","id":1,"method":"m"}`); got != `{"jsonrpc":"2.0","result":"r","id":1}` {
		t.Fatalf("answer: %s", got)
	}
	// A batch larger than the cork's buffer leaves in several writes, all of it.
	big := make([][]byte, 2000) // about 200 KiB
	for i := range big {
		big[i] = msgs[i%len(msgs)]
	}
	before = writes.Load()
	if err := conn.WriteBatch(big); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load() - before; n < 2 || n > 8 {
		t.Fatalf("%d writes for about 200 KiB", n)
	}
	for i, m := range big {
		if got := next(t, c); got != string(m) {
			t.Fatalf("big batch, message %d: %s", i, got)
		}
	}
	// After the client is gone, a batch fails and so does every later write.
	c.Close()
	var werr error
	for range 100 { // the peer's reset may take a write or two to surface
		if werr = conn.WriteBatch(big); werr != nil {
			break
		}
	}
	if werr == nil || conn.Write(msgs[0]) == nil {
		t.Fatalf("writes to a closed client: %v", werr)
	}
}
