package enclave

import (
	"context"

	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/sidechain"
)

// chanWatcher is an rpc.Watcher that hands statuses to a channel, as the
// old channel API did: never blocking, the final status always delivered,
// the channel closed after it.
type chanWatcher chan rpc.Status

func (w chanWatcher) Status(_ sidechain.Hash, s rpc.Status) {
	if s.Final() {
		select {
		case w <- s:
		default:
			<-w
			w <- s
		}
		close(w)
		return
	}
	if len(w) < cap(w)-1 {
		w <- s
	}
}

// submitCT submits an encrypted operation through the RPC backend; with
// watch it returns a channel of its statuses.
func submitCT(b rpc.Backend, ctx context.Context, shard sidechain.ShardID, ct []byte, watch bool) (sidechain.Hash, <-chan rpc.Status, error) {
	if !watch {
		h, err := b.Submit(ctx, shard, ct, nil)
		return h, nil, err
	}
	w := make(chanWatcher, 64)
	h, err := b.Submit(ctx, shard, ct, w)
	if err != nil {
		return h, nil, err
	}
	return h, w, nil
}
