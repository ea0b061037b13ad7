package server_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"kplex.dev/cli/ports"
	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/embedetcd"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// With pings (--datastore-keepalive-time), an etcd that stops answering
// while its host still acknowledges holds a call only until a ping goes
// unanswered: the call fails as unavailable rather than wait for its own
// deadline, and once etcd answers again the proxy serves again. (A host
// that acknowledges nothing any more is left at TCP_USER_TIMEOUT, pings
// or not: usertimeout_test.go.)
func TestASilentEtcdIsLeftAndFoundAgain(t *testing.T) {
	p, err := ports.Free(2)
	if err != nil {
		t.Fatal(err)
	}
	url, stop, err := embedetcd.StartOn(t.TempDir(), nil, p[0], p[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	f := startFreezer(t, strings.TrimPrefix(url, "http://"))
	// 10 s is the least gRPC pings after.
	px := proxytest.Start(t, backend.Config{Kind: "etcd", DSN: "http://" + f.addr(), KeepaliveTime: 10 * time.Second, KeepaliveTimeout: 2 * time.Second})
	c := px.Client(t, "alpha")
	ctx := context.Background()
	if err := create(ctx, c, "/before", "v"); err != nil {
		t.Fatal(err)
	}

	f.freeze()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	start := time.Now()
	_, err = c.Put(wctx, "/during", "v")
	took := time.Since(start)
	cancel()
	if err == nil {
		t.Fatal("a write succeeded while etcd answered nothing")
	}
	if errors.Is(err, context.DeadlineExceeded) || took > 30*time.Second {
		t.Fatalf("a write waited %s for a silent etcd: %v", took.Round(time.Second), err)
	}
	t.Logf("a write while etcd is silent failed after %s: %v", took.Round(100*time.Millisecond), err)

	f.thaw()
	waitServed(t, c, "/before", "after etcd answered again")
}

// freezer passes TCP connections on to target; frozen, it stops reading
// from either side of every connection, old and new, and closes none, as a
// lost host looks from afar (the kernel still takes what fits in its
// buffers).
type freezer struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	thawed chan struct{} // nil while not frozen; closed when thawed
	conns  []net.Conn
	closed bool
}

func startFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		f.mu.Lock()
		f.closed = true
		for _, c := range f.conns {
			c.Close()
		}
		if f.thawed != nil {
			close(f.thawed)
			f.thawed = nil
		}
		f.mu.Unlock()
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			f.mu.Lock()
			if f.closed {
				f.mu.Unlock()
				in.Close()
				out.Close()
				return
			}
			f.conns = append(f.conns, in, out)
			f.mu.Unlock()
			wg.Go(func() { f.pump(out, in) })
			wg.Go(func() { f.pump(in, out) })
		}
	})
	return f
}

func (f *freezer) addr() string { return f.ln.Addr().String() }

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.thawed == nil {
		f.thawed = make(chan struct{})
	}
}

func (f *freezer) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.thawed != nil {
		close(f.thawed)
		f.thawed = nil
	}
}

// wait returns once the freezer is not frozen.
func (f *freezer) wait() {
	f.mu.Lock()
	thawed := f.thawed
	f.mu.Unlock()
	if thawed != nil {
		<-thawed
	}
}

// pump copies src to dst, never while frozen, until either closes.
func (f *freezer) pump(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		f.wait()
		n, err := src.Read(buf)
		if n > 0 {
			f.wait() // read just before a freeze: held until the thaw
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF, or closed
		}
	}
}
