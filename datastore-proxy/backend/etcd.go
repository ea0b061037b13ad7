package backend

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"kplex.dev/datastore-proxy/etcdbackend"
)

// openEtcd connects to the etcd cluster named by c.DSN (comma-separated
// URLs) and starts the etcd backend.
func openEtcd(ctx context.Context, wg *sync.WaitGroup, c Config) (server.Backend, string, error) {
	if c.DSN == "" {
		return nil, "", fmt.Errorf("etcd backend: --datastore-endpoint must list the cluster's URLs, e.g. https://127.0.0.1:2379")
	}
	cfg := clientv3.Config{
		Endpoints:   strings.Split(c.DSN, ","),
		DialTimeout: 5 * time.Second,
		// Without pings, a member that stops answering without closing
		// the connection (a host lost, a partition) held every tenant's
		// calls and watches until TCP gave up, a quarter of an hour later
		// for a connection with writes in flight.
		DialKeepAliveTime:    cmp.Or(c.KeepaliveTime, 30*time.Second),
		DialKeepAliveTimeout: cmp.Or(c.KeepaliveTimeout, 10*time.Second),
		Logger:               zap.NewNop(),
		// Fixed flow-control windows: no bandwidth-probing pings, which
		// etcd would read and answer (as on the proxy's own server).
		DialOptions: []grpc.DialOption{grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(4 << 20)},
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
