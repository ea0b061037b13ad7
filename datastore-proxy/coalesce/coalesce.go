// Package coalesce sends the TLS records of one write in one system call.
//
// Go's TLS writes every record (at most 16 KiB) to the connection with a
// write of its own, so the proxy sent a 100 KiB list to a tenant in seven
// system calls, and each woke the tenant's reader again. Server wraps TLS
// transport credentials so that, after the handshake, the records of each
// write to the connection (gRPC writes a buffer of frames at a time) are
// held and go out together. Reads, and writes TLS makes outside a write
// (alerts on close, answers to key updates), go as they did.
//
// Contract: the bytes on the wire and their order are exactly TLS's; a
// write returns once its records are written to the socket, or with the
// error of writing them, which every later write returns too. A write to a client that reads slowly holds its
// buffer until the socket takes it all, as TLS held its record before;
// Close ends such a write at once, as TLS's Close does.
package coalesce

import (
	"net"
	"sync"

	"google.golang.org/grpc/credentials"
)

// Buffers for held records come from a pool and go back after each
// write: a connection keeps none while idle, and a busy one does not
// allocate (and clear) a new buffer per write. A buffer grown past
// maxPooled by a larger write is left to the collector.
const (
	pooledSize = 160 << 10 // a 128 KiB write of gRPC's (app.go) and its records' overhead
	maxPooled  = 512 << 10
)

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, pooledSize); return &b }}

// Server returns credentials that handshake as inner and coalesce each
// write's records on the connections they serve.
func Server(inner credentials.TransportCredentials) credentials.TransportCredentials {
	return &creds{inner}
}

type creds struct {
	credentials.TransportCredentials
}

func (c *creds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	h := &holdConn{Conn: raw}
	conn, info, err := c.TransportCredentials.ServerHandshake(h)
	if err != nil {
		return nil, nil, err
	}
	return &flushConn{Conn: conn, h: h}, info, nil
}

func (c *creds) Clone() credentials.TransportCredentials {
	return &creds{c.TransportCredentials.Clone()}
}

// holdConn is the connection under TLS: while a write is held, what TLS
// writes is kept in buf.
type holdConn struct {
	net.Conn
	mu   sync.Mutex
	held int // writes of flushConn in progress
	buf  []byte
	// err is the first error writing to the socket. Every write after it
	// fails with it, as TLS's own writes do after one failed: held
	// records go to the socket after TLS's Write returned, so TLS does not
	// see that error, and went on with records that would reach the peer
	// behind a partial one.
	err error
}

func (c *holdConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held > 0 {
		if c.buf == nil {
			c.buf = (*buffers.Get().(*[]byte))[:0]
		}
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.writeLocked(p)
}

func (c *holdConn) writeLocked(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Write(p)
	c.err = err
	return n, err
}

func (c *holdConn) hold() {
	c.mu.Lock()
	c.held++
	c.mu.Unlock()
}

// release ends a held write and, when it was the last, writes what was
// kept.
func (c *holdConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held--
	if c.held > 0 || len(c.buf) == 0 {
		return nil
	}
	_, err := c.writeLocked(c.buf)
	if b := c.buf[:0]; cap(b) <= maxPooled {
		buffers.Put(&b)
	}
	c.buf = nil
	return err
}

// flushConn is the TLS connection: each write's records go out together.
type flushConn struct {
	net.Conn
	h *holdConn
}

func (c *flushConn) Write(p []byte) (int, error) {
	c.h.hold()
	n, err := c.Conn.Write(p)
	if ferr := c.h.release(); ferr != nil && err == nil {
		return 0, ferr
	}
	return n, err
}

// Close closes the connection as TLS's own Close does for a write under
// way: it closes the socket at once, which ends a write waiting on a
// client that does not read. TLS sees a write under way only inside its
// Write; a held write's records go to the socket after that has returned
// (release), so TLS took the connection for idle and sent its
// close_notify behind them, waiting on that write for up to the 5 s
// deadline it sets (each connection gRPC closed on a stop, in turn).
func (c *flushConn) Close() error {
	if c.h.mu.TryLock() {
		c.h.mu.Unlock()
		return c.Conn.Close()
	}
	c.h.Conn.Close() // a write under way: break it, as TLS would
	return c.Conn.Close()
}
