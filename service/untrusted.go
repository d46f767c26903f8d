package service

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/sourcegraph/jsonrpc2"
	jsonrpcws "github.com/sourcegraph/jsonrpc2/websocket"

	"github.com/integritee-go/integritee/service/blockstore"
	"github.com/integritee-go/integritee/sidechain"
)

// Bounds of one sidechain_fetchBlocksFromPeer answer: at most
// MaxFetchBlocks blocks and, beyond the first, MaxFetchBytes of them; the
// fetcher asks again from the next number.
const (
	MaxFetchBlocks = 500
	MaxFetchBytes  = 8 << 20
)

// untrustedServer serves the block store to peers on the untrusted port
// (sidechain_fetchBlocksFromPeer). Blocks are signed and their state diffs
// encrypted, so this needs no TLS: fetchers verify what they get.
type untrustedServer struct {
	blocks *blockstore.Store
	log    *slog.Logger
	http   *http.Server
	up     ws.Upgrader
}

func newUntrustedServer(blocks *blockstore.Store, log *slog.Logger) *untrustedServer {
	u := &untrustedServer{blocks: blocks, log: log}
	u.http = &http.Server{Handler: http.HandlerFunc(u.serveWS), ReadHeaderTimeout: 10 * time.Second}
	return u
}

func (u *untrustedServer) Serve(l net.Listener) error { return u.http.Serve(l) }
func (u *untrustedServer) Close() error               { return u.http.Close() }

func (u *untrustedServer) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := u.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn.SetReadLimit(1 << 20)
	c := jsonrpc2.NewConn(r.Context(), jsonrpcws.NewObjectStream(conn), jsonrpc2.HandlerWithError(u.handle))
	<-c.DisconnectNotify()
}

// FetchParams are sidechain_fetchBlocksFromPeer's params: [shard, from, to].
func (u *untrustedServer) handle(_ context.Context, _ *jsonrpc2.Conn, req *jsonrpc2.Request) (any, error) {
	if req.Method != "sidechain_fetchBlocksFromPeer" {
		return nil, &jsonrpc2.Error{Code: jsonrpc2.CodeMethodNotFound, Message: "Method not found: " + req.Method}
	}
	var p []json.RawMessage
	if req.Params == nil || json.Unmarshal(*req.Params, &p) != nil || len(p) != 3 {
		return nil, &jsonrpc2.Error{Code: jsonrpc2.CodeInvalidParams, Message: "Invalid params: want [shard, from, to]"}
	}
	var shardS string
	var from, to uint64
	if json.Unmarshal(p[0], &shardS) != nil || json.Unmarshal(p[1], &from) != nil || json.Unmarshal(p[2], &to) != nil || to < from {
		return nil, &jsonrpc2.Error{Code: jsonrpc2.CodeInvalidParams, Message: "Invalid params: want [shard (base58), from, to] with from <= to"}
	}
	shard, err := sidechain.ParseShardID(shardS)
	if err != nil {
		return nil, &jsonrpc2.Error{Code: jsonrpc2.CodeInvalidParams, Message: "Invalid params: " + err.Error()}
	}
	raws, err := u.blocks.Range(shard, from, to, MaxFetchBlocks, MaxFetchBytes)
	if err != nil {
		return nil, &jsonrpc2.Error{Code: jsonrpc2.CodeInternalError, Message: err.Error()}
	}
	out := make([]string, len(raws))
	for i, r := range raws {
		out[i] = "0x" + hex.EncodeToString(r)
	}
	return out, nil
}
