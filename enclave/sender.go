package enclave

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/integritee-go/integritee/parentchain/types"
)

// The enclave's parentchain transactions (confirmations, heartbeats,
// finality, payouts, its registration) are built and queued under the
// enclave's lock and sent after it is released: asking the node for the
// nonce and submitting are network calls, and a slow or hung node must not
// hold block production, peers' imports and the RPC behind the lock. One
// sender at a time drains the queue (sendMu); whoever finds another sender
// at work leaves its items to it.
//
// Against a hostile host this changes nothing: the host already chose when
// and whether a transaction reached the chain. The nonce the host reports
// is used as before (a lower one than the enclave's own count is ignored, a
// refusal for a stale or future nonce resets to it), and every call the
// enclave signs is still composed inside it.

// maxOutgoing bounds the queue; the oldest items go first past it.
const maxOutgoing = 256

// outgoing is a queued parentchain call.
type outgoing struct {
	call  types.Call
	chain types.Chain // the chain the light client follows, at queueing
	// failed, if set, is called with e.mu held when the call was not sent
	// (or was refused): it hands the call back to the enclave's own logic,
	// which builds it again from its current view when next due, as it
	// did when it sent under the lock (a payout refused because another
	// payout came first needs a newer verified height, not a resend).
	failed func()
	done   chan error // nil: nobody waits for the outcome
}

// sender holds the queue and the nonce count.
type sender struct {
	mu    sync.Mutex // guards queue
	queue []*outgoing

	sendMu sync.Mutex // held by the one sender; guards nonce
	nonce  uint64     // next parentchain nonce as far as the enclave knows
}

// queueLocked queues call, signed later for the chain the light client
// follows now. e.mu must be held (for e.lc). Each call is tried once; if it
// fails, failed (if set) runs under e.mu and its outcome goes to done (if
// set, capacity 1).
func (e *Enclave) queueLocked(call types.Call, failed func(), done chan error) {
	o := &outgoing{call: call, chain: e.lc.Chain(), failed: failed, done: done}
	s := &e.send
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= maxOutgoing {
		dropped := s.queue[0]
		s.queue = s.queue[1:]
		if dropped.failed != nil {
			dropped.failed() // e.mu is held here
		}
		dropped.finish(errors.New("enclave: dropped from a full parentchain queue"))
		e.log.Warn("parentchain queue full: dropped the oldest call", "call", dropped.call.String())
	}
	s.queue = append(s.queue, o)
}

func (o *outgoing) finish(err error) {
	if o.done != nil {
		o.done <- err
	}
}

// sendQueued submits the queued calls unless another sender is at it; it
// must be called without e.mu. Every public method that may queue a call
// calls it before it returns, so a queued call goes out with the call that
// queued it, or with the sender already at work. At the first failure (the
// node refused the call or did not answer) the call and the rest of the
// queue go back to the enclave (outgoing.failed), which queues them again
// when next due, as it did before with calls it could not send.
func (e *Enclave) sendQueued(ctx context.Context) {
	s := &e.send
	for s.sendMu.TryLock() {
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			o := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			err := e.submit(ctx, o)
			if err == nil {
				o.finish(nil)
				continue
			}
			e.log.Warn("parentchain call not sent; it goes out again when next due", "call", o.call.String(), "err", err)
			s.mu.Lock()
			back := append([]*outgoing{o}, s.queue...)
			s.queue = nil
			s.mu.Unlock()
			e.mu.Lock()
			for _, b := range back {
				if b.failed != nil {
					b.failed()
				}
			}
			e.mu.Unlock()
			for _, b := range back {
				b.finish(err)
			}
			break
		}
		s.sendMu.Unlock()
		// A call queued after the queue was found empty but before the
		// unlock would wait for the next sender: look again.
		s.mu.Lock()
		more := len(s.queue) > 0
		s.mu.Unlock()
		if !more {
			return
		}
	}
}

// submit signs o with the next nonce and hands it to the host; sendMu must
// be held.
func (e *Enclave) submit(ctx context.Context, o *outgoing) error {
	s := &e.send
	chainNonce, err := e.host.ParentchainNonce(ctx, e.Signer())
	if err != nil {
		return err
	}
	if chainNonce > s.nonce {
		s.nonce = chainNonce
	}
	tx := e.codec.Sign(e.keys.Signer(), o.chain, s.nonce, o.call)
	if err := e.host.SubmitParentchainTx(ctx, tx); err != nil {
		if errors.Is(err, types.ErrTxStaleNonce) || errors.Is(err, types.ErrTxFutureNonce) {
			s.nonce = chainNonce
		}
		return fmt.Errorf("enclave: send %s: %w", o.call, err)
	}
	s.nonce++
	return nil
}
