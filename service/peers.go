package service

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// peerSet keeps one attested connection to each other validateer of this
// build, found in the parentchain's enclave registry (every registered
// enclave with this mrenclave; a silent one too, since it may be on its way
// back), and sends blocks and forwarded operations over it from a per-peer
// queue, so that neither the enclave nor the slot loop waits on a slow peer.
// The list is read again every peerRefresh in the background. A peer is
// accepted only if its RA-TLS quote shows this build's mrenclave and names
// the account the registry lists at that URL. The host is untrusted: what it
// sends is signed (blocks) or encrypted (operations), and the receiving
// enclave verifies it.
type peerSet struct {
	log       *slog.Logger
	node      *client.Client
	shard     sidechain.ShardID
	self      account.ID
	mrenclave attestation.MrEnclave
	verifiers map[string]attestation.Verifier
	// fetchMaxBytes is --fetch-max-bytes: it sets the largest block-fetch
	// answer read (fetchReadLimit).
	fetchMaxBytes int

	mu        sync.Mutex
	peers     map[account.ID]*peer
	refreshed time.Time
}

// peerQueue bounds each peer's send queue; beyond it, sends are dropped
// (the peer fetches missing blocks, and clients resubmit).
const peerQueue = 1024

// peerBackoff is how long a peer that could not be dialled is not dialled
// again.
const peerBackoff = time.Second

// peerRefresh is how often the peer list is read from the parentchain.
const peerRefresh = 2 * time.Second

type peer struct {
	id   account.ID
	url  string
	jobs chan peerJob
	stop context.CancelFunc

	mu        sync.Mutex
	untrusted string // the peer's untrusted URL, once asked
}

// peerJob is one call on a peer's connection; done, if set, receives its
// result (also when the peer cannot be reached).
type peerJob struct {
	run  func(ctx context.Context, c *rpcclient.Client) error
	done chan error
}

func newPeerSet(log *slog.Logger, node *client.Client, shard sidechain.ShardID, self account.ID, mrenclave attestation.MrEnclave, v attestation.Verifier, fetchMaxBytes int) *peerSet {
	return &peerSet{log: log, node: node, shard: shard, self: self, mrenclave: mrenclave, verifiers: ratls.Verifiers(v), fetchMaxBytes: fetchMaxBytes, peers: map[account.ID]*peer{}}
}

// refresh returns the peers, reading the registry first if the list is
// older than peerRefresh (the refresh loop keeps it fresh while running).
func (ps *peerSet) refresh(ctx context.Context) []*peer {
	ps.mu.Lock()
	fresh := time.Since(ps.refreshed) < peerRefresh
	ps.mu.Unlock()
	if !fresh {
		ps.reload(ctx)
	}
	return ps.list()
}

func (ps *peerSet) reload(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var all []teerex.Enclave
	if err := ps.node.Query(ctx, "/teerex/enclaves", &all); err != nil {
		ps.log.Debug("peer list: enclave registry", "err", err)
		return
	}
	urls := map[account.ID]string{}
	for _, e := range all {
		if e.Signer != ps.self && e.MrEnclave == ps.mrenclave && e.URL != "" {
			urls[e.Signer] = e.URL
		}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.refreshed = time.Now()
	for id, p := range ps.peers {
		if urls[id] != p.url {
			p.stop()
			delete(ps.peers, id)
		}
	}
	for id, url := range urls {
		if _, ok := ps.peers[id]; !ok {
			pctx, stop := context.WithCancel(context.Background())
			p := &peer{id: id, url: url, jobs: make(chan peerJob, peerQueue), stop: stop}
			ps.peers[id] = p
			go ps.run(pctx, p)
			ps.log.Info("peer validateer", "account", id, "url", url)
		}
	}
}

// refreshLoop reads the peer list every peerRefresh until ctx ends.
func (ps *peerSet) refreshLoop(ctx context.Context) {
	for {
		ps.reload(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(peerRefresh):
		}
	}
}

func (ps *peerSet) list() []*peer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]*peer, 0, len(ps.peers))
	for _, p := range ps.peers {
		out = append(out, p)
	}
	return out
}

// count returns the number of peers known.
func (ps *peerSet) count() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.peers)
}

// close stops every sender.
func (ps *peerSet) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for id, p := range ps.peers {
		p.stop()
		delete(ps.peers, id)
	}
}

// run is a peer's sender: it keeps one connection and runs the jobs in
// order, dialling again after a failure.
func (ps *peerSet) run(ctx context.Context, p *peer) {
	var c *rpcclient.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	var lastWarn, downUntil time.Time
	warn := func(msg string, err error) {
		if time.Since(lastWarn) > 10*time.Second {
			ps.log.Warn(msg, "peer", p.url, "err", err)
			lastWarn = time.Now()
		}
	}
	for {
		var job peerJob
		select {
		case <-ctx.Done():
			return
		case job = <-p.jobs:
		}
		if c == nil {
			var err error
			if time.Now().Before(downUntil) {
				err = fmt.Errorf("peer %s unreachable a moment ago", p.url)
			} else if c, err = ps.dial(ctx, p); err != nil {
				c = nil
				downUntil = time.Now().Add(peerBackoff) // jobs meanwhile fail fast
				warn("peer unreachable", err)
			}
			if err != nil {
				if job.done != nil {
					job.done <- err
				}
				continue
			}
		}
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := job.run(jctx, c)
		cancel()
		if job.done != nil {
			job.done <- err
		}
		var rerr *rpcclient.Error
		if err != nil && !errors.As(err, &rerr) {
			c.Close() // a transport failure: dial again
			c = nil
		}
		if err != nil {
			warn("peer call failed", err)
		}
	}
}

// dial connects to a peer's trusted RPC: its quote must show this build and
// name the account the registry lists at that URL.
func (ps *peerSet) dial(ctx context.Context, p *peer) (*rpcclient.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return rpcclient.Dial(dctx, p.url, rpcclient.Options{
		Verifiers: ps.verifiers,
		Check: func(r *attestation.Report) error {
			if r.MrEnclave != ps.mrenclave {
				return fmt.Errorf("peer runs mrenclave %s, not ours", r.MrEnclave)
			}
			if h := ratls.Holder(r); h != p.id {
				return fmt.Errorf("peer's quote names account %s, the registry lists %s at %s", h, p.id, p.url)
			}
			return nil
		},
	})
}

// send queues a call for p without waiting; a full queue drops it.
func (ps *peerSet) send(p *peer, run func(context.Context, *rpcclient.Client) error) {
	select {
	case p.jobs <- peerJob{run: run}:
	default:
		ps.log.Debug("peer queue full; dropped", "peer", p.url)
	}
}

// do runs a call on p's connection and waits for its result.
func (ps *peerSet) do(ctx context.Context, p *peer, run func(context.Context, *rpcclient.Client) error) error {
	done := make(chan error, 1)
	select {
	case p.jobs <- peerJob{run: run, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(peerAnswerTimeout):
		// The peer's sender stopped (it left the registry) with the call
		// still queued, or the calls before it are slow.
		return fmt.Errorf("peer %s: no answer within %s", p.url, peerAnswerTimeout)
	}
}

// peerAnswerTimeout bounds a waiting call on a peer, queue time included
// (each call itself is bounded to 10 s).
const peerAnswerTimeout = 30 * time.Second

// broadcast sends a block to every peer.
func (ps *peerSet) broadcast(raw []byte) {
	for _, p := range ps.refresh(context.Background()) {
		ps.send(p, func(ctx context.Context, c *rpcclient.Client) error { return c.ImportBlock(ctx, raw) })
	}
}

// forward sends a sealed batch of operations to every peer
// (sidechain_forwardOperations with one batch; the method takes up to
// rpc.MaxForwardedOperations).
func (ps *peerSet) forward(sealed []byte) {
	h := "0x" + hex.EncodeToString(sealed)
	for _, p := range ps.refresh(context.Background()) {
		ps.send(p, func(ctx context.Context, c *rpcclient.Client) error {
			return c.Call(ctx, "sidechain_forwardOperations", []any{ps.shard.String(), []string{h}}, nil)
		})
	}
}

// heads asks every peer for its head: the highest number, and the peers.
func (ps *peerSet) heads(ctx context.Context) (uint64, []*peer) {
	var best uint64
	var out []*peer
	for _, p := range ps.refresh(ctx) {
		var h rpc.Header
		err := ps.do(ctx, p, func(ctx context.Context, c *rpcclient.Client) error {
			var err error
			h, err = c.Header(ctx, ps.shard)
			return err
		})
		if err != nil {
			continue
		}
		out = append(out, p)
		best = max(best, h.Number)
	}
	return best, out
}

// str asks a peer for a string (author_getMuRaUrl, author_getUntrustedUrl).
func (ps *peerSet) str(ctx context.Context, p *peer, method string) (string, error) {
	var s string
	err := ps.do(ctx, p, func(ctx context.Context, c *rpcclient.Client) error {
		var err error
		s, err = c.String(ctx, method)
		return err
	})
	return s, err
}

// fetch gets blocks from..to (or fewer: the server caps its answers) from
// p's untrusted port.
func (ps *peerSet) fetch(ctx context.Context, p *peer, from, to uint64) ([][]byte, error) {
	p.mu.Lock()
	url := p.untrusted
	p.mu.Unlock()
	if url == "" {
		var err error
		if url, err = ps.str(ctx, p, "author_getUntrustedUrl"); err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.untrusted = url
		p.mu.Unlock()
	}
	return fetchBlocks(ctx, url, ps.shard, from, to, ps.fetchMaxBytes)
}

// dialMuRa opens a TCP connection to a peer's MU-RA port, asked of the peer
// over its attested RPC.
func (ps *peerSet) dialMuRa(ctx context.Context, p *peer) (net.Conn, error) {
	addr, err := ps.str(ctx, p, "author_getMuRaUrl")
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.DialContext(dctx, "tcp", strings.TrimPrefix(addr, "tcp://"))
}
