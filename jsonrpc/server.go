package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Limits bound what a server holds: its connections, and for each the
// messages in flight, their size, the time a write may take and how long
// it may sit idle. Every bound keeps one client from pinning memory or
// goroutines that others need; none of them ends the server.
type Limits struct {
	// MaxConnections bounds the open websocket connections. An upgrade
	// beyond it is refused before the handshake with HTTP 503 Service
	// Unavailable and counted (ConnStats.Refused).
	MaxConnections int
	// MaxInFlight bounds the messages (a request, a notification or a whole
	// batch) one connection has being handled or answered at once. While
	// all are taken the connection is not read: the client's writes back
	// up through TCP (backpressure) instead of queueing in the server.
	MaxInFlight int
	// MaxMessageBytes bounds one message read. A larger one closes the
	// connection with websocket close code 1009 (message too big); the
	// server and its other connections go on.
	MaxMessageBytes int64
	// MaxBatch bounds the elements of a batch; a larger batch is answered
	// with one Invalid Request error.
	MaxBatch int
	// WriteTimeout bounds every write (an answer or a notification). A
	// write that does not finish in time, because the client does not read
	// what it is sent, closes the connection.
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that has sent no request and had no
	// answer for this long, has nothing in flight and waits for nothing
	// (see Waiter). It is checked at least every IdleTimeout, so such a
	// connection ends between one and two IdleTimeouts after it went quiet.
	// 0 keeps idle connections open.
	IdleTimeout time.Duration
}

// DefaultLimits returns limits for a server of thousands of clients: 10,000
// connections of up to 64 messages in flight, messages up to 4 MiB, batches
// up to 1,000 requests, 30 s per write and 10 min idle.
func DefaultLimits() Limits {
	return Limits{
		MaxConnections: 10_000, MaxInFlight: 64, MaxMessageBytes: 4 << 20, MaxBatch: 1000,
		WriteTimeout: 30 * time.Second, IdleTimeout: 10 * time.Minute,
	}
}

// Validate checks the limits.
func (l Limits) Validate() error {
	switch {
	case l.MaxConnections < 1:
		return fmt.Errorf("jsonrpc: max connections %d, want at least 1", l.MaxConnections)
	case l.MaxInFlight < 1:
		return fmt.Errorf("jsonrpc: max in flight %d, want at least 1", l.MaxInFlight)
	case l.MaxMessageBytes < 1<<10:
		return fmt.Errorf("jsonrpc: max message bytes %d, want at least 1 KiB", l.MaxMessageBytes)
	case l.MaxBatch < 1:
		return fmt.Errorf("jsonrpc: max batch %d, want at least 1", l.MaxBatch)
	case l.WriteTimeout <= 0:
		return fmt.Errorf("jsonrpc: write timeout %s, want a positive one", l.WriteTimeout)
	case l.IdleTimeout < 0:
		return fmt.Errorf("jsonrpc: negative idle timeout %s", l.IdleTimeout)
	}
	return nil
}

// ConnStats counts a server's connections; the fields are safe for
// concurrent use, for metrics to read.
type ConnStats struct {
	// Open is the connections open now.
	Open atomic.Int64
	// Refused counts upgrades refused at Limits.MaxConnections.
	Refused atomic.Int64
	// ClosedIdle counts connections closed at Limits.IdleTimeout.
	ClosedIdle atomic.Int64
	// ClosedWrite counts connections closed because a write failed or
	// timed out (Limits.WriteTimeout): a client that does not read, or one
	// that is gone.
	ClosedWrite atomic.Int64
	// ClosedTooLarge counts connections closed for a message above
	// Limits.MaxMessageBytes.
	ClosedTooLarge atomic.Int64
}

// Handler answers the requests of one connection. Handle may be called
// concurrently, up to Limits.MaxInFlight times. It returns the result,
// encoded with encoding/json unless it is a json.RawMessage, or an error: an
// *Error is sent as it is, any other as CodeInternalError. For a
// notification the outcome is dropped.
type Handler interface {
	Handle(ctx context.Context, req *Request) (any, error)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, req *Request) (any, error)

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, req *Request) (any, error) { return f(ctx, req) }

// Waiter is implemented by a Handler whose connection may wait for
// something beyond its requests, such as a subscription's notifications:
// while Waiting reports true the connection is not idle. Waiting must not
// block.
type Waiter interface {
	Waiting() bool
}

// Server serves JSON-RPC 2.0 over websockets: it is the http.Handler of the
// upgrade requests. Each connection gets its own Handler.
type Server struct {
	limits     Limits
	stats      *ConnStats
	log        *slog.Logger
	newHandler func(*Conn) Handler
	upgrader   websocket.Upgrader

	mu     sync.Mutex
	conns  map[*Conn]struct{}
	closed bool
}

// NewServer returns a server within limits (which must Validate) that
// counts its connections in stats (nil: its own), logs a handler's panic to
// log (nil: nowhere) and gives each connection the Handler newHandler
// returns.
func NewServer(limits Limits, stats *ConnStats, log *slog.Logger, newHandler func(*Conn) Handler) *Server {
	if stats == nil {
		stats = &ConnStats{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		limits: limits, stats: stats, log: log, newHandler: newHandler, conns: map[*Conn]struct{}{},
		// Small per-connection buffers, write buffers pooled between
		// writes: thousands of mostly idle clients must not pin 128 KiB
		// each.
		upgrader: websocket.Upgrader{ReadBufferSize: 4 << 10, WriteBufferSize: 4 << 10, WriteBufferPool: &sync.Pool{},
			CheckOrigin: func(*http.Request) bool { return true }},
	}
}

// Stats returns the server's connection counts.
func (s *Server) Stats() *ConnStats { return s.stats }

// ServeHTTP upgrades r to a websocket and serves it until it closes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.admit() {
		w.Header().Set("Connection", "close") // the refused client holds no socket either
		w.Header().Set("Retry-After", "5")
		http.Error(w, fmt.Sprintf("too many connections: this server holds at most %d; try again later", s.limits.MaxConnections),
			http.StatusServiceUnavailable)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil { // the upgrader answered with an HTTP error
		s.stats.Open.Add(-1)
		return
	}
	c := newConn(r.Context(), s, ws)
	c.h = s.newHandler(c)
	if !s.track(c) {
		c.Close()
		return
	}
	c.serve()
}

// admit takes a connection slot, or counts a refusal.
func (s *Server) admit() bool {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || s.stats.Open.Add(1) > int64(s.limits.MaxConnections) {
		if !closed {
			s.stats.Open.Add(-1)
		}
		s.stats.Refused.Add(1)
		return false
	}
	return true
}

func (s *Server) track(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// forget releases a closed connection's slot.
func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.stats.Open.Add(-1)
}

// Close closes every connection, with websocket close code 1001 (going
// away); later upgrades are refused. The http.Server that hands over the
// requests is the caller's to close.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns { // at once: a close frame may wait up to a second behind a blocked write
		wg.Go(func() { c.closeWith(websocket.CloseGoingAway, "server closing") })
	}
	wg.Wait()
}

// Conn is one websocket connection of a Server.
type Conn struct {
	s      *Server
	ws     *websocket.Conn
	h      Handler
	ctx    context.Context
	cancel context.CancelFunc
	// slots holds a token per message in flight (Limits.MaxInFlight).
	slots chan struct{}
	// last is when a request was last read or answered (Unix nanoseconds).
	last atomic.Int64

	imu  sync.Mutex
	idle *time.Timer // checks idleness (nil: Limits.IdleTimeout is 0)

	wmu  sync.Mutex // one writer at a time
	werr error      // the first write error; later writes return it

	closeOnce sync.Once
}

func newConn(parent context.Context, s *Server, ws *websocket.Conn) *Conn {
	ctx, cancel := context.WithCancel(parent)
	c := &Conn{s: s, ws: ws, ctx: ctx, cancel: cancel, slots: make(chan struct{}, s.limits.MaxInFlight)}
	ws.SetReadLimit(s.limits.MaxMessageBytes)
	c.last.Store(time.Now().UnixNano())
	return c
}

// Write sends one message, already encoded (such as a notification),
// between the connection's other writes, within Limits.WriteTimeout. A
// failed write closes the connection, and every later one fails.
func (c *Conn) Write(msg []byte) error { return c.WriteBatch([][]byte{msg}) }

// WriteBatch sends msgs, already encoded, in order and without another
// write between them, within Limits.WriteTimeout: Write of each, but on a
// connection accepted through CorkListener with one system call for all
// (up to 64 KiB at a time). A failed write closes the connection, and every
// later one fails.
func (c *Conn) WriteBatch(msgs [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if c.ctx.Err() != nil {
		c.werr = errors.New("jsonrpc: write: connection closed")
		return c.werr
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.s.limits.WriteTimeout))
	var cc *corkConn
	if len(msgs) > 1 {
		if cc = corkOf(c.ws.NetConn()); cc != nil {
			cc.cork()
		}
	}
	var err error
	for _, m := range msgs {
		if err = c.ws.WriteMessage(websocket.TextMessage, m); err != nil {
			break
		}
	}
	if cc != nil {
		if uerr := cc.uncork(); err == nil {
			err = uerr
		}
	}
	if err != nil {
		c.werr = fmt.Errorf("jsonrpc: write: %w", err)
		if c.ctx.Err() == nil {
			c.s.stats.ClosedWrite.Add(1)
		}
		c.Close()
		return c.werr
	}
	return nil
}

// Close closes the connection; its handlers' context ends.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.imu.Lock()
		if c.idle != nil {
			c.idle.Stop()
		}
		c.imu.Unlock()
		_ = c.ws.Close()
		c.s.forget(c)
	})
}

// closeWith sends a close frame with code and reason, then closes.
func (c *Conn) closeWith(code int, reason string) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	c.Close()
}

// serve reads messages until the connection fails or closes, handing each
// to its own goroutine once a slot is free.
func (c *Conn) serve() {
	defer c.Close()
	if d := c.s.limits.IdleTimeout; d > 0 {
		c.imu.Lock()
		c.idle = time.AfterFunc(d, c.checkIdle)
		c.imu.Unlock()
	}
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.s.stats.ClosedTooLarge.Add(1)
			}
			return
		}
		c.touch()
		select {
		case c.slots <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		go c.handle(typ, data)
	}
}

func (c *Conn) touch() { c.last.Store(time.Now().UnixNano()) }

// checkIdle closes the connection if it is idle, else checks again later.
func (c *Conn) checkIdle() {
	if c.ctx.Err() != nil {
		return
	}
	limit := c.s.limits.IdleTimeout
	quiet := time.Since(time.Unix(0, c.last.Load()))
	busy := len(c.slots) > 0
	if w, ok := c.h.(Waiter); ok && !busy {
		busy = w.Waiting()
	}
	next := limit
	switch {
	case !busy && quiet >= limit:
		c.s.stats.ClosedIdle.Add(1)
		c.closeWith(websocket.CloseNormalClosure, "idle for "+limit.String())
		return
	case !busy:
		next = limit - quiet
	}
	c.imu.Lock()
	defer c.imu.Unlock()
	if c.ctx.Err() == nil {
		c.idle.Reset(next)
	}
}

// handle answers one message and frees its slot.
func (c *Conn) handle(typ int, data []byte) {
	defer func() { <-c.slots }()
	var answer []byte
	var after []func()
	if typ == websocket.TextMessage {
		answer, after = c.answer(data)
	} else {
		answer = appendError(nil, null, Errorf(CodeInvalidRequest, "Invalid Request: messages must be text frames"))
	}
	if answer != nil {
		_ = c.Write(answer) // a failure closed the connection
	}
	for _, f := range after {
		f()
	}
	c.touch()
}

// answer handles a message, a request or a batch, and returns its answer
// (nil: none is due) and what is to run once it is written.
func (c *Conn) answer(data []byte) ([]byte, []func()) {
	if !json.Valid(data) {
		return appendError(nil, null, Errorf(CodeParseError, "Parse error: not valid JSON")), nil
	}
	data = bytes.TrimLeft(data, " \t\r\n")
	if data[0] != '[' {
		return c.one(data)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil { // valid JSON: cannot fail
		return appendError(nil, null, Errorf(CodeParseError, "Parse error: %v", err)), nil
	}
	switch {
	case len(elems) == 0:
		return appendError(nil, null, Errorf(CodeInvalidRequest, "Invalid Request: an empty batch")), nil
	case len(elems) > c.s.limits.MaxBatch:
		return appendError(nil, null, Errorf(CodeInvalidRequest, "Invalid Request: a batch of %d requests; at most %d",
			len(elems), c.s.limits.MaxBatch)), nil
	}
	out := []byte{'['}
	var after []func()
	for _, e := range elems {
		resp, a := c.one(e)
		after = append(after, a...)
		if resp == nil {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, resp...)
	}
	if len(out) == 1 { // notifications only: no answer at all
		return nil, after
	}
	return append(out, ']'), after
}

// one handles one request object and returns its response (nil for a
// notification) and its after-reply functions.
func (c *Conn) one(raw []byte) ([]byte, []func()) {
	req, errID, perr := parseRequest(raw)
	if perr != nil {
		return appendError(nil, errID, perr), nil
	}
	res, err := c.call(req)
	if req.Notification() {
		return nil, req.afterReply
	}
	if err != nil {
		var je *Error
		if !errors.As(err, &je) {
			je = &Error{Code: CodeInternalError, Message: err.Error()}
		}
		return appendError(nil, req.ID, je), req.afterReply
	}
	enc, ok := res.(json.RawMessage)
	if !ok || enc == nil {
		if enc, err = json.Marshal(res); err != nil {
			return appendError(nil, req.ID, Errorf(CodeInternalError, "Internal error: result does not encode: %v", err)), req.afterReply
		}
	}
	return appendResult(nil, req.ID, enc), req.afterReply
}

// call runs the handler; a panic is an internal error, and the server
// goes on.
func (c *Conn) call(req *Request) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("json-rpc handler panicked", "method", req.Method, "panic", p)
			res, err = nil, Errorf(CodeInternalError, "Internal error")
		}
	}()
	return c.h.Handle(c.ctx, req)
}
