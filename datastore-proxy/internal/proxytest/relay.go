package proxytest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Relay passes TCP connections on loopback to a server, and can cut them
// and refuse new ones (Cut) and take them again on the same address
// (Restore): a store that goes away and comes back, for the proxy's view.
type Relay struct {
	Addr   string // host:port the relay listens on
	target string

	mu    sync.Mutex
	lis   net.Listener
	conns map[net.Conn]bool
}

// NewRelay starts a relay to target until the test ends.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Addr: lis.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	r.serve(lis)
	t.Cleanup(r.Cut)
	return r
}

// Cut closes the relay's listener and every connection through it.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lis != nil {
		r.lis.Close()
		r.lis = nil
	}
	for c := range r.conns {
		c.Close()
		delete(r.conns, c)
	}
}

// Restore listens again on the relay's address.
func (r *Relay) Restore(t testing.TB) {
	t.Helper()
	lis, err := net.Listen("tcp", r.Addr)
	if err != nil {
		t.Fatalf("relay: listen again on %s: %v", r.Addr, err)
	}
	r.serve(lis)
}

func (r *Relay) serve(lis net.Listener) {
	r.mu.Lock()
	r.lis = lis
	r.mu.Unlock()
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", r.target)
			if err != nil {
				in.Close()
				continue
			}
			if !r.track(lis, in, out) {
				continue
			}
			go r.pipe(in, out)
			go r.pipe(out, in)
		}
	}()
}

// track records a relayed pair, unless the relay was cut meanwhile.
func (r *Relay) track(lis net.Listener, in, out net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lis != lis {
		in.Close()
		out.Close()
		return false
	}
	r.conns[in], r.conns[out] = true, true
	return true
}

func (r *Relay) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	r.mu.Lock()
	delete(r.conns, dst)
	delete(r.conns, src)
	r.mu.Unlock()
}
