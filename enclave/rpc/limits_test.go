package rpc_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/jsonrpc"
	"github.com/integritee-go/integritee/sidechain"
)

// serveLimited starts a server of b within limits on a loopback port.
func serveLimited(t *testing.T, b rpc.Backend, limits jsonrpc.Limits) (string, *rpc.Counters) {
	t.Helper()
	if err := limits.Validate(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counters := &rpc.Counters{}
	s := rpc.New(b, rpc.Config{Version: "v-test", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Counters: counters, Limits: limits})
	done := make(chan error, 1)
	go func() { done <- s.Serve(l, certificate(t)) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return "wss://" + l.Addr().String(), counters
}

func tryDial(url string) (*ws.Conn, *http.Response, error) {
	d := ws.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 5 * time.Second} //nolint:gosec // test
	return d.Dial(url, nil)
}

// messages reads c's messages into a channel, closed when reading fails;
// the connection stays usable for writing while a test waits on it.
func messages(c *ws.Conn) <-chan string {
	ch := make(chan string, 1024)
	c.SetReadDeadline(time.Time{})
	go func() {
		defer close(ch)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			ch <- string(data)
		}
	}()
	return ch
}

// until polls cond every few milliseconds for up to 20 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closeCode waits for c's close frame and returns its code and text.
func closeCode(t *testing.T, c *ws.Conn) (int, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err == nil {
			t.Logf("message before the close: %.100s", data)
			continue
		}
		var ce *ws.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce.Code, ce.Text
	}
}

func TestConnectionsBeyondTheLimitAreRefusedWith503(t *testing.T) {
	limits := rpc.DefaultLimits()
	limits.MaxConnections = 2
	url, counters := serveLimited(t, &fakeBackend{}, limits)
	a, b := dial(t, url), dial(t, url)

	c, resp, err := tryDial(url)
	if err == nil {
		c.Close()
		t.Fatal("a third connection was accepted beyond the limit of 2")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("refusal: %v %+v, want HTTP 503", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "too many connections") {
		t.Errorf("refusal says %q", body)
	}
	if got := counters.Conns.Refused.Load(); got != 1 {
		t.Errorf("Refused = %d, want 1", got)
	}
	// The admitted ones are served; once one leaves, a newcomer is let in.
	stillWorks(t, a)
	stillWorks(t, b)
	a.Close()
	until(t, "the closed connection's slot to free", func() bool { return counters.Conns.Open.Load() == 1 })
	stillWorks(t, dial(t, url))
}

// gatedBackend holds every getter until the gate opens and records how
// many run at once.
type gatedBackend struct {
	*fakeBackend
	gate          chan struct{}
	running, most atomic.Int32
}

func (g *gatedBackend) ExecuteGetter(ctx context.Context, shard sidechain.ShardID, getter []byte) (string, error) {
	n := g.running.Add(1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	defer g.running.Add(-1)
	select {
	case <-g.gate:
	case <-ctx.Done():
	}
	return "gated", nil
}

func TestInFlightBoundStopsReadingUntilASlotFrees(t *testing.T) {
	limits := rpc.DefaultLimits()
	limits.MaxInFlight = 2
	b := &gatedBackend{fakeBackend: &fakeBackend{}, gate: make(chan struct{})}
	url, counters := serveLimited(t, b, limits)
	c := dial(t, url)
	in := messages(c)
	for i := 1; i <= 5; i++ {
		send(t, c, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"state_executeGetter","params":["%s","0x01"]}`, i, testShard))
	}
	until(t, "two getters to run", func() bool { return b.running.Load() == 2 })
	// The connection is not read on: a request sent now is not handled,
	// while another client is served.
	send(t, c, `{"jsonrpc":"2.0","id":"probe","method":"system_version"}`)
	stillWorks(t, dial(t, url))
	select {
	case m := <-in:
		t.Fatalf("answered %s with both slots taken", m)
	case <-time.After(300 * time.Millisecond):
	}
	if got := counters.Requests.Load(); got != 3 { // the two getters and the other client's probe
		t.Fatalf("%d requests reached the handler with both slots taken, want 3", got)
	}
	close(b.gate)
	got := map[string]bool{}
	for len(got) < 6 {
		select {
		case m, ok := <-in:
			if !ok {
				t.Fatal("connection closed")
			}
			got[m] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of 6 answers after the gate opened", len(got))
		}
	}
	if !got[`{"jsonrpc":"2.0","result":"v-test","id":"probe"}`] || !got[`{"jsonrpc":"2.0","result":"gated","id":5}`] {
		t.Fatalf("answers %v", got)
	}
	if m := b.most.Load(); m != 2 {
		t.Fatalf("%d getters ran at once, want at most (and at some point) 2", m)
	}
}

// holdingBackend keeps the watchers it is given, sends each Ready, and
// ends them when told.
type holdingBackend struct {
	*fakeBackend
	mu       sync.Mutex
	watchers []rpc.Watcher
	reason   string // if set: every watch ends at once, Invalid with this reason
}

func (h *holdingBackend) Submit(_ context.Context, _ sidechain.ShardID, ct []byte, w rpc.Watcher) (sidechain.Hash, error) {
	hash := sidechain.Hash{ct[0], ct[1]}
	if w == nil {
		return hash, nil
	}
	if h.reason != "" {
		w.Status(hash, rpc.Status{Kind: rpc.Invalid, Reason: h.reason})
		return hash, nil
	}
	w.Status(hash, rpc.Status{Kind: rpc.Ready})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers = append(h.watchers, w)
	return hash, nil
}

func (h *holdingBackend) finish(hash sidechain.Hash) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.watchers {
		w.Status(hash, rpc.Status{Kind: rpc.Finalized, BlockHash: sidechain.Hash{9}})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A client that submits watches and never reads its answers or
// notifications is disconnected at its first write that exceeds the write
// timeout; what the server held for it is freed, and others are served
// throughout.
func TestClientThatNeverReadsIsDisconnectedAndFreed(t *testing.T) {
	limits := rpc.DefaultLimits()
	limits.WriteTimeout = 300 * time.Millisecond
	// Each watch ends at once with a 1 MiB notification: far more than the
	// sockets' buffers hold.
	b := &holdingBackend{fakeBackend: &fakeBackend{}, reason: strings.Repeat("r", 1<<20)}
	url, counters := serveLimited(t, b, limits)
	other := dial(t, url)
	stillWorks(t, other)
	before := heapInUse()

	bad, _, err := tryDial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	go func() {
		for i := range 256 {
			bad.SetWriteDeadline(time.Now().Add(20 * time.Second))
			msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"author_submitAndWatchExtrinsic","params":["%s","0xaabb"]}`, i, testShard)
			if bad.WriteMessage(ws.TextMessage, []byte(msg)) != nil {
				return // closed by the server
			}
		}
	}()
	until(t, "the server to disconnect the client that does not read", func() bool {
		return counters.Conns.ClosedWrite.Load() == 1 && counters.Conns.Open.Load() == 1
	})
	stillWorks(t, other)
	stillWorks(t, dial(t, url))
	var after uint64
	until(t, "the heap to shrink back", func() bool {
		after = heapInUse()
		return after < before+8<<20
	})
	t.Logf("heap %d KiB before, %d KiB after", before>>10, after>>10)
}

func TestOversizeMessageClosesWith1009AndOthersGoOn(t *testing.T) {
	limits := rpc.DefaultLimits()
	limits.MaxMessageBytes = 64 << 10
	url, counters := serveLimited(t, &fakeBackend{}, limits)
	other := dial(t, url)
	c := dial(t, url)
	prefix := `{"jsonrpc":"2.0","id":1,"method":"system_version","params":["`
	fits := prefix + strings.Repeat("a", 64<<10-len(prefix)-3) + `"]}`
	wantError(t, call(t, c, fits), rpc.CodeInvalidParams) // at the limit: answered
	_ = c.WriteMessage(ws.TextMessage, []byte(fits+" "))  // one byte more
	if code, _ := closeCode(t, c); code != ws.CloseMessageTooBig {
		t.Fatalf("close code %d, want %d (message too big)", code, ws.CloseMessageTooBig)
	}
	until(t, "the oversize close to be counted", func() bool { return counters.Conns.ClosedTooLarge.Load() == 1 })
	stillWorks(t, other)
	stillWorks(t, dial(t, url))
}

// An idle connection is closed; one with an open watch is not, however
// long it stays quiet, until its watch ends.
func TestIdleConnectionIsClosedUnlessAWatchIsOpen(t *testing.T) {
	const idle = 300 * time.Millisecond
	limits := rpc.DefaultLimits()
	limits.IdleTimeout = idle
	b := &holdingBackend{fakeBackend: &fakeBackend{}}
	url, counters := serveLimited(t, b, limits)

	watching := dial(t, url)
	m := call(t, watching, `{"jsonrpc":"2.0","id":1,"method":"author_submitAndWatchExtrinsic","params":["`+testShard.String()+`","0x0102"]}`)
	var hash string
	wantResult(t, m, &hash)
	if n := read(t, watching); n.Method != rpc.WatchNotification {
		t.Fatalf("want the Ready notification, got %+v", n)
	}
	// Two connections opened one after the other, each closed as idle:
	// by the second's close, the watching one has been quiet for more
	// than two idle timeouts, the most the server takes to notice.
	for i := range 2 {
		quiet := dial(t, url)
		code, text := closeCode(t, quiet)
		if code != ws.CloseNormalClosure || !strings.Contains(text, "idle") {
			t.Fatalf("idle close: code %d %q", code, text)
		}
		if got := counters.Conns.ClosedIdle.Load(); got != int64(i+1) {
			t.Fatalf("ClosedIdle = %d after %d idle connections", got, i+1)
		}
	}
	until(t, "the watching connection to be the only one open", func() bool { return counters.Conns.Open.Load() == 1 })
	stillWorks(t, watching)
	// The watch ends; the watching connection, quiet, is then idle.
	in := messages(watching)
	b.finish(sidechain.Hash{1, 2})
	if n := <-in; !strings.Contains(n, "Finalized") {
		t.Fatalf("want the Finalized notification, got %s", n)
	}
	until(t, "the watching connection to be closed once its watch ended", func() bool {
		return counters.Conns.ClosedIdle.Load() == 3 && counters.Conns.Open.Load() == 0
	})
	if _, ok := <-in; ok {
		t.Fatal("message after the close")
	}
}

func TestBatchBeyondTheLimitIsOneInvalidRequest(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	max := rpc.DefaultLimits().MaxBatch
	one := `{"jsonrpc":"2.0","id":1,"method":"system_version"}`
	at := "[" + strings.TrimSuffix(strings.Repeat(one+",", max), ",") + "]"
	if got := callRaw(t, c, at); strings.Count(got, `"result":"v-test"`) != max {
		t.Fatalf("a batch of %d got %.200s", max, got)
	}
	m := call(t, c, "["+strings.Repeat(one+",", max)+one+"]")
	wantError(t, m, rpc.CodeInvalidRequest)
	if !strings.Contains(m.Error.Message, "at most 1000") || string(m.ID) != "null" {
		t.Fatalf("refusal %+v id %s", m.Error, m.ID)
	}
	stillWorks(t, c)
}

// A watch submitted in a batch sends its statuses only after the batch's
// answer, which carries its subscription.
func TestBatchWatchNotifiesAfterTheBatchAnswer(t *testing.T) {
	b := &fakeBackend{statuses: []rpc.Status{{Kind: rpc.Submitted}, {Kind: rpc.Ready}}}
	url, _ := serve(t, b)
	c := dial(t, url)
	got := callRaw(t, c, `[{"jsonrpc":"2.0","id":1,"method":"author_submitAndWatchExtrinsic","params":["`+testShard.String()+`","0x01"]},`+
		`{"jsonrpc":"2.0","id":2,"method":"system_version"}]`)
	want := `[{"jsonrpc":"2.0","result":"` + testHash.String() + `","id":1},{"jsonrpc":"2.0","result":"v-test","id":2}]`
	if got != want {
		t.Fatalf("first message\n got %s\nwant %s", got, want)
	}
	for _, kind := range []string{rpc.Submitted, rpc.Ready} {
		if n := readRaw(t, c); !strings.Contains(n, rpc.WatchNotification) || !strings.Contains(n, kind) {
			t.Fatalf("want the %s notification, got %s", kind, n)
		}
	}
}

func TestCloseClosesOpenConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counters := &rpc.Counters{}
	s := rpc.NewServer(&fakeBackend{}, "v-test", slog.New(slog.NewTextHandler(io.Discard, nil)), counters)
	go s.Serve(l, certificate(t))
	c := dial(t, "wss://"+l.Addr().String())
	stillWorks(t, c)
	s.Close()
	if code, _ := closeCode(t, c); code != ws.CloseGoingAway {
		t.Fatalf("close code %d, want going away", code)
	}
	until(t, "no open connections", func() bool { return counters.Conns.Open.Load() == 0 })
}
