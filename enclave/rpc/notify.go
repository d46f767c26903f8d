package rpc

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/integritee-go/integritee/jsonrpc"
	"github.com/integritee-go/integritee/sidechain"
)

// MaxQueuedNotifications bounds the watch notifications one connection may
// have waiting to be written. A client that stops reading them while it
// keeps submitting would otherwise grow the queue without end: when it is
// full the connection is closed (its watches end; the operations stay
// pooled). A client that reads nothing at all is closed sooner, at its
// first write that exceeds the write timeout (jsonrpc.Limits.WriteTimeout).
const MaxQueuedNotifications = 1 << 16

// notifier writes one connection's watch notifications, in order, from one
// goroutine at a time, started when there is something to write: the
// enclave's pool hands statuses over with its lock held and must never wait
// on a socket, and thousands of connections without watches hold no
// goroutine for it.
type notifier struct {
	conn messageConn

	mu      sync.Mutex
	queue   []Update
	running bool // a run goroutine is writing
	closed  bool
}

// messageConn is what the notifier needs of a connection (*jsonrpc.Conn).
type messageConn interface {
	// WriteBatch writes messages in order, with as few system calls as
	// it can; an error means the connection is closed.
	WriteBatch(msgs [][]byte) error
	Close()
}

var _ messageConn = (*jsonrpc.Conn)(nil)

func newNotifier(conn messageConn) *notifier {
	return &notifier{conn: conn}
}

// push queues updates; it never blocks.
func (n *notifier) push(us ...Update) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	if len(n.queue)+len(us) > MaxQueuedNotifications {
		n.closed, n.queue = true, nil
		go n.conn.Close() // the client does not read its notifications; not under the caller's locks
		return
	}
	n.queue = append(n.queue, us...)
	if !n.running {
		n.running = true
		go n.run()
	}
}

// run writes the queue until it is empty or the connection fails.
func (n *notifier) run() {
	var batch []Update
	var buf []byte
	var msgs [][]byte
	for {
		n.mu.Lock()
		if n.closed || len(n.queue) == 0 {
			n.running = false
			if cap(n.queue) > 1024 {
				n.queue = nil // do not keep a burst's capacity
			}
			n.mu.Unlock()
			return
		}
		batch, n.queue = n.queue, batch[:0]
		n.mu.Unlock()
		// Encoded by hand: at thousands of notifications a second,
		// reflection and re-compaction were a third of the validateer's
		// CPU (docs/benchmarks.md). Written together: one system call per
		// 64 KiB rather than per notification.
		buf, msgs = buf[:0], msgs[:0]
		for _, u := range batch {
			start := len(buf)
			buf = appendNotification(buf, u)
			msgs = append(msgs, buf[start:len(buf):len(buf)])
		}
		if n.conn.WriteBatch(msgs) != nil { // the write closed the connection
			n.mu.Lock()
			n.closed, n.queue, n.running = true, nil, false
			n.mu.Unlock()
			return
		}
		clear(batch)
		if cap(buf) > 1<<20 {
			buf, msgs = nil, nil // do not keep a burst's capacity
		}
	}
}

// openWatches tracks a connection's open watches, so that a connection
// with one is not closed as idle. A watch is open from its operation's
// first status until a final one; one whose operation has been
// InSidechainBlock for expiry without a later status counts as ended, as
// the enclave ends it then without a status.
type openWatches struct {
	expiry time.Duration

	mu   sync.Mutex
	open map[sidechain.Hash]time.Time // the latest InSidechainBlock's time; zero while not in a block
}

func newOpenWatches(expiry time.Duration) *openWatches {
	return &openWatches{expiry: expiry, open: map[sidechain.Hash]time.Time{}}
}

// status records a watched operation's status; it never blocks for long.
func (o *openWatches) status(hash sidechain.Hash, s Status, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case s.Final():
		delete(o.open, hash)
	case s.Kind == InSidechainBlock:
		o.open[hash] = now
	default:
		o.open[hash] = time.Time{}
	}
}

// any reports whether a watch is open at now, forgetting expired ones.
func (o *openWatches) any(now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for h, at := range o.open {
		if !at.IsZero() && now.Sub(at) >= o.expiry {
			delete(o.open, h)
		}
	}
	return len(o.open) > 0
}

// requestWatch is the Watcher of one request's operations. It holds their
// statuses until the request's answer is written, so that a client learns
// an operation's hash (its subscription) before any of its notifications.
type requestWatch struct {
	n *notifier
	// quiet leaves out Submitted, which the answer itself says (the
	// TrustedOperation methods: one message fewer per operation).
	quiet bool
	// answered leaves out each operation's status at submission (Ready or
	// Future, the status that directly follows its Submitted), which the
	// answer says too (author_submitAndWatchTrustedOperations: a second
	// message fewer per operation). Needs quiet.
	answered bool
	// initial is the operation whose Submitted came last, while its status
	// at submission is still to come (answered only).
	initial sidechain.Hash
	// open tracks the connection's open watches (nil: not tracked).
	open *openWatches

	mu      sync.Mutex
	held    []Update
	replied bool
}

// Status implements Watcher.
func (w *requestWatch) Status(hash sidechain.Hash, s Status) {
	if w.open != nil {
		w.open.status(hash, s, time.Now())
	}
	w.mu.Lock()
	defer w.mu.Unlock() // held across push, so statuses keep their order
	if w.answered {
		// The pool reports an operation's Submitted and then, at once
		// (under its lock), its status at submission.
		if s.Kind == Submitted {
			w.initial = hash
			return
		}
		initial := w.initial == hash && (s.Kind == Ready || s.Kind == Future)
		w.initial = sidechain.Hash{}
		if initial {
			return
		}
	}
	if w.quiet && s.Kind == Submitted {
		return
	}
	u := Update{Subscription: hash.String(), Result: s}
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
