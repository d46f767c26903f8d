package service

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/integritee-go/integritee/jsonrpc"
	"github.com/integritee-go/integritee/service/blockstore"
	"github.com/integritee-go/integritee/sidechain"
)

// Bounds of one sidechain_fetchBlocksFromPeer answer: at most
// MaxFetchBlocks blocks and, beyond the first, MaxFetchBytes of them by
// default (--fetch-max-bytes); the fetcher asks again from the next number.
const (
	MaxFetchBlocks = 500
	MaxFetchBytes  = 8 << 20
)

// Bounds of the untrusted port beyond the configured ones: a request is
// small ([shard, from, to]), and one answer of up to twice --fetch-max-bytes
// at a time per connection (one message in flight, no batch of more than
// one request) keeps its memory at about --untrusted-max-connections times
// that.
const (
	untrustedMaxMessageBytes = 1 << 20
	untrustedMaxInFlight     = 1
	untrustedMaxBatch        = 1
)

// untrustedServer serves the block store to peers on the untrusted port
// (sidechain_fetchBlocksFromPeer). Blocks are signed and their state diffs
// encrypted, so this needs no TLS: fetchers verify what they get.
type untrustedServer struct {
	blocks   *blockstore.Store
	maxBytes int
	rpc      *jsonrpc.Server
	http     *http.Server
}

// newUntrustedServer serves blocks within limits, answering at most
// maxBytes of blocks beyond the first; stats counts its connections.
func newUntrustedServer(blocks *blockstore.Store, log *slog.Logger, limits jsonrpc.Limits, maxBytes int, stats *jsonrpc.ConnStats) *untrustedServer {
	u := &untrustedServer{blocks: blocks, maxBytes: maxBytes}
	u.rpc = jsonrpc.NewServer(limits, stats, log, func(*jsonrpc.Conn) jsonrpc.Handler { return jsonrpc.HandlerFunc(u.handle) })
	u.http = &http.Server{Handler: u.rpc, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second}
	return u
}

func (u *untrustedServer) Serve(l net.Listener) error { return u.http.Serve(l) }

func (u *untrustedServer) Close() error {
	err := u.http.Close()
	u.rpc.Close()
	return err
}

// handle serves sidechain_fetchBlocksFromPeer, whose params are
// [shard, from, to].
func (u *untrustedServer) handle(_ context.Context, req *jsonrpc.Request) (any, error) {
	if req.Method != "sidechain_fetchBlocksFromPeer" {
		return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "Method not found: %s", req.Method)
	}
	if req.Notification() {
		return nil, nil // no answer is read: do not read the store for it
	}
	var p []json.RawMessage
	if req.Params == nil || json.Unmarshal(req.Params, &p) != nil || len(p) != 3 {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid params: want [shard, from, to]")
	}
	var shardS string
	var from, to uint64
	if json.Unmarshal(p[0], &shardS) != nil || json.Unmarshal(p[1], &from) != nil || json.Unmarshal(p[2], &to) != nil || to < from {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid params: want [shard (base58), from, to] with from <= to")
	}
	shard, err := sidechain.ParseShardID(shardS)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid params: %v", err)
	}
	raws, err := u.blocks.Range(shard, from, to, MaxFetchBlocks, u.maxBytes)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "Internal error: block store: %v", err)
	}
	out := make([]string, len(raws))
	for i, r := range raws {
		out[i] = "0x" + hex.EncodeToString(r)
	}
	return out, nil
}
