package rpc

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/sidechain"
)

func TestAppendNotificationIsWhatJSONMarshalMakes(t *testing.T) {
	h := sidechain.Hash{0xab, 0xcd}
	for _, s := range []Status{
		{Kind: Submitted}, {Kind: Ready}, {Kind: Future}, {Kind: Dropped}, {Kind: Retracted},
		{Kind: InSidechainBlock, BlockHash: h}, {Kind: Finalized, BlockHash: h},
		{Kind: Invalid, Reason: "stale nonce: the signer's nonce was used"},
		{Kind: Invalid, Reason: "quote \" backslash \\ <tag> & \x01 é"},
	} {
		u := Update{Subscription: h.String(), Result: s}
		want, err := json.Marshal(struct {
			JSONRPC string `json:"jsonrpc"`
			Method  string `json:"method"`
			Params  Update `json:"params"`
		}{"2.0", WatchNotification, u})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendNotification(nil, u); string(got) != string(want) {
			t.Errorf("%+v:\n got %s\nwant %s", s, got, want)
		}
	}
}

// stuckConn is a connection whose client reads nothing: Write blocks until
// Close.
type stuckConn struct {
	closed  chan struct{}
	once    sync.Once
	started chan struct{}
}

func (c *stuckConn) WriteBatch([][]byte) error {
	select {
	case c.started <- struct{}{}:
	default:
	}
	<-c.closed
	return errors.New("closed")
}

func (c *stuckConn) Close() { c.once.Do(func() { close(c.closed) }) }

// A client that keeps its watches but reads none of their notifications
// (its socket full, the write not yet timed out) is disconnected once
// MaxQueuedNotifications wait: the queue, and the memory, stay bounded.
func TestNotificationQueueIsBoundedForAClientThatDoesNotRead(t *testing.T) {
	c := &stuckConn{closed: make(chan struct{}), started: make(chan struct{}, 1)}
	n := newNotifier(c)
	u := Update{Subscription: sidechain.Hash{1}.String(), Result: Status{Kind: Ready}}
	n.push(u)
	<-c.started // the writer is stuck in its first write
	for i := 0; i < MaxQueuedNotifications; i++ {
		n.push(u)
	}
	n.mu.Lock()
	queued, closed := len(n.queue), n.closed
	n.mu.Unlock()
	if closed || queued != MaxQueuedNotifications {
		t.Fatalf("at the bound: queued %d, closed %v; want %d queued, open", queued, closed, MaxQueuedNotifications)
	}
	n.push(u) // one more than the bound
	select {
	case <-c.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not closed past the bound")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed || n.queue != nil {
		t.Fatalf("after closing: closed %v, %d still queued", n.closed, len(n.queue))
	}
	n.mu.Unlock()
	n.push(u) // pushes after the close are dropped
	n.mu.Lock()
	if n.queue != nil {
		t.Fatal("a push after the close was queued")
	}
}

// An answered watch (author_submitAndWatchTrustedOperations) leaves out each
// operation's Submitted and its status at submission, the one directly
// after Submitted, which the answer says; every later status is sent, even
// one that happens before the answer is written (a Future operation made
// Ready by the next one of the batch).
func TestAnsweredWatchLeavesOutTheStatusAtSubmission(t *testing.T) {
	n := &notifier{running: true} // nothing writes: the queue keeps what is pushed
	w := &requestWatch{n: n, quiet: true, answered: true}
	h1, h2 := sidechain.Hash{1}, sidechain.Hash{2}
	inBlock := Status{Kind: InSidechainBlock, BlockHash: sidechain.Hash{9}}
	for _, ev := range []struct {
		h sidechain.Hash
		s Status
	}{
		{h1, Status{Kind: Submitted}}, {h1, Status{Kind: Future}}, // h1 waits for h2's nonce
		{h2, Status{Kind: Submitted}}, {h2, Status{Kind: Ready}}, {h1, Status{Kind: Ready}},
	} {
		w.Status(ev.h, ev.s)
	}
	w.release()
	w.Status(h2, inBlock)
	w.Status(h1, Status{Kind: Ready}) // not after a Submitted: sent
	want := []Update{
		{Subscription: h1.String(), Result: Status{Kind: Ready}},
		{Subscription: h2.String(), Result: inBlock},
		{Subscription: h1.String(), Result: Status{Kind: Ready}},
	}
	if len(n.queue) != len(want) {
		t.Fatalf("queued %v, want %v", n.queue, want)
	}
	for i := range want {
		if n.queue[i] != want[i] {
			t.Fatalf("queued %v, want %v", n.queue, want)
		}
	}
}
