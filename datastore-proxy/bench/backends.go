package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	kineserver "github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"kplex.dev/cli/ports"
	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/embedetcd"
)

// env is one backend with a direct endpoint and a proxy in front of an
// equivalent store.
type env struct {
	directName     string
	directEndpoint string
	proxyEndpoint  string
	pki            *benchPKI
	stops          []func()
}

func (e *env) stop() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
}

// clients returns one client per tenant at the proxy, or (tenants == 0)
// one client of the direct endpoint.
func (e *env) clients(tenants int) ([]*clientv3.Client, func(), error) {
	endpoint, names := e.directEndpoint, []string{"direct"}
	if tenants > 0 {
		endpoint, names = e.proxyEndpoint, nil
		for i := range tenants {
			names = append(names, fmt.Sprintf("bench-%d-%d", tenants, i))
		}
	}
	var out []*clientv3.Client
	closeAll := func() {
		for _, c := range out {
			_ = c.Close()
		}
	}
	for _, n := range names {
		tlsCfg, err := e.pki.clientTLS(n)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + endpoint}, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		out = append(out, c)
	}
	return out, closeAll, nil
}

func startBackend(ctx context.Context, work, kind string, p *benchPKI) (*env, error) {
	e := &env{pki: p}
	dir := filepath.Join(work, kind)
	switch kind {
	case "etcd":
		url, stop, err := startEtcd(dir, p)
		if err != nil {
			return nil, err
		}
		e.stops = append(e.stops, stop)
		e.directName, e.directEndpoint = "etcd direct", url
		return e, e.startProxy(ctx, dir, backend.Config{Kind: "etcd", DSN: "https://" + url, CAFile: p.caFile, CertFile: p.serverCrt, KeyFile: p.serverKey})
	case "sqlite":
		e.directName = "kine direct (sqlite)"
		if err := e.startKine(ctx, backend.Config{Kind: "sqlite", DataDir: filepath.Join(dir, "direct")}); err != nil {
			return nil, err
		}
		return e, e.startProxy(ctx, dir, backend.Config{Kind: "sqlite", DataDir: filepath.Join(dir, "proxy")})
	case "postgres":
		e.directName = "kine direct (postgres)"
		dsn := func(db string) string { return "postgres://postgres@127.0.0.1:5432/" + db + "?sslmode=disable" }
		direct, proxied := fmt.Sprintf("kplex_bench_%d", rand.Uint32()), fmt.Sprintf("kplex_bench_%d", rand.Uint32())
		e.stops = append(e.stops, func() { dropPostgres(direct); dropPostgres(proxied) })
		if err := e.startKine(ctx, backend.Config{Kind: "postgres", DSN: dsn(direct)}); err != nil {
			return nil, err
		}
		return e, e.startProxy(ctx, dir, backend.Config{Kind: "postgres", DSN: dsn(proxied)})
	}
	return nil, fmt.Errorf("unknown backend %q", kind)
}

func dropPostgres(db string) {
	c, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Exec(`DROP DATABASE IF EXISTS "` + db + `" WITH (FORCE)`)
}

// startKine serves kine's own etcd bridge over the backend, as kine does.
func (e *env) startKine(ctx context.Context, b backend.Config) error {
	bctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	kb, scheme, err := backend.Open(bctx, &wg, b)
	if err != nil {
		cancel()
		return err
	}
	tlsCfg, err := e.pki.serverTLS()
	if err != nil {
		cancel()
		return err
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)))
	kineserver.New(kb, scheme, 5*time.Second, "3.6.0").Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return err
	}
	go func() { _ = g.Serve(lis) }()
	e.directEndpoint = lis.Addr().String()
	e.stops = append(e.stops, func() { g.Stop(); cancel(); wg.Wait() })
	return nil
}

func (e *env) startProxy(ctx context.Context, dir string, b backend.Config) error {
	pp, err := ports.Free(2)
	if err != nil {
		return err
	}
	o := app.Options{
		ListenAddress: "127.0.0.1:" + strconv.Itoa(pp[0]), MetricsAddress: "127.0.0.1:" + strconv.Itoa(pp[1]),
		TLSCertFile: e.pki.serverCrt, TLSKeyFile: e.pki.serverKey, ClientCAFile: e.pki.caFile,
		Backend: b, NotifyInterval: 5 * time.Second, ShutdownGrace: time.Second, BackendSlots: backendSlots, WriteSlots: writeSlots, TenantShare: tenantShare,
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(pctx, o, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", o.ListenAddress); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			cancel()
			return fmt.Errorf("proxy exited: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			return fmt.Errorf("proxy did not start")
		}
	}
	e.proxyEndpoint = o.ListenAddress
	e.stops = append(e.stops, func() { cancel(); <-done })
	return nil
}

// startEtcd runs a TLS etcd in-process (client certificates required) and
// returns its host:port.
func startEtcd(dir string, p *benchPKI) (string, func(), error) {
	u, stop, err := embedetcd.Start(dir, &transport.TLSInfo{
		CertFile: p.serverCrt, KeyFile: p.serverKey, TrustedCAFile: p.caFile, ClientCertAuth: true,
	})
	if err != nil {
		return "", nil, err
	}
	return strings.TrimPrefix(u, "https://"), stop, nil
}
