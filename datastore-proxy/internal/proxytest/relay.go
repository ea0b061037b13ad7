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
	// cutAt, when not 0, is how many bytes from the server a connection
	// passes on, counted from the arming (cutGen), before it is cut
	// (CutAnswerAfter); cuts counts those cut.
	cutAt, cutGen int64
	cuts          int
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

// CutAnswerAfter makes the relay cut, from now on, every connection once
// it has passed on n bytes from the server counted from now (a read cut
// short part way through a large answer; 0: no more cuts), and returns
// how to learn how many were cut.
func (r *Relay) CutAnswerAfter(n int64) (cuts func() int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cutAt = n
	r.cutGen++
	return func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.cuts
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
			go r.pipe(in, out, true)
			go r.pipe(out, in, false)
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

func (r *Relay) pipe(dst, src net.Conn, answers bool) {
	var passed, gen int64
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if answers && n > 0 {
			r.mu.Lock()
			if gen != r.cutGen {
				gen, passed = r.cutGen, 0
			}
			if r.cutAt > 0 {
				passed += int64(n)
				if passed > r.cutAt {
					n -= int(passed - r.cutAt)
					err = io.ErrUnexpectedEOF
					r.cuts++
				}
			}
			r.mu.Unlock()
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	r.mu.Lock()
	delete(r.conns, dst)
	delete(r.conns, src)
	r.mu.Unlock()
}
