package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
)

// relayHop (-relay) puts a relay where the proxy would be, in front of
// etcd direct: the proxied row of each pair becomes "relay, N clients",
// clients made as for the direct row (their own prefixes, etcd's
// certificates) whose connections go through the relay on the proxy's
// CPU. The relay does nothing but read bytes and write them on, both ways
// (TLS stays end to end between the client and etcd), so its row is what
// any process in the proxy's place costs on this machine: the extra hop
// between CPUs and the system calls of reading and writing, with no work
// of its own. The proxy's row against the direct row, and the
// relay's against the direct row, tell the hop's share of the proxy's
// cost from the proxy's own.
var relayHop bool

// serveRelay accepts TCP connections on loopback and copies each, both
// ways, to a connection of its own to target, until ctx ends.
func serveRelay(ctx context.Context, target string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer profileOnCommand()()
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() { <-ctx.Done(); _ = l.Close() }()
	announce(l.Addr().String())
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := relay(ctx, c, target); err != nil {
				fmt.Fprintf(os.Stderr, "relay %s: %v\n", c.RemoteAddr(), err)
			}
		}()
	}
}

// relay copies c to a new connection to target and back until both
// directions end (each end's close is passed on as a half-close) or ctx
// does; it closes both.
func relay(ctx context.Context, c net.Conn, target string) error {
	defer c.Close()
	var d net.Dialer
	t, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return err
	}
	defer t.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close(); _ = t.Close() })
	defer stop()
	errs := make(chan error, 2)
	pipe := func(dst, src net.Conn) {
		// read(2) and write(2) through a buffer, as a proxy that looks
		// at the bytes must, not splice(2), which io.Copy would use
		// between TCP sockets (and which the tables' system call counts
		// leave out).
		buf := make([]byte, 64<<10)
		_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
		_ = dst.(*net.TCPConn).CloseWrite()
		errs <- err
	}
	go pipe(t, c)
	go pipe(c, t)
	err = errors.Join(<-errs, <-errs)
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
