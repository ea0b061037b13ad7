package backend

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/dialer"
	"golang.org/x/sys/unix"
)

// The etcd backend's connections bound how long data may stay
// unacknowledged: the socket's TCP_USER_TIMEOUT is the timeout asked for.
func TestEtcdConnectionsHaveAUserTimeout(t *testing.T) {
	addr := acceptAndClose(t, "tcp", "127.0.0.1:0")
	c, err := userTimeoutDialer(7*time.Second)(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := userTimeoutOf(t, c); got != 7000 {
		t.Fatalf("TCP_USER_TIMEOUT = %d ms, want 7000", got)
	}
}

// kine's dialer, which its PostgreSQL and MySQL drivers dial through,
// sets the timeout asked for last on TCP connections, and still dials
// Unix sockets (a database on the same host), which have no such option.
func TestSQLConnectionsHaveAUserTimeout(t *testing.T) {
	setSQLUserTimeout(9 * time.Second)
	setSQLUserTimeout(7 * time.Second)
	ctx := context.Background()
	c, err := dialer.CachingDialer.DialContext(ctx, "tcp", acceptAndClose(t, "tcp", "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := userTimeoutOf(t, c); got != 7000 {
		t.Fatalf("TCP_USER_TIMEOUT = %d ms, want 7000", got)
	}
	u, err := dialer.CachingDialer.DialContext(ctx, "unix", acceptAndClose(t, "unix", filepath.Join(t.TempDir(), "db.sock")))
	if err != nil {
		t.Fatalf("dial a Unix socket through kine's dialer: %v", err)
	}
	u.Close()
}

// acceptAndClose listens on network and address, closes every connection
// it accepts, and returns the address it listens on.
func acceptAndClose(t *testing.T, network, address string) string {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func userTimeoutOf(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return got
}
