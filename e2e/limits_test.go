package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
)

// metric reads one series of the worker's metrics, e.g.
// `integritee_worker_rpc_connections{port="trusted"}` (0 if absent).
func (w *workerProc) metric(t *testing.T, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", w.metrics)), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// closedWith waits for c's close frame and returns its code.
func closedWith(t *testing.T, c *ws.Conn, within time.Duration) int {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *ws.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce.Code
	}
}

func (r *rawConn) version() {
	r.t.Helper()
	r.send(`{"jsonrpc":"2.0","id":1,"method":"system_version"}`)
	if got := r.next(); got != `{"jsonrpc":"2.0","result":"0.1.0","id":1}` {
		r.t.Fatalf("system_version: %s", got)
	}
}

// TestValidateerRPCLimitsHoldAndOthersAreServed runs a validateer with
// small limits on both ports and drives each past its bound: a connection
// beyond the limit is refused with HTTP 503, an oversize message closes its
// connection with 1009, a client that never reads its answers is
// disconnected, an idle one is closed; each is counted in the metrics, and
// other clients are served throughout.
func TestValidateerRPCLimitsHoldAndOthersAreServed(t *testing.T) {
	n := startDevNode(t, "")
	w := startWorker(t, n, "", "--dev", "--rpc-max-connections", "3", "--rpc-max-in-flight", "8",
		"--rpc-max-message-bytes", "65536", "--rpc-write-timeout", "1s", "--rpc-idle-timeout", "4s",
		"--untrusted-max-connections", "1")
	trusted := fmt.Sprintf("wss://127.0.0.1:%d", w.trusted)
	d := ws.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 10 * time.Second} //nolint:gosec // RA-TLS is not under test here
	open := func() float64 { return w.metric(t, `integritee_worker_rpc_connections{port="trusted"}`) }
	closed := func(reason string) float64 {
		return w.metric(t, `integritee_worker_rpc_connections_closed_total{port="trusted",reason="`+reason+`"}`)
	}

	// Connections: three are served, the fourth is refused before the
	// upgrade.
	a, b, c := dialRaw(t, trusted), dialRaw(t, trusted), dialRaw(t, trusted)
	if _, resp, err := d.Dial(trusted, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a fourth connection: %v %+v, want HTTP 503", err, resp)
	}
	if got := w.metric(t, `integritee_worker_rpc_connections_refused_total{port="trusted"}`); got != 1 {
		t.Errorf("refused connections %v, want 1", got)
	}
	b.c.Close()
	c.c.Close()

	// Message size: one byte above the limit closes that connection.
	a.version()
	big := `{"jsonrpc":"2.0","id":1,"method":"system_version","params":["` + strings.Repeat("x", 65536) + `"]}`
	_ = a.c.WriteMessage(ws.TextMessage, []byte(big))
	if code := closedWith(t, a.c, 30*time.Second); code != ws.CloseMessageTooBig {
		t.Fatalf("oversize message: close code %d, want 1009", code)
	}
	waitFor(t, "every slot to free", 30*time.Second, func() bool { return open() == 0 })
	next := dialRaw(t, trusted)
	next.version()
	next.c.Close()

	// A client that sends and never reads is disconnected at its first
	// write that takes more than the write timeout.
	slow := dialRaw(t, trusted)
	go func() {
		for range 200_000 {
			slow.c.SetWriteDeadline(time.Now().Add(time.Minute))
			if slow.c.WriteMessage(ws.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"rpc_methods"}`)) != nil {
				return // closed by the server
			}
		}
	}()
	waitFor(t, "the client that does not read to be disconnected", 60*time.Second, func() bool { return closed("write") >= 1 })
	waitFor(t, "its slot to free", 30*time.Second, func() bool { return open() == 0 })
	next = dialRaw(t, trusted)
	next.version()
	next.c.Close()
	waitFor(t, "every slot to free", 30*time.Second, func() bool { return open() == 0 })

	// Idleness: a connection without requests is closed.
	quiet, _, err := d.Dial(trusted, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	if code := closedWith(t, quiet, 30*time.Second); code != ws.CloseNormalClosure {
		t.Fatalf("idle connection: close code %d, want 1000", code)
	}
	if closed("idle") < 1 {
		t.Error("no idle close counted")
	}

	// The untrusted port holds one connection.
	untrusted := fmt.Sprintf("ws://127.0.0.1:%d", w.untrusted)
	held := dialRaw(t, untrusted)
	if _, resp, err := d.Dial(untrusted, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a second untrusted connection: %v %+v, want HTTP 503", err, resp)
	}
	if got := w.metric(t, `integritee_worker_rpc_connections_refused_total{port="untrusted"}`); got != 1 {
		t.Errorf("untrusted refused %v, want 1", got)
	}
	held.send(`{"jsonrpc":"2.0","id":1,"method":"nope"}`)
	if got := held.next(); !strings.Contains(got, `"code":-32601`) {
		t.Errorf("untrusted answer %s", got)
	}

	// The validateer is up and serves a newcomer.
	if isDone(w.proc) {
		t.Fatal("the validateer exited")
	}
	dialRaw(t, trusted).version()
}
