package rpc

import (
	"encoding/json"
	"sync"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/integritee-go/integritee/sidechain"
)

// MaxQueuedNotifications bounds the watch notifications one connection may
// have waiting to be written. A client that stops reading them while it
// keeps submitting would otherwise grow the queue without end: when it is
// full the connection is closed (its watches end; the operations stay
// pooled).
const MaxQueuedNotifications = 1 << 16

// notifier writes one connection's watch notifications, in order, from one
// goroutine: the enclave's pool hands statuses over with its lock held and
// must never wait on a socket.
type notifier struct {
	conn   *jsonrpc2.Conn
	stream *strictStream

	mu     sync.Mutex
	queue  []Update
	wake   chan struct{}
	closed bool
}

func newNotifier(conn *jsonrpc2.Conn, stream *strictStream) *notifier {
	n := &notifier{conn: conn, stream: stream, wake: make(chan struct{}, 1)}
	go n.run()
	return n
}

// push queues updates; it never blocks.
func (n *notifier) push(us ...Update) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	if len(n.queue)+len(us) > MaxQueuedNotifications {
		n.closed = true
		n.queue = nil
		n.mu.Unlock()
		go n.conn.Close() //nolint:errcheck // the client does not read its notifications; not under the caller's locks
		return
	}
	n.queue = append(n.queue, us...)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	var batch []Update
	var buf []byte
	for {
		select {
		case <-n.wake:
		case <-n.conn.DisconnectNotify():
			n.mu.Lock()
			n.closed, n.queue = true, nil
			n.mu.Unlock()
			return
		}
		n.mu.Lock()
		batch, n.queue = n.queue, batch[:0]
		n.mu.Unlock()
		for _, u := range batch {
			// Encoded by hand: at thousands of notifications a second,
			// jsonrpc2's reflection and re-compaction were a third of the
			// validateer's CPU (docs/benchmarks.md).
			buf = appendNotification(buf[:0], u)
			if n.stream.WriteRaw(buf) != nil {
				_ = n.conn.Close()
				break // gone: DisconnectNotify ends the loop
			}
		}
		clear(batch)
	}
}

// requestWatch is the Watcher of one request's operations. It holds their
// statuses until the request's answer is written, so that a client learns
// an operation's hash (its subscription) before any of its notifications.
type requestWatch struct {
	n *notifier
	// quiet leaves out Submitted, which the answer itself says (the
	// TrustedOperation methods: one message fewer per operation).
	quiet bool

	mu      sync.Mutex
	held    []Update
	replied bool
}

// Status implements Watcher.
func (w *requestWatch) Status(hash sidechain.Hash, s Status) {
	if w.quiet && s.Kind == Submitted {
		return
	}
	u := Update{Subscription: hash.String(), Result: s}
	w.mu.Lock()
	defer w.mu.Unlock() // held across push, so statuses keep their order
	if !w.replied {
		w.held = append(w.held, u)
		return
	}
	w.n.push(u)
}

// release is called once the answer is written (or failed to be): the held
// statuses follow it.
func (w *requestWatch) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.held) > 0 {
		w.n.push(w.held...)
	}
	w.held, w.replied = nil, true
}

// appendNotification appends u as the JSON-RPC notification
// {"jsonrpc":"2.0","method":WatchNotification,"params":u}, byte for byte what
// json.Marshal makes of it.
func appendNotification(b []byte, u Update) []byte {
	b = append(b, `{"jsonrpc":"2.0","method":"`+WatchNotification+`","params":{"subscription":`...)
	b = appendJSONString(b, u.Subscription)
	b = append(b, `,"result":`...)
	switch s := u.Result; s.Kind {
	case InSidechainBlock, Finalized:
		b = append(b, `{"`...)
		b = append(b, s.Kind...)
		b = append(b, `":"`...)
		b = append(b, s.BlockHash.String()...)
		b = append(b, `"}`...)
	case Invalid:
		b = append(b, `{"Invalid":`...)
		b = appendJSONString(b, s.Reason)
		b = append(b, '}')
	default:
		b = appendJSONString(b, s.Kind)
	}
	return append(b, "}}"...)
}

// appendJSONString appends s as a JSON string, as encoding/json escapes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // rare: reasons with special characters
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
