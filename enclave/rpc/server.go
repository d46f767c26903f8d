// Package rpc is the enclave's trusted JSON-RPC 2.0 server: direct
// invocation, getters, the shielding key and sidechain block import, over a
// websocket whose TLS ends inside the enclave with its RA-TLS certificate.
// The host only hands it a TCP listener; it never sees plaintext.
package rpc

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/sourcegraph/jsonrpc2"

	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// The wire types are the public API's (package api/trustedrpc).
type (
	Status = trustedrpc.Status
	Header = trustedrpc.Header
	Update = trustedrpc.Update
)

// Status kinds, bounds and names (package api/trustedrpc).
const (
	Submitted              = trustedrpc.Submitted
	Ready                  = trustedrpc.Ready
	Future                 = trustedrpc.Future
	InSidechainBlock       = trustedrpc.InSidechainBlock
	Invalid                = trustedrpc.Invalid
	Dropped                = trustedrpc.Dropped
	Retracted              = trustedrpc.Retracted
	Finalized              = trustedrpc.Finalized
	MaxMessageBytes        = trustedrpc.MaxMessageBytes
	MaxForwardedOperations = trustedrpc.MaxForwardedOperations
	WatchNotification      = trustedrpc.WatchNotification
)

// Methods lists the methods served, for rpc_methods.
var Methods = trustedrpc.Methods

// Backend is the enclave as the RPC server sees it.
type Backend interface {
	// Submit decrypts and checks an encrypted trusted operation and puts it
	// in the pool. If watch is set, the channel receives its statuses,
	// ending with a final one.
	Submit(ctx context.Context, shard sidechain.ShardID, ciphertext []byte, watch bool) (sidechain.Hash, <-chan Status, error)
	// Pending lists the pooled operations of a shard.
	Pending(shard sidechain.ShardID) ([]sidechain.Hash, error)
	// ExecuteGetter runs a signed getter (plaintext: the channel is the
	// attested TLS connection) and returns its answer.
	ExecuteGetter(ctx context.Context, shard sidechain.ShardID, getter []byte) (string, error)
	// LatestHeader returns the shard's last sidechain block header.
	LatestHeader(shard sidechain.ShardID) (Header, error)
	// ImportBlock imports a peer's block (sidechain_importBlock).
	ImportBlock(ctx context.Context, raw []byte) error
	// SubmitForwarded pools an encrypted trusted operation a peer forwards
	// (sidechain_forwardOperations): checked like Submit, not forwarded
	// again.
	SubmitForwarded(ctx context.Context, shard sidechain.ShardID, ciphertext []byte) error
	ShieldingKey() []byte
	Fingerprint() attestation.MrEnclave
	Shard() sidechain.ShardID
	MuRaURL() string
	UntrustedURL() string
	// Health returns nil once the enclave serves its shard.
	Health() error
}

// Counters the server keeps; the host reads them for its metrics.
type Counters struct {
	Requests  atomic.Int64
	Submitted atomic.Int64
}

// Server serves the trusted RPC.
type Server struct {
	b        Backend
	log      *slog.Logger
	version  string
	counters *Counters
	upgrader ws.Upgrader
	http     *http.Server
}

// NewServer returns a server of b. counters may be nil.
func NewServer(b Backend, version string, log *slog.Logger, counters *Counters) *Server {
	if counters == nil {
		counters = &Counters{}
	}
	s := &Server{b: b, log: log, version: version, counters: counters,
		upgrader: ws.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10, CheckOrigin: func(*http.Request) bool { return true }}}
	s.http = &http.Server{Handler: http.HandlerFunc(s.serveWS), ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Serve accepts connections on l, ends TLS with cert and serves until
// Close. It returns http.ErrServerClosed after Close.
func (s *Server) Serve(l net.Listener, cert tls.Certificate) error {
	return s.ServeCertificates(l, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
}

// ServeCertificates is Serve with the certificate of each handshake from
// get, so that it can be renewed while the server runs (a quote ages).
func (s *Server) ServeCertificates(l net.Listener, get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) error {
	cfg := &tls.Config{GetCertificate: get, MinVersion: tls.VersionTLS13}
	return s.http.Serve(tls.NewListener(l, cfg))
}

// Close stops the server and closes its connections.
func (s *Server) Close() error { return s.http.Close() }

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn.SetReadLimit(MaxMessageBytes)
	ctx, cancel := context.WithCancel(r.Context())
	c := jsonrpc2.NewConn(ctx, &strictStream{conn: conn}, jsonrpc2.AsyncHandler(handler{s}),
		jsonrpc2.SetLogger(discardLogger{}))
	<-c.DisconnectNotify()
	cancel()
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

func invalidParams(format string, a ...any) *jsonrpc2.Error {
	return &jsonrpc2.Error{Code: CodeInvalidParams, Message: "Invalid params: " + fmt.Sprintf(format, a...)}
}

// appError maps an enclave error to a JSON-RPC error whose data names it.
func appError(err error) *jsonrpc2.Error {
	e := &jsonrpc2.Error{Code: CodeApplication, Message: err.Error()}
	if te := types.AsError(err); te != nil {
		e.SetError(map[string]any{"module": te.Module, "name": te.Name, "code": te.Code})
	}
	return e
}

// params decodes positional params into the pointers given.
func params(req *jsonrpc2.Request, want ...any) *jsonrpc2.Error {
	var raw []json.RawMessage
	if req.Params != nil {
		if err := json.Unmarshal(*req.Params, &raw); err != nil {
			return invalidParams("%s takes positional params (an array)", req.Method)
		}
	}
	if len(raw) != len(want) {
		return invalidParams("%s takes %d params, got %d", req.Method, len(want), len(raw))
	}
	for i, w := range want {
		if err := json.Unmarshal(raw[i], w); err != nil {
			return invalidParams("param %d: %v", i, err)
		}
	}
	return nil
}

func decodeHex(s string) ([]byte, error) {
	if !strings.HasPrefix(s, "0x") {
		return nil, errors.New("want 0x-prefixed hex")
	}
	return hex.DecodeString(s[2:])
}

// shardAndBytes reads the params [shard, "0x…"].
func shardAndBytes(req *jsonrpc2.Request) (sidechain.ShardID, []byte, *jsonrpc2.Error) {
	var shardS, hexS string
	if e := params(req, &shardS, &hexS); e != nil {
		return sidechain.ShardID{}, nil, e
	}
	shard, err := sidechain.ParseShardID(shardS)
	if err != nil {
		return shard, nil, invalidParams("shard: %v", err)
	}
	b, err := decodeHex(hexS)
	if err != nil {
		return shard, nil, invalidParams("payload: %v", err)
	}
	return shard, b, nil
}

// handler replies to each request and only then starts what must follow
// the reply, such as a watched operation's notifications.
type handler struct{ s *Server }

func (h handler) Handle(ctx context.Context, conn *jsonrpc2.Conn, req *jsonrpc2.Request) {
	h.s.counters.Requests.Add(1)
	if req.Notif {
		return // JSON-RPC 2.0: a notification gets no response
	}
	var after func()
	res, err := h.s.handle(ctx, conn, req, &after)
	if err != nil {
		var je *jsonrpc2.Error
		if !errors.As(err, &je) {
			je = &jsonrpc2.Error{Code: CodeInternal, Message: err.Error()}
		}
		_ = conn.ReplyWithError(ctx, req.ID, je)
		return
	}
	if err := conn.Reply(ctx, req.ID, res); err != nil {
		return
	}
	if after != nil {
		after()
	}
}

func (s *Server) handle(ctx context.Context, conn *jsonrpc2.Conn, req *jsonrpc2.Request, after *func()) (any, error) {
	noParams := func() *jsonrpc2.Error { return params(req) }
	switch req.Method {
	case "author_submitExtrinsic", "author_submitAndWatchExtrinsic":
		shard, ct, e := shardAndBytes(req)
		if e != nil {
			return nil, e
		}
		watch := req.Method == "author_submitAndWatchExtrinsic"
		s.counters.Submitted.Add(1)
		hash, ch, err := s.b.Submit(ctx, shard, ct, watch)
		if err != nil {
			return nil, appError(err)
		}
		if watch {
			*after = func() { go s.forward(conn, hash, ch) }
		}
		return hash.String(), nil
	case "author_pendingExtrinsics":
		var shardS string
		if e := params(req, &shardS); e != nil {
			return nil, e
		}
		shard, err := sidechain.ParseShardID(shardS)
		if err != nil {
			return nil, invalidParams("shard: %v", err)
		}
		hs, err := s.b.Pending(shard)
		if err != nil {
			return nil, appError(err)
		}
		out := make([]string, len(hs))
		for i, h := range hs {
			out[i] = h.String()
		}
		return out, nil
	case "state_executeGetter":
		shard, g, e := shardAndBytes(req)
		if e != nil {
			return nil, e
		}
		v, err := s.b.ExecuteGetter(ctx, shard, g)
		if err != nil {
			return nil, appError(err)
		}
		return v, nil
	case "chain_getHeader":
		var shardS string
		if e := params(req, &shardS); e != nil {
			return nil, e
		}
		shard, err := sidechain.ParseShardID(shardS)
		if err != nil {
			return nil, invalidParams("shard: %v", err)
		}
		h, err := s.b.LatestHeader(shard)
		if err != nil {
			return nil, appError(err)
		}
		return h, nil
	case "sidechain_forwardOperations":
		var shardS string
		var hexes []string
		if e := params(req, &shardS, &hexes); e != nil {
			return nil, e
		}
		shard, err := sidechain.ParseShardID(shardS)
		if err != nil {
			return nil, invalidParams("shard: %v", err)
		}
		if len(hexes) > MaxForwardedOperations {
			return nil, invalidParams("%d operations, at most %d", len(hexes), MaxForwardedOperations)
		}
		accepted := 0
		for _, h := range hexes {
			ct, err := decodeHex(h)
			if err != nil {
				return nil, invalidParams("operation: %v", err)
			}
			if s.b.SubmitForwarded(ctx, shard, ct) == nil {
				accepted++
			}
		}
		return accepted, nil
	case "sidechain_importBlock":
		var hexS string
		if e := params(req, &hexS); e != nil {
			return nil, e
		}
		raw, err := decodeHex(hexS)
		if err != nil {
			return nil, invalidParams("block: %v", err)
		}
		if err := s.b.ImportBlock(ctx, raw); err != nil {
			return nil, appError(err)
		}
		return nil, nil
	}
	// Methods without params.
	if e := noParams(); e != nil {
		if isKnown(req.Method) {
			return nil, e
		}
	}
	switch req.Method {
	case "author_getShieldingKey":
		return "0x" + hex.EncodeToString(s.b.ShieldingKey()), nil
	case "author_getFingerprint":
		return s.b.Fingerprint().String(), nil
	case "author_getShard":
		return s.b.Shard().String(), nil
	case "author_getMuRaUrl":
		return s.b.MuRaURL(), nil
	case "author_getUntrustedUrl":
		return s.b.UntrustedURL(), nil
	case "system_version":
		return s.version, nil
	case "system_health":
		if err := s.b.Health(); err != nil {
			return nil, appError(err)
		}
		return map[string]any{"isSyncing": false, "shouldHavePeers": false}, nil
	case "rpc_methods":
		return map[string]any{"methods": Methods}, nil
	}
	return nil, &jsonrpc2.Error{Code: CodeMethodNotFound, Message: "Method not found: " + req.Method}
}

func isKnown(m string) bool {
	for _, x := range Methods {
		if x == m {
			return true
		}
	}
	return false
}

// forward sends a watched operation's statuses until the final one.
// After the client is gone it keeps draining ch, so that the producer
// never blocks on it.
func (s *Server) forward(conn *jsonrpc2.Conn, hash sidechain.Hash, ch <-chan Status) {
	gone := false
	for st := range ch {
		if !gone {
			gone = conn.Notify(context.Background(), WatchNotification, Update{Subscription: hash.String(), Result: st}) != nil
		}
		if st.Final() {
			return
		}
	}
}
