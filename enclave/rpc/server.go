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

	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/jsonrpc"
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
	MaxBatchOperations     = trustedrpc.MaxBatchOperations
	WatchNotification      = trustedrpc.WatchNotification
)

// Methods lists the methods served, for rpc_methods.
var Methods = trustedrpc.Methods

// Watcher receives the statuses of the operations submitted with it. The
// enclave calls Status with its pool's lock held: it must not block.
type Watcher interface {
	Status(hash sidechain.Hash, s Status)
}

// Submission is one operation's outcome in SubmitOperations: its hash and
// its status once pooled (Ready or Future), or the error that refused it.
type Submission struct {
	Hash   sidechain.Hash
	Status Status
	Err    error
}

// Backend is the enclave as the RPC server sees it.
type Backend interface {
	// Submit decrypts and checks an encrypted trusted operation and puts it
	// in the pool. If w is not nil, it receives the operation's statuses,
	// ending with a final one.
	Submit(ctx context.Context, shard sidechain.ShardID, ciphertext []byte, w Watcher) (sidechain.Hash, error)
	// SubmitOperations checks plain signed operations (the channel is the
	// attested TLS connection, which ends inside the enclave, so they need
	// no shielding layer), their signatures as one batch, and pools those
	// that pass: result i is ops[i]'s. If w is not nil, it receives the
	// statuses of every pooled one.
	SubmitOperations(ctx context.Context, shard sidechain.ShardID, ops [][]byte, w Watcher) ([]Submission, error)
	// Pending lists the pooled operations of a shard.
	Pending(shard sidechain.ShardID) ([]sidechain.Hash, error)
	// ExecuteGetter runs a signed getter (plaintext: the channel is the
	// attested TLS connection) and returns its answer.
	ExecuteGetter(ctx context.Context, shard sidechain.ShardID, getter []byte) (string, error)
	// LatestHeader returns the shard's last sidechain block header.
	LatestHeader(shard sidechain.ShardID) (Header, error)
	// ImportBlock imports a peer's block (sidechain_importBlock).
	ImportBlock(ctx context.Context, raw []byte) error
	// SubmitForwarded pools the operations a peer of the shard forwards
	// (sidechain_forwardOperations): one batch sealed with the shard's key,
	// which only the shard's enclaves hold. It returns how many it pooled.
	SubmitForwarded(ctx context.Context, shard sidechain.ShardID, sealed []byte) (int, error)
	ShieldingKey() []byte
	Fingerprint() attestation.MrEnclave
	Shard() sidechain.ShardID
	MuRaURL() string
	UntrustedURL() string
	// Health returns nil once the enclave serves its shard.
	Health() error
}

// JSON-RPC 2.0 error codes (package jsonrpc).
const (
	CodeParseError     = jsonrpc.CodeParseError
	CodeInvalidRequest = jsonrpc.CodeInvalidRequest
	CodeMethodNotFound = jsonrpc.CodeMethodNotFound
	CodeInvalidParams  = jsonrpc.CodeInvalidParams
	CodeInternal       = jsonrpc.CodeInternalError
	// CodeApplication is the code of errors of the request's substance: a
	// ciphertext that does not decrypt, a bad signature, a stale nonce. The
	// error's data names it (e.g. "stf.StaleNonce").
	CodeApplication = jsonrpc.CodeServerError
)

// Counters the server keeps; the host reads them for its metrics.
type Counters struct {
	Requests  atomic.Int64
	Submitted atomic.Int64
	// Conns counts the connections: open, refused at the limit, closed
	// idle, slow or for an oversize message.
	Conns jsonrpc.ConnStats
}

// DefaultWatchExpiry is how long after its operation's InSidechainBlock a
// watch with no later status stops keeping its connection from being idle:
// the enclave ends such watches then (enclave.MaxWatchAfterBlock), without
// a status.
const DefaultWatchExpiry = 10 * time.Minute

// DefaultLimits are the trusted RPC's default bounds: jsonrpc's defaults
// with messages up to MaxMessageBytes.
func DefaultLimits() jsonrpc.Limits {
	l := jsonrpc.DefaultLimits()
	l.MaxMessageBytes = MaxMessageBytes
	return l
}

// Config configures a Server.
type Config struct {
	// Version is system_version's answer.
	Version string
	// Log receives the server's errors.
	Log *slog.Logger
	// Counters are the server's counts; nil: its own.
	Counters *Counters
	// Limits bound the connections and what each may hold.
	Limits jsonrpc.Limits
	// WatchExpiry: see DefaultWatchExpiry (zero: that).
	WatchExpiry time.Duration
}

// Server serves the trusted RPC.
type Server struct {
	b        Backend
	cfg      Config
	counters *Counters
	rpc      *jsonrpc.Server
	http     *http.Server
}

// NewServer returns a server of b within DefaultLimits. counters may be
// nil.
func NewServer(b Backend, version string, log *slog.Logger, counters *Counters) *Server {
	return New(b, Config{Version: version, Log: log, Counters: counters, Limits: DefaultLimits()})
}

// New returns a server of b configured by cfg, whose Limits must Validate.
func New(b Backend, cfg Config) *Server {
	if cfg.Counters == nil {
		cfg.Counters = &Counters{}
	}
	if cfg.WatchExpiry <= 0 {
		cfg.WatchExpiry = DefaultWatchExpiry
	}
	s := &Server{b: b, cfg: cfg, counters: cfg.Counters}
	s.rpc = jsonrpc.NewServer(cfg.Limits, &cfg.Counters.Conns, cfg.Log, s.newHandler)
	// IdleTimeout bounds a plain HTTP connection that never upgrades (an
	// upgraded one is the jsonrpc server's).
	s.http = &http.Server{Handler: s.rpc, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second}
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
	// Corked below TLS: a connection's queued notifications leave in one
	// system call (jsonrpc.Conn.WriteBatch).
	return s.http.Serve(tls.NewListener(jsonrpc.CorkListener(l), cfg))
}

// Close stops the server and closes its connections.
func (s *Server) Close() error {
	err := s.http.Close()
	s.rpc.Close()
	return err
}

func (s *Server) newHandler(c *jsonrpc.Conn) jsonrpc.Handler {
	h := &handler{s: s, n: newNotifier(c)}
	if s.cfg.Limits.IdleTimeout > 0 {
		h.watches = newOpenWatches(s.cfg.WatchExpiry)
	}
	return h
}

func invalidParams(format string, a ...any) *jsonrpc.Error {
	return &jsonrpc.Error{Code: CodeInvalidParams, Message: "Invalid params: " + fmt.Sprintf(format, a...)}
}

// appError maps an enclave error to a JSON-RPC error whose data names it.
func appError(err error) *jsonrpc.Error {
	e := &jsonrpc.Error{Code: CodeApplication, Message: err.Error()}
	if te := types.AsError(err); te != nil {
		e = e.WithData(map[string]any{"module": te.Module, "name": te.Name, "code": te.Code})
	}
	return e
}

// params decodes a request's params into the pointers given, positional
// (an array) or by name (an object with exactly the method's parameter
// names, paramNames).
func params(req *jsonrpc.Request, want ...any) *jsonrpc.Error {
	var raw []json.RawMessage
	switch {
	case len(req.Params) > 0 && req.Params[0] == '{':
		var named map[string]json.RawMessage
		if err := json.Unmarshal(req.Params, &named); err != nil {
			return invalidParams("%v", err)
		}
		names := paramNames(req.Method)
		if len(named) != len(want) || len(names) != len(want) {
			return invalidParams("%s takes %d params %q, got %d", req.Method, len(want), names, len(named))
		}
		for _, n := range names {
			v, ok := named[n]
			if !ok {
				return invalidParams("%s takes params %q: no %q", req.Method, names, n)
			}
			raw = append(raw, v)
		}
	case req.Params != nil:
		if err := json.Unmarshal(req.Params, &raw); err != nil {
			return invalidParams("%v", err)
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

// paramNames are a method's parameter names, in order, for params by name.
func paramNames(method string) []string {
	switch method {
	case "author_submitExtrinsic", "author_submitAndWatchExtrinsic":
		return []string{"shard", "extrinsic"}
	case "author_submitTrustedOperation", "author_submitAndWatchTrustedOperation":
		return []string{"shard", "operation"}
	case "author_submitTrustedOperations", "author_submitAndWatchTrustedOperations":
		return []string{"shard", "operations"}
	case "sidechain_forwardOperations":
		return []string{"shard", "batches"}
	case "state_executeGetter":
		return []string{"shard", "getter"}
	case "author_pendingExtrinsics", "chain_getHeader":
		return []string{"shard"}
	case "sidechain_importBlock":
		return []string{"block"}
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
func shardAndBytes(req *jsonrpc.Request) (sidechain.ShardID, []byte, *jsonrpc.Error) {
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

// shardAndList reads the params [shard, ["0x…", …]] of at most max
// entries (not yet hex-decoded: a bad entry is answered on its own).
func shardAndList(req *jsonrpc.Request, max int) (sidechain.ShardID, []string, *jsonrpc.Error) {
	var shardS string
	var hexes []string
	if e := params(req, &shardS, &hexes); e != nil {
		return sidechain.ShardID{}, nil, e
	}
	shard, err := sidechain.ParseShardID(shardS)
	if err != nil {
		return shard, nil, invalidParams("shard: %v", err)
	}
	if len(hexes) > max {
		return shard, nil, invalidParams("%d operations, at most %d", len(hexes), max)
	}
	return shard, hexes, nil
}

// handler serves one connection. It replies to each request and only then
// releases what must follow the reply, such as a watched operation's
// notifications.
type handler struct {
	s       *Server
	n       *notifier    // the connection's watch notifications
	watches *openWatches // the connection's open watches; nil: not tracked (no idle timeout)
}

// Handle implements jsonrpc.Handler.
func (h *handler) Handle(ctx context.Context, req *jsonrpc.Request) (any, error) {
	h.s.counters.Requests.Add(1)
	if req.Notification() {
		return nil, nil // never executed: a notification gets no answer, so no hash to watch or check
	}
	res, e := h.s.handle(ctx, h, req)
	if e != nil {
		return nil, e
	}
	return res, nil
}

// Waiting implements jsonrpc.Waiter: a connection with an open watch is not
// idle.
func (h *handler) Waiting() bool { return h.watches != nil && h.watches.any(time.Now()) }

// watch returns the Watcher of a request's operations; their statuses are
// released once the answer is written. quiet leaves out Submitted;
// answered also each operation's status at submission (requestWatch).
func (h *handler) watch(req *jsonrpc.Request, quiet, answered bool) Watcher {
	w := &requestWatch{n: h.n, quiet: quiet, answered: answered, open: h.watches}
	req.AfterReply(w.release)
	return w
}

// batchError is a refused element of a batch answer.
func batchError(err error) *trustedrpc.BatchError {
	je, ok := err.(*jsonrpc.Error)
	if !ok {
		je = appError(err)
	}
	return &trustedrpc.BatchError{Code: int64(je.Code), Message: je.Message, Data: je.Data}
}

func (s *Server) handle(ctx context.Context, h *handler, req *jsonrpc.Request) (any, *jsonrpc.Error) {
	noParams := func() *jsonrpc.Error { return params(req) }
	switch req.Method {
	case "author_submitExtrinsic", "author_submitAndWatchExtrinsic":
		shard, ct, e := shardAndBytes(req)
		if e != nil {
			return nil, e
		}
		var w Watcher
		if req.Method == "author_submitAndWatchExtrinsic" {
			w = h.watch(req, false, false)
		}
		s.counters.Submitted.Add(1)
		hash, err := s.b.Submit(ctx, shard, ct, w)
		if err != nil {
			return nil, appError(err)
		}
		return hash.String(), nil
	case "author_submitTrustedOperation", "author_submitAndWatchTrustedOperation":
		shard, op, e := shardAndBytes(req)
		if e != nil {
			return nil, e
		}
		var w Watcher
		if req.Method == "author_submitAndWatchTrustedOperation" {
			w = h.watch(req, true, false)
		}
		s.counters.Submitted.Add(1)
		res, err := s.b.SubmitOperations(ctx, shard, [][]byte{op}, w)
		if err != nil {
			return nil, appError(err)
		}
		if res[0].Err != nil {
			return nil, appError(res[0].Err)
		}
		return res[0].Hash.String(), nil
	case "author_submitTrustedOperations", "author_submitAndWatchTrustedOperations":
		shard, hexes, e := shardAndList(req, MaxBatchOperations)
		if e != nil {
			return nil, e
		}
		out := make([]trustedrpc.BatchResult, len(hexes))
		ops := make([][]byte, 0, len(hexes))
		idx := make([]int, 0, len(hexes))
		for i, x := range hexes {
			op, err := decodeHex(x)
			if err != nil {
				out[i].Error = batchError(invalidParams("operation %d: %v", i, err))
				continue
			}
			ops, idx = append(ops, op), append(idx, i)
		}
		var w Watcher
		if req.Method == "author_submitAndWatchTrustedOperations" {
			w = h.watch(req, true, true)
		}
		s.counters.Submitted.Add(int64(len(hexes)))
		res, err := s.b.SubmitOperations(ctx, shard, ops, w)
		if err != nil {
			return nil, appError(err)
		}
		for j, r := range res {
			if r.Err != nil {
				out[idx[j]].Error = batchError(r.Err)
			} else {
				out[idx[j]].Hash, out[idx[j]].Status = r.Hash.String(), r.Status.Kind
			}
		}
		return out, nil
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
		shard, hexes, e := shardAndList(req, MaxForwardedOperations)
		if e != nil {
			return nil, e
		}
		accepted := 0
		for _, h := range hexes {
			sealed, err := decodeHex(h)
			if err != nil {
				return nil, invalidParams("operation: %v", err)
			}
			n, err := s.b.SubmitForwarded(ctx, shard, sealed)
			if err != nil {
				return nil, appError(err)
			}
			accepted += n
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
		return s.cfg.Version, nil
	case "system_health":
		if err := s.b.Health(); err != nil {
			return nil, appError(err)
		}
		return map[string]any{"isSyncing": false, "shouldHavePeers": false}, nil
	case "rpc_methods":
		return map[string]any{"methods": Methods}, nil
	}
	return nil, &jsonrpc.Error{Code: CodeMethodNotFound, Message: "Method not found: " + req.Method}
}

func isKnown(m string) bool {
	for _, x := range Methods {
		if x == m {
			return true
		}
	}
	return false
}
