// Package rpcclient is a client of a validateer's trusted JSON-RPC: a
// websocket over TLS whose certificate must carry an attestation of the
// expected enclave (RA-TLS). The CLI and peer validateers use it.
//
// Its JSON-RPC 2.0 client is written here (conn.go, message.go) rather
// than taken from github.com/sourcegraph/jsonrpc2, which it used before,
// because a load generator receives about three watch notifications per
// operation, tens of thousands a second, and that library decodes each
// several times: gorilla's ReadJSON makes a json.Decoder per message,
// jsonrpc2's anyMessage.UnmarshalJSON checks and probes it and then decodes
// it again (Request.UnmarshalJSON, into a map, re-encoding the params), and
// the handler decoded the params once more. A CPU profile of
// `integritee-cli trusted benchmark` put 66% of its CPU in
// jsonrpc2.(*Conn).readMessages. Here one goroutine per connection reads
// each message into a reused buffer and decodes it once: the server's own
// notification and result bytes without reflection, anything else with
// encoding/json into an envelope of raw members (decodeMessage). Decoding
// and delivering one notification to its watch took 10-17 µs and 67-91
// allocations with jsonrpc2 (its Conn over an in-memory stream that decodes
// as ReadJSON does) and takes 80-150 ns and none here; over a loopback
// websocket, with the server's writes in the same process, a notification
// cost 16 µs and 75 allocations and costs 5 µs and 1
// (BenchmarkDecodeNotification, BenchmarkNotifications).
package rpcclient

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	ws "github.com/gorilla/websocket"

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
	wc  *ws.Conn
	wmu sync.Mutex // gorilla allows one writer at a time

	mu      sync.Mutex
	seq     uint64                 // the next call's id
	pending map[uint64]chan answer // the calls awaiting their answer, by id
	watch   map[string]chan trustedrpc.Status
	early   map[string][]trustedrpc.Status // notifications that beat their call's answer
	gone    bool                           // the connection is closed
	cause   error                          // why, once gone
	report  *attestation.Report
}

// ErrNoCheck is returned when neither Check nor Insecure is given.
var ErrNoCheck = errors.New("rpcclient: no attestation check given (use Insecure to skip)")

// errClosed is the error of calls on a client that has been closed.
var errClosed = errors.New("rpcclient: connection closed")

// Dial connects to url (wss://host:port).
func Dial(ctx context.Context, url string, o Options) (*Client, error) {
	c := &Client{
		pending: map[uint64]chan answer{},
		watch:   map[string]chan trustedrpc.Status{},
		early:   map[string][]trustedrpc.Status{},
	}
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
	c.wc = wc
	go c.readLoop()
	return c, nil
}

// Report returns the server's verified attestation (nil with Insecure).
func (c *Client) Report() *attestation.Report { return c.report }

// Close closes the connection: calls in flight fail and watches end
// without a final status. Closing a closed or lost connection is an error.
func (c *Client) Close() error {
	if !c.end(errClosed) {
		return errClosed
	}
	return nil
}

// deliverLocked hands s to a watch's channel, and closes the channel if s
// is final; the caller then removes the watch.
func (c *Client) deliverLocked(ch chan trustedrpc.Status, s trustedrpc.Status) (final bool) {
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
		close(ch)
		return true
	}
	return false
}

// Error is a JSON-RPC error answer.
type Error struct {
	Code    int64
	Message string
	// Name is the enclave's error name (e.g. "stf.StaleNonce"), if any.
	Name string
}

func (e *Error) Error() string { return e.Message }

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
	// Status is its status once pooled, trustedrpc.Ready or
	// trustedrpc.Future; the watch receives the statuses after it.
	Status string
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
		if out[i].Hash, out[i].Status, out[i].Err = r.Hash, r.Status, batchErr(r); out[i].Err == nil {
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
		out[i].Hash, out[i].Status, out[i].Err = r.Hash, r.Status, batchErr(r)
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
	return newError(r.Error.Code, r.Error.Message, r.Error.Data)
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
	early := c.early[h]
	delete(c.early, h)
	for _, s := range early {
		if c.deliverLocked(ch, s) {
			return ch
		}
	}
	c.watch[h] = ch
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
