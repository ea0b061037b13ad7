// Package proxytest starts a real datastore-proxy in-process for tests, with
// its own PKI, and builds etcd clients that authenticate as tenants.
package proxytest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"kplex.dev/cli/pki"
	"kplex.dev/cli/ports"
	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/testpki"
)

// Proxy is a running proxy.
type Proxy struct {
	Endpoint       string // host:port of the etcd API
	MetricsAddress string
	CA             *pki.CA // signs the serving cert and tenants' client certs
	Dir            string
	stop           context.CancelFunc
	done           chan error
}

// Start runs a proxy on free ports with backend b until the test ends.
func Start(t testing.TB, b backend.Config) *Proxy { return StartWith(t, b, nil) }

// StartWith is Start with the proxy's options adjusted by mutate.
func StartWith(t testing.TB, b backend.Config, mutate func(*app.Options)) *Proxy {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.Write(t, dir, "proxy-test-ca")
	p, err := ports.Free(2)
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind == "sqlite" && b.DSN == "" {
		b.DataDir = dir
	}
	px := &Proxy{
		Endpoint:       "127.0.0.1:" + strconv.Itoa(p[0]),
		MetricsAddress: "127.0.0.1:" + strconv.Itoa(p[1]),
		CA:             ca,
		Dir:            dir,
	}
	px.run(t, b, mutate)
	t.Cleanup(px.Stop)
	return px
}

func (px *Proxy) run(t testing.TB, b backend.Config, mutate func(*app.Options)) {
	opts := app.Options{
		ListenAddress:  px.Endpoint,
		MetricsAddress: px.MetricsAddress,
		TLSCertFile:    filepath.Join(px.Dir, "serving.crt"),
		TLSKeyFile:     filepath.Join(px.Dir, "serving.key"),
		ClientCAFile:   filepath.Join(px.Dir, "ca.crt"),
		Backend:        b,
		NotifyInterval: time.Second,
		ShutdownGrace:  2 * time.Second,
	}
	if mutate != nil {
		mutate(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	px.stop, px.done = cancel, make(chan error, 1)
	go func() { px.done <- app.Run(ctx, opts, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", px.Endpoint, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-px.done:
			t.Fatalf("proxy exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy not listening on %s", px.Endpoint)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the proxy and waits for it.
func (px *Proxy) Stop() {
	if px.stop == nil {
		return
	}
	px.stop()
	<-px.done
	px.stop = nil
}

// ClientTLS is a TLS config presenting a client certificate with CN
// signed by signer, trusting the proxy's CA.
func (px *Proxy) ClientTLS(t testing.TB, cn string, signer *pki.CA) *tls.Config {
	t.Helper()
	kp, err := signer.Issue(pki.CertSpec{CommonName: cn, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(px.CA.Cert)
	return &tls.Config{
		RootCAs:      roots,
		Certificates: []tls.Certificate{{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key}},
	}
}

// Client is an etcd client authenticated as tenant.
func (px *Proxy) Client(t testing.TB, tenant string) *clientv3.Client {
	t.Helper()
	return px.ClientWithTLS(t, px.ClientTLS(t, tenant, px.CA))
}

// ClientWithTLS is an etcd client with the given TLS config (nil: none).
func (px *Proxy) ClientWithTLS(t testing.TB, cfg *tls.Config) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"https://" + px.Endpoint},
		TLS:         cfg,
		DialTimeout: 5 * time.Second,
		Logger:      nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// WatchStream is a raw etcd watch stream to the proxy as tenant, over a
// connection of its own with extra dial options, closed when the test
// ends. Unlike etcd's client, it adds no goroutine or buffer per watch, and
// leaves every request and response to the test.
func (px *Proxy) WatchStream(t testing.TB, ctx context.Context, tenant string, opts ...grpc.DialOption) etcdserverpb.Watch_WatchClient {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(px.ClientTLS(t, tenant, px.CA)))}, opts...)
	conn, err := grpc.NewClient(px.Endpoint, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ws, err := etcdserverpb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}
