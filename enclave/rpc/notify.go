package rpc

import (
	"context"
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
	conn *jsonrpc2.Conn

	mu     sync.Mutex
	queue  []Update
	wake   chan struct{}
	closed bool
}

func newNotifier(conn *jsonrpc2.Conn) *notifier {
	n := &notifier{conn: conn, wake: make(chan struct{}, 1)}
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
			if n.conn.Notify(context.Background(), WatchNotification, u) != nil {
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

	mu      sync.Mutex
	held    []Update
	replied bool
}

// Status implements Watcher.
func (w *requestWatch) Status(hash sidechain.Hash, s Status) {
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
