// Package rpcclient is a client of a validateer's trusted JSON-RPC: a
// websocket over TLS whose certificate must carry an attestation of the
// expected enclave (RA-TLS). The CLI and peer validateers use it.
package rpcclient

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/sourcegraph/jsonrpc2"
	jsonrpcws "github.com/sourcegraph/jsonrpc2/websocket"

	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/sidechain"
)

// Options say how to check the server's attestation.
type Options struct {
	// Verifiers check the quote in the server's certificate.
	Verifiers map[string]attestation.Verifier
	// Check judges the verified report, e.g. that its mrenclave is the one
	// registered on the parentchain. Nil with Insecure unset refuses all.
	Check func(*attestation.Report) error
	// Insecure skips all certificate checks (development only).
	Insecure bool
	// DialTimeout bounds the connection set-up (default 10 s).
	DialTimeout time.Duration
}

// Client is one connection to a validateer.
type Client struct {
	conn   *jsonrpc2.Conn
	mu     sync.Mutex
	watch  map[string]chan trustedrpc.Status
	early  map[string][]trustedrpc.Status // notifications that beat their call's answer
	gone   bool                           // the connection is closed
	report *attestation.Report
}

// ErrNoCheck is returned when neither Check nor Insecure is given.
var ErrNoCheck = errors.New("rpcclient: no attestation check given (use Insecure to skip)")

// Dial connects to url (wss://host:port).
func Dial(ctx context.Context, url string, o Options) (*Client, error) {
	c := &Client{watch: map[string]chan trustedrpc.Status{}, early: map[string][]trustedrpc.Status{}}
	var tlsCfg *tls.Config
	switch {
	case o.Insecure:
		tlsCfg = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13} //nolint:gosec // the user asked for it
	case o.Check == nil:
		return nil, ErrNoCheck
	default:
		tlsCfg = ratls.ClientConfig(o.Verifiers, func(r *attestation.Report) error {
			if err := o.Check(r); err != nil {
				return err
			}
			c.report = r
			return nil
		})
	}
	timeout := o.DialTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	d := ws.Dialer{TLSClientConfig: tlsCfg, HandshakeTimeout: timeout, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	wc, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("rpcclient: dial %s: %w", url, err)
	}
	wc.SetReadLimit(trustedrpc.MaxMessageBytes)
	c.conn = jsonrpc2.NewConn(context.Background(), jsonrpcws.NewObjectStream(wc), jsonrpc2.HandlerWithError(c.handle))
	go c.endWatchesOnDisconnect()
	return c, nil
}

// endWatchesOnDisconnect closes every watch channel, without a final
// status, once the connection is gone, so that watchers learn at once.
func (c *Client) endWatchesOnDisconnect() {
	<-c.conn.DisconnectNotify()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gone = true
	for sub, ch := range c.watch {
		delete(c.watch, sub)
		close(ch)
	}
}

// Report returns the server's verified attestation (nil with Insecure).
func (c *Client) Report() *attestation.Report { return c.report }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) handle(_ context.Context, _ *jsonrpc2.Conn, req *jsonrpc2.Request) (any, error) {
	if req.Method != trustedrpc.WatchNotification || req.Params == nil {
		return nil, nil
	}
	var u trustedrpc.Update
	if err := json.Unmarshal(*req.Params, &u); err != nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.watch[u.Subscription]
	if ch == nil {
		if len(c.early) < 1024 {
			c.early[u.Subscription] = append(c.early[u.Subscription], u.Result)
		}
		return nil, nil
	}
	c.deliverLocked(u.Subscription, ch, u.Result)
	return nil, nil
}

func (c *Client) deliverLocked(sub string, ch chan trustedrpc.Status, s trustedrpc.Status) {
	select {
	case ch <- s:
	default:
		// A watcher that does not read loses intermediate statuses, never
		// the final one: make room for it.
		if s.Final() {
			select {
			case <-ch:
			default:
			}
			ch <- s
		}
	}
	if s.Final() {
		delete(c.watch, sub)
		close(ch)
	}
}

// Error is a JSON-RPC error answer.
type Error struct {
	Code    int64
	Message string
	// Name is the enclave's error name (e.g. "stf.StaleNonce"), if any.
	Name string
}

func (e *Error) Error() string { return e.Message }

// Call makes a call and decodes the result into out.
func (c *Client) Call(ctx context.Context, method string, params []any, out any) error {
	if params == nil {
		params = []any{}
	}
	err := c.conn.Call(ctx, method, params, out)
	var je *jsonrpc2.Error
	if errors.As(err, &je) {
		e := &Error{Code: je.Code, Message: je.Message}
		if je.Data != nil {
			var d struct{ Module, Name string }
			if json.Unmarshal(*je.Data, &d) == nil && d.Module != "" {
				e.Name = d.Module + "." + d.Name
			}
		}
		return e
	}
	return err
}

func hexOf(b []byte) string { return "0x" + hex.EncodeToString(b) }

// Submit sends an encrypted trusted operation and returns its hash.
func (c *Client) Submit(ctx context.Context, shard sidechain.ShardID, ciphertext []byte) (string, error) {
	var h string
	err := c.Call(ctx, "author_submitExtrinsic", []any{shard.String(), hexOf(ciphertext)}, &h)
	return h, err
}

// SubmitAndWatch sends an encrypted trusted operation and returns its hash
// and a channel of its statuses, closed after the final one.
func (c *Client) SubmitAndWatch(ctx context.Context, shard sidechain.ShardID, ciphertext []byte) (string, <-chan trustedrpc.Status, error) {
	var h string
	if err := c.Call(ctx, "author_submitAndWatchExtrinsic", []any{shard.String(), hexOf(ciphertext)}, &h); err != nil {
		return "", nil, err
	}
	return h, c.watchOf(h), nil
}

// SubmitOperation sends a plain signed operation (an encoded
// trusted.Operation) over the attested channel and returns its hash.
func (c *Client) SubmitOperation(ctx context.Context, shard sidechain.ShardID, op []byte) (string, error) {
	var h string
	err := c.Call(ctx, "author_submitTrustedOperation", []any{shard.String(), hexOf(op)}, &h)
	return h, err
}

// SubmitAndWatchOperation is SubmitOperation with a channel of the
// operation's statuses, closed after the final one.
func (c *Client) SubmitAndWatchOperation(ctx context.Context, shard sidechain.ShardID, op []byte) (string, <-chan trustedrpc.Status, error) {
	var h string
	if err := c.Call(ctx, "author_submitAndWatchTrustedOperation", []any{shard.String(), hexOf(op)}, &h); err != nil {
		return "", nil, err
	}
	return h, c.watchOf(h), nil
}

// Submitted is one operation's outcome in SubmitAndWatchOperations.
type Submitted struct {
	// Hash is the operation's hash (its subscription), if it was pooled.
	Hash string
	// Watch receives its statuses and is closed after the final one (nil
	// when Err is set).
	Watch <-chan trustedrpc.Status
	// Err is why the validateer refused it.
	Err error
}

// SubmitAndWatchOperations sends up to trustedrpc.MaxBatchOperations plain
// signed operations in one request (author_submitAndWatchTrustedOperations)
// and returns each one's outcome, in order; the validateer verifies their
// signatures as one batch. The error is the whole request's.
func (c *Client) SubmitAndWatchOperations(ctx context.Context, shard sidechain.ShardID, ops [][]byte) ([]Submitted, error) {
	res, err := c.submitOperations(ctx, "author_submitAndWatchTrustedOperations", shard, ops)
	if err != nil {
		return nil, err
	}
	out := make([]Submitted, len(res))
	for i, r := range res {
		if out[i].Hash, out[i].Err = r.Hash, batchErr(r); out[i].Err == nil {
			out[i].Watch = c.watchOf(r.Hash)
		}
	}
	return out, nil
}

// SubmitOperations is SubmitAndWatchOperations without watches
// (author_submitTrustedOperations): each operation's hash, or why it was
// refused.
func (c *Client) SubmitOperations(ctx context.Context, shard sidechain.ShardID, ops [][]byte) ([]Submitted, error) {
	res, err := c.submitOperations(ctx, "author_submitTrustedOperations", shard, ops)
	if err != nil {
		return nil, err
	}
	out := make([]Submitted, len(res))
	for i, r := range res {
		out[i].Hash, out[i].Err = r.Hash, batchErr(r)
	}
	return out, nil
}

func (c *Client) submitOperations(ctx context.Context, method string, shard sidechain.ShardID, ops [][]byte) ([]trustedrpc.BatchResult, error) {
	hexes := make([]string, len(ops))
	for i, op := range ops {
		hexes[i] = hexOf(op)
	}
	var res []trustedrpc.BatchResult
	if err := c.Call(ctx, method, []any{shard.String(), hexes}, &res); err != nil {
		return nil, err
	}
	if len(res) != len(ops) {
		return nil, fmt.Errorf("rpcclient: %s answered %d results for %d operations", method, len(res), len(ops))
	}
	return res, nil
}

// batchErr returns a batch element's error, nil if it was accepted.
func batchErr(r trustedrpc.BatchResult) error {
	if r.Error == nil {
		if r.Hash == "" {
			return errors.New("rpcclient: a batch element with neither hash nor error")
		}
		return nil
	}
	e := &Error{Code: r.Error.Code, Message: r.Error.Message}
	var d struct{ Module, Name string }
	if len(r.Error.Data) > 0 && json.Unmarshal(r.Error.Data, &d) == nil && d.Module != "" {
		e.Name = d.Module + "." + d.Name
	}
	return e
}

// watchOf registers the channel of subscription h's statuses and hands it
// the notifications that beat the answer.
func (c *Client) watchOf(h string) <-chan trustedrpc.Status {
	ch := make(chan trustedrpc.Status, 16)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		close(ch)
		return ch
	}
	c.watch[h] = ch
	early := c.early[h]
	delete(c.early, h)
	for _, s := range early {
		if _, open := c.watch[h]; open {
			c.deliverLocked(h, ch, s)
		}
	}
	return ch
}

// ExecuteGetter runs a signed getter (encoded stf.Operation) and returns
// its answer.
func (c *Client) ExecuteGetter(ctx context.Context, shard sidechain.ShardID, getter []byte) (string, error) {
	var v string
	err := c.Call(ctx, "state_executeGetter", []any{shard.String(), hexOf(getter)}, &v)
	return v, err
}

// ShieldingKey returns the shard's HPKE public key.
func (c *Client) ShieldingKey(ctx context.Context) ([]byte, error) {
	var s string
	if err := c.Call(ctx, "author_getShieldingKey", nil, &s); err != nil {
		return nil, err
	}
	return hex.DecodeString(strings.TrimPrefix(s, "0x"))
}

// String calls a method that answers a string (author_getFingerprint,
// author_getShard, system_version, ...).
func (c *Client) String(ctx context.Context, method string) (string, error) {
	var s string
	err := c.Call(ctx, method, nil, &s)
	return s, err
}

// Header returns the shard's latest sidechain header.
func (c *Client) Header(ctx context.Context, shard sidechain.ShardID) (trustedrpc.Header, error) {
	var h trustedrpc.Header
	err := c.Call(ctx, "chain_getHeader", []any{shard.String()}, &h)
	return h, err
}

// ImportBlock sends a block to a peer.
func (c *Client) ImportBlock(ctx context.Context, raw []byte) error {
	return c.Call(ctx, "sidechain_importBlock", []any{hexOf(raw)}, nil)
}
