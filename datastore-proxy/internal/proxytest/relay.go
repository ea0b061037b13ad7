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
// It can also hold the clients' bytes back and let them on a step at a
// time (Hold, Step), and turn away each connection the moment it is made,
// counting them (Reject): a server that is up but fails every connection.
type Relay struct {
	Addr   string // host:port the relay listens on
	target string

	mu    sync.Mutex
	moved *sync.Cond // on mu: a hold or a step changed, or a cut
	lis   net.Listener
	conns map[net.Conn]bool
	// holding holds the clients' bytes back; step counts Steps, and held
	// the clients' reads held since the last one.
	holding   bool
	step      int64
	held      int
	rejecting bool // Reject: each new connection closed at once
	rejected  int  // connections turned away so
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
	r.moved = sync.NewCond(&r.mu)
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
	r.closeConnsLocked()
}

func (r *Relay) closeConnsLocked() {
	for c := range r.conns {
		c.Close()
		delete(r.conns, c)
	}
	r.holding = false
	r.moved.Broadcast()
}

// Hold keeps what clients send from the server from now on, until Step
// passes it on or a cut ends its connection: their requests wait
// unanswered.
func (r *Relay) Hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holding, r.held = true, 0
}

// Step passes on what clients sent while held, and holds what they send
// after.
func (r *Relay) Step() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.step++
	r.held = 0
	r.moved.Broadcast()
}

// Held is how many reads of clients' bytes are held since the last Step
// (or Hold).
func (r *Relay) Held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

// Reject closes every connection through the relay, ending a Hold, and
// from now on accepts each new one only to close it at once; rejected
// tells how many it turned away.
func (r *Relay) Reject() (rejected func() int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejecting = true
	r.closeConnsLocked()
	return func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.rejected
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
			if r.reject(in) {
				continue
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

// Admit ends Reject: new connections are relayed again.
func (r *Relay) Admit() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejecting = false
}

// reject closes in, and counts it, while the relay rejects.
func (r *Relay) reject(in net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rejecting {
		r.rejected++
		in.Close()
	}
	return r.rejecting
}

// hold waits, while the relay holds clients' bytes, for the next Step or
// the end of the hold; false: the connection was cut meanwhile.
func (r *Relay) hold(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.holding {
		return true
	}
	r.held++
	for at := r.step; r.holding && r.step == at && r.conns[c]; {
		r.moved.Wait()
	}
	return r.conns[c]
}

// track records a relayed pair, unless the relay was cut meanwhile.
func (r *Relay) track(lis net.Listener, in, out net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lis != lis || r.rejecting { // cut, or turned away, meanwhile
		if r.lis == lis {
			r.rejected++
		}
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
		if !answers && n > 0 && !r.hold(src) {
			break
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
