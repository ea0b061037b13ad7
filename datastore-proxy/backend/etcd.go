package backend

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"kplex.dev/datastore-proxy/etcdbackend"
)

// openEtcd connects to the etcd cluster named by c.DSN (comma-separated
// URLs) and starts the etcd backend; c has Open's defaults.
func openEtcd(ctx context.Context, wg *sync.WaitGroup, c Config) (server.Backend, string, error) {
	if c.DSN == "" {
		return nil, "", fmt.Errorf("etcd backend: --datastore-endpoint must list the cluster's URLs, e.g. https://127.0.0.1:2379")
	}
	cfg := clientv3.Config{
		Endpoints:   strings.Split(c.DSN, ","),
		DialTimeout: 5 * time.Second,
		// Pings after KeepaliveTime without a byte from etcd (0: none)
		// find a member that stopped answering while its host still
		// acknowledges, which TCP_USER_TIMEOUT does not.
		DialKeepAliveTime:    c.KeepaliveTime,
		DialKeepAliveTimeout: c.KeepaliveTimeout,
		Logger:               zap.NewNop(),
		DialOptions: []grpc.DialOption{
			// Fixed flow-control windows: no bandwidth-probing pings, which
			// etcd would read and answer (as on the proxy's own server).
			grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(4 << 20),
			// A member lost without closing its connections (a host gone,
			// a partition) held every tenant's calls and watches until TCP
			// gave up, a quarter of an hour later for a connection with
			// writes in flight; now for KeepaliveTimeout at most.
			grpc.WithContextDialer(userTimeoutDialer(c.KeepaliveTimeout)),
		},
	}
	if c.CAFile != "" || c.CertFile != "" {
		info := transport.TLSInfo{TrustedCAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile}
		tlsCfg, err := info.ClientConfig()
		if err != nil {
			return nil, "", fmt.Errorf("etcd backend TLS: %w", err)
		}
		cfg.TLS = tlsCfg
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("etcd backend: %w", err)
	}
	context.AfterFunc(ctx, func() { _ = cli.Close() })
	b := etcdbackend.New(cli, wg, c.CompactInterval, c.CompactMinRetain, c.Registerer)
	if err := b.Start(ctx); err != nil {
		_ = cli.Close()
		return nil, "", fmt.Errorf("etcd backend at %s: %w", c.DSN, err)
	}
	return b, "etcd", nil
}

// userTimeoutDialer dials etcd with TCP_USER_TIMEOUT set to timeout
// (setUserTimeout). Addresses that are not host:port are Unix sockets.
func userTimeoutDialer(timeout time.Duration) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			var d net.Dialer
			return d.DialContext(ctx, "unix", strings.TrimPrefix(strings.TrimPrefix(addr, "unix://"), "unix:"))
		}
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return setUserTimeout(rc, timeout.Milliseconds())
		}}
		return d.DialContext(ctx, "tcp", addr)
	}
}

// setUserTimeout sets a TCP socket's TCP_USER_TIMEOUT to ms: a connection
// whose data stays unacknowledged that long (its peer's host gone, or cut
// off) is closed, and so is an idle one whose keepalive probes go
// unanswered that long.
func setUserTimeout(rc syscall.RawConn, ms int64) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(ms))
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set TCP_USER_TIMEOUT: %w", serr)
	}
	return nil
}
