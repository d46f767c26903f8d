package rpcclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	ws "github.com/gorilla/websocket"

	"github.com/integritee-go/integritee/api/trustedrpc"
)

// answer is a call's answer: its result, or its error.
type answer struct {
	result []byte
	err    error
}

// request is a call as sent.
type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

// maxKeptBuffer bounds the read buffer kept between messages; a larger
// one, grown for a large message, is dropped after it.
const maxKeptBuffer = 1 << 20

// readLoop reads and dispatches the server's messages until the connection
// fails or is closed, then ends the client.
func (c *Client) readLoop() {
	buf := make([]byte, 0, 4096)
	for {
		_, r, err := c.wc.NextReader()
		if err == nil {
			buf, err = readAll(r, buf[:0])
		}
		if err != nil {
			c.end(fmt.Errorf("rpcclient: connection lost: %w", err))
			return
		}
		c.dispatch(buf)
		if cap(buf) > maxKeptBuffer {
			buf = make([]byte, 0, 4096)
		}
	}
}

// readAll appends what r reads until EOF to buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// dispatch handles one message; b is reused after it returns.
func (c *Client) dispatch(b []byte) {
	m := decodeMessage(b)
	switch m.kind {
	case msgUpdate:
		c.update(m.sub, m.status)
	case msgAnswer:
		c.mu.Lock()
		ch := c.pending[m.id]
		delete(c.pending, m.id)
		c.mu.Unlock()
		if ch == nil { // not ours, or its call has given up
			return
		}
		a := answer{err: m.err}
		if m.err == nil {
			a.result = bytes.Clone(m.result)
		}
		ch <- a
	}
}

// update hands a notification's status to its watch, or keeps it until
// the watch's call has its answer.
func (c *Client) update(sub []byte, s trustedrpc.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return
	}
	ch := c.watch[string(sub)]
	if ch == nil {
		if len(c.early) < 1024 {
			k := string(sub)
			c.early[k] = append(c.early[k], s)
		}
		return
	}
	if c.deliverLocked(ch, s) {
		delete(c.watch, string(sub))
	}
}

// end ends the connection, once, for cause: pending calls fail with it,
// every watch channel is closed without a final status, and later calls
// fail at once. It reports whether it was the first to end it.
func (c *Client) end(cause error) bool {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return false
	}
	c.gone, c.cause = true, cause
	for id, ch := range c.pending {
		delete(c.pending, id)
		ch <- answer{err: cause}
	}
	for sub, ch := range c.watch {
		delete(c.watch, sub)
		close(ch)
	}
	clear(c.early)
	c.mu.Unlock()
	c.wc.Close() //nolint:errcheck // the reader stops at its next read
	return true
}

// Call makes a call and decodes the result into out. It returns when the
// answer comes, ctx is done or the connection ends; an error answer is an
// *Error.
func (c *Client) Call(ctx context.Context, method string, params []any, out any) error {
	if params == nil {
		params = []any{}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ch := make(chan answer, 1)
	c.mu.Lock()
	if c.gone {
		err := c.cause
		c.mu.Unlock()
		return err
	}
	id := c.seq
	c.seq++
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.send(request{JSONRPC: "2.0", ID: id, Method: method, Params: params}); err != nil {
		c.forget(id)
		return err
	}
	select {
	case a := <-ch:
		if a.err != nil || out == nil {
			return a.err
		}
		return json.Unmarshal(a.result, out)
	case <-ctx.Done():
		c.forget(id)
		return ctx.Err()
	}
}

// forget removes a call that no longer waits for its answer.
func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// send writes a request. A failed write ends the connection: a websocket
// whose write failed is unusable.
func (c *Client) send(req request) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("rpcclient: %s: %w", req.Method, err)
	}
	c.wmu.Lock()
	err = c.wc.WriteMessage(ws.TextMessage, b)
	c.wmu.Unlock()
	if err == nil {
		return nil
	}
	c.end(fmt.Errorf("rpcclient: connection lost: %w", err))
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}
