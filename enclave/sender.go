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

// maxSendTries is how often a queued transaction is submitted before it is
// dropped (the enclave builds confirmations, finality and payouts again
// when they stay missing on the chain).
const maxSendTries = 3

// maxOutgoing bounds the queue; the oldest items go first past it.
const maxOutgoing = 256

// outgoing is a queued parentchain call.
type outgoing struct {
	call  types.Call
	chain types.Chain // the chain the light client follows, at queueing
	tries int
	done  chan error // nil: nobody waits for the outcome
}

// sender holds the queue and the nonce count.
type sender struct {
	mu    sync.Mutex // guards queue
	queue []*outgoing

	sendMu sync.Mutex // held by the one sender; guards nonce
	nonce  uint64     // next parentchain nonce as far as the enclave knows
}

// queueLocked queues call, signed later for the chain the light client
// follows now. e.mu must be held (for e.lc). With done, the call is tried
// once and its outcome sent to done (capacity 1); without, it is retried.
func (e *Enclave) queueLocked(call types.Call, done chan error) {
	o := &outgoing{call: call, chain: e.lc.Chain(), done: done}
	s := &e.send
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= maxOutgoing {
		dropped := s.queue[0]
		s.queue = s.queue[1:]
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
// queued it, or with the sender already at work.
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
			if o.tries++; o.tries < maxSendTries && o.done == nil && ctx.Err() == nil {
				// Put back in front, and leave the rest for the next send:
				// the node may be down.
				s.mu.Lock()
				s.queue = append([]*outgoing{o}, s.queue...)
				s.mu.Unlock()
				e.log.Warn("parentchain call not sent; will retry", "call", o.call.String(), "err", err)
				s.sendMu.Unlock()
				return
			}
			e.log.Warn("parentchain call not sent; dropped", "call", o.call.String(), "tries", o.tries, "err", err)
			o.finish(err)
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
