package jsonrpc

import (
	"net"
	"sync"
)

// CorkListener wraps l so that the connections it accepts can hold back
// their writes while a Conn writes several messages (WriteBatch), then send
// them with one system call. Put it below TLS: tls.NewListener(CorkListener(l), cfg).
//
// Hand-written because the websocket library writes and flushes every
// message, and TLS every record, straight to the connection: at thousands
// of watch notifications a second, one write system call per notification
// was about a tenth of a validateer's CPU (docs/benchmarks.md).
func CorkListener(l net.Listener) net.Listener { return corkListener{l} }

type corkListener struct{ net.Listener }

func (l corkListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &corkConn{Conn: c}, nil
}

// corkFlushBytes is how much a corked connection holds before it writes
// anyway.
const corkFlushBytes = 64 << 10

// corkConn is a connection whose writes can be held back (cork) and then
// sent together (uncork). Reads, deadlines and Close are the connection's.
type corkConn struct {
	net.Conn

	mu     sync.Mutex
	corked bool
	buf    []byte
	err    error // a held-back write's error, reported by uncork
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was held back and returns the first error of the
// corked writes.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	c.flushLocked()
	err := c.err
	c.err = nil
	if cap(c.buf) > corkFlushBytes*2 {
		c.buf = nil
	}
	return err
}

func (c *corkConn) flushLocked() {
	if len(c.buf) > 0 && c.err == nil {
		_, c.err = c.Conn.Write(c.buf)
	}
	c.buf = c.buf[:0]
}

// Write implements net.Conn. Corked, it holds b back (and reports success:
// the error, if any, comes from uncork, and later writes fail with it).
func (c *corkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.Conn.Write(b)
	}
	c.buf = append(c.buf, b...)
	if len(c.buf) >= corkFlushBytes {
		c.flushLocked()
	}
	return len(b), nil
}

// corkOf returns the corkConn below conn (directly, or below a TLS
// connection), or nil.
func corkOf(conn net.Conn) *corkConn {
	for range 3 {
		switch c := conn.(type) {
		case *corkConn:
			return c
		case interface{ NetConn() net.Conn }:
			conn = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}
