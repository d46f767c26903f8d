package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/rpcclient"
)

// joinShard gets the shard's keys, state and head from a peer over mutual
// remote attestation when the enclave needs them (enclave.NeedsJoin),
// trying the registered enclaves of this build in turn until one provisions it, and
// keeping the parentchain synced meanwhile (the enclave checks its peer
// against a fresh proven view).
func (s *Service) joinShard(ctx context.Context) error {
	start, lastLog := time.Now(), time.Time{}
	for s.enc.NeedsJoin(s.cfg.RequestState) {
		s.host.peers.reload(ctx)
		for _, p := range s.host.peers.list() {
			conn, err := s.host.peers.dialMuRa(ctx, p)
			if err == nil {
				err = s.enc.JoinShard(ctx, conn)
			}
			if err != nil {
				s.log.Warn("joining the shard through a peer failed", "peer", p.url, "err", err)
				continue
			}
			s.log.Info("joined the shard over mutual remote attestation", "peer", p.url, "took", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if time.Since(lastLog) > 10*time.Second {
			s.log.Info("waiting for a validateer of the shard to provision this one (mutual remote attestation)", "peers", s.host.peers.count())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
		if err := s.syncParentchain(ctx, false); err != nil {
			s.log.Warn("parentchain sync", "err", err)
		}
	}
	return nil
}

// onboard fetches the blocks the shard's validateers hold above this one's
// head from their untrusted ports and imports them, logging progress,
// before the slot loop starts: a validateer that was stopped for long
// takes no slot before it is caught up. Blocks are verified on import, so
// any peer will do.
func (s *Service) onboard(ctx context.Context) {
	target, peers := s.host.peers.heads(ctx)
	own, _, _, _ := s.enc.Progress()
	if len(peers) == 0 || target <= own {
		return
	}
	s.log.Info("on-boarding: fetching the shard's blocks from peers", "from", own+1, "to", target, "blocks", target-own)
	start := time.Now()
	n, err := s.catchUp(ctx, own+1, target, true)
	if err != nil {
		s.log.Warn("on-boarding stopped early; the slot loop's catch-up goes on", "imported", n, "err", err)
		return
	}
	took := time.Since(start)
	s.log.Info("on-boarding done", "blocks", n, "took", took.Round(time.Millisecond), "blocks_per_s", fmt.Sprintf("%.0f", float64(n)/max(took.Seconds(), 1e-3)))
}

// catchUp fetches blocks from..to from the first peer that serves them and
// imports them in order. It returns the number imported.
func (s *Service) catchUp(ctx context.Context, from, to uint64, report bool) (uint64, error) {
	var imported uint64
	start, lastLog := time.Now(), time.Now()
	next := from
	var lastErr error
	for next <= to {
		progressed := false
		for _, p := range s.host.peers.refresh(ctx) {
			raws, err := s.host.peers.fetch(ctx, p, next, to)
			if err != nil || len(raws) == 0 {
				lastErr = err
				continue
			}
			for _, raw := range raws {
				err := s.importFetched(ctx, raw)
				if err != nil {
					lastErr = err
					break
				}
				imported++
				next++
				progressed = true
				s.metrics.OnboardImported.Inc()
			}
			s.metrics.OnboardRemaining.Set(float64(to + 1 - min(next, to+1)))
			if report && time.Since(lastLog) > 2*time.Second {
				s.log.Info("on-boarding", "at", next-1, "remaining", to+1-min(next, to+1), "blocks_per_s", fmt.Sprintf("%.0f", float64(imported)/time.Since(start).Seconds()))
				lastLog = time.Now()
			}
			if progressed {
				break
			}
		}
		if !progressed {
			if lastErr == nil {
				lastErr = errors.New("no peer serves the blocks")
			}
			s.metrics.OnboardRemaining.Set(0) // what is left is the next catch-up's to count
			return imported, lastErr
		}
		if own, _, _, _ := s.enc.Progress(); own >= next {
			next = own + 1 // blocks arrived meanwhile by broadcast
		}
	}
	s.metrics.OnboardRemaining.Set(0)
	return imported, nil
}

// importFetched imports one fetched block; one waiting for its parentchain
// block gets the parentchain synced and is retried.
func (s *Service) importFetched(ctx context.Context, raw []byte) error {
	for attempt := 0; ; attempt++ {
		err := s.enc.ImportBlock(raw)
		if !errors.Is(err, enclave.ErrLayerOneAhead) || attempt >= 20 {
			return err
		}
		if err := s.syncParentchain(ctx, false); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// catchUpLoop fetches what the enclave's import queue waits for (a block
// that arrived ahead of its parent) until ctx ends.
func (s *Service) catchUpLoop(ctx context.Context) {
	lastCompare := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.SlotDuration):
		}
		if time.Since(lastCompare) > compareHeadsEvery {
			s.compareHeads(ctx)
			lastCompare = time.Now()
		}
		if n, ok := s.enc.ForkPoint(); ok {
			s.resolveFork(ctx, n)
		}
		if from, to, ok := s.enc.MissingBlocks(); ok {
			if n, err := s.catchUp(ctx, from, to, to-from > 100); err != nil && ctx.Err() == nil {
				s.log.Warn("fetching missing blocks", "from", from, "to", to, "imported", n, "err", err)
			}
		}
	}
}

// resolveFork hands each peer's blocks from below the competing height n to
// the enclave, which keeps its branch or switches to the peer's by the
// fork choice (enclave.ResolveFork), reaching further back while the
// common ancestor is not among them.
func (s *Service) resolveFork(ctx context.Context, n uint64) {
	for _, p := range s.host.peers.refresh(ctx) {
		for back := uint64(16); ; back *= 4 {
			from := uint64(1)
			if n > back {
				from = n - back
			}
			raws, err := s.host.peers.fetch(ctx, p, from, from+MaxFetchBlocks-1)
			if err != nil || len(raws) == 0 {
				break
			}
			switched, err := s.enc.ResolveFork(ctx, raws)
			if errors.Is(err, enclave.ErrForkAncestor) && from > 1 {
				continue
			}
			if err != nil {
				s.log.Warn("fork resolution with a peer failed", "peer", p.url, "err", err)
			} else if switched {
				s.log.Warn("fork resolved: switched to the peer's branch", "peer", p.url, "from", from)
			}
			break
		}
	}
}

// compareHeadsEvery is how often a validateer compares its head with its
// peers', so that one on a losing branch of a quiet shard (nothing is
// broadcast that would show it the fork) finds out.
const compareHeadsEvery = 2 * time.Second

// compareHeads asks each peer for its head: a peer ahead means blocks to
// fetch (their import shows a fork if there is one); a peer at the same
// height with another hash means a fork to resolve.
func (s *Service) compareHeads(ctx context.Context) {
	own, ownHash, ok := s.enc.Head()
	if !ok {
		return
	}
	for _, p := range s.host.peers.refresh(ctx) {
		var h rpc.Header
		err := s.host.peers.do(ctx, p, func(ctx context.Context, c *rpcclient.Client) error {
			var err error
			h, err = c.Header(ctx, s.enc.ShardID())
			return err
		})
		switch {
		case err != nil:
		case h.Number > own:
			if _, err := s.catchUp(ctx, own+1, h.Number, h.Number-own > 100); err != nil {
				s.log.Debug("catching up with a peer", "peer", p.url, "err", err)
			}
			return
		case h.Number == own && h.Hash != ownHash:
			s.resolveFork(ctx, own)
			return
		case h.Number < own:
			// A shorter branch may still be the winning one (anchored, or
			// begun in an earlier slot): compare at its height.
			if mine, ok := s.enc.BlockHashAt(h.Number); ok && mine != h.Hash {
				s.resolveFork(ctx, h.Number)
				return
			}
		}
	}
}
