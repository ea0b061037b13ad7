package backend_test

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// The connections kine's PostgreSQL and MySQL drivers open carry the
// TCP_USER_TIMEOUT the backend was opened with (sqldial.go): read back
// from this process's own sockets to the database server, so that a kine
// that stopped dialing through the dialer the proxy sets would fail here.
func TestSQLBackendConnectionsHaveAUserTimeout(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		addr := map[string]string{"postgres": proxytest.PostgresAddr, "mysql": proxytest.MySQLAddr}[c.Kind]
		if addr == "" {
			t.Skip("no SQL server connection: sqlite is a file")
		}
		c.KeepaliveTimeout = 6 * time.Second // not the 7 s of TestSQLConnectionsHaveAUserTimeout
		b := proxytest.OpenBackend(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := b.Create(ctx, "/t/a", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		timeouts := userTimeoutsTo(t, addr)
		if len(timeouts) == 0 {
			t.Fatalf("no connection of this process to %s", addr)
		}
		with := 0
		for _, ms := range timeouts {
			if ms == 0 {
				t.Fatalf("a connection to %s without TCP_USER_TIMEOUT (all: %v ms)", addr, timeouts)
			}
			if ms == 6000 {
				with++
			}
		}
		if with == 0 {
			t.Fatalf("no connection to %s with TCP_USER_TIMEOUT 6000 ms (all: %v ms)", addr, timeouts)
		}
	})
}

// userTimeoutsTo reads the TCP_USER_TIMEOUT (ms) of each of this process's
// TCP connections to addr.
func userTimeoutsTo(t *testing.T, addr string) []int {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP(host).To4()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := unix.Getpeername(fd)
		in4, ok := sa.(*unix.SockaddrInet4)
		if err != nil || !ok || strconv.Itoa(in4.Port) != port || !net.IP(in4.Addr[:]).Equal(ip) {
			continue
		}
		if ms, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT); err == nil {
			out = append(out, ms)
		}
	}
	return out
}
