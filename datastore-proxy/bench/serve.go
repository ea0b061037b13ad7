package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	kineserver "github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/embedetcd"
)

// The servers of the benchmark run as child processes of it (this binary,
// started with one of these first arguments), so that each one's CPU is
// its own, as on a real deployment where the proxy, the store and the
// clients do not share a Go runtime:
//
//	serve-etcd  DIR PKIDIR [separate-http] a TLS etcd, data in DIR
//	serve-kine  PKIDIR KIND DSN|DATADIR    kine's own etcd bridge (kine direct)
//	serve-proxy [-cpuprofile F] -- FLAGS   the proxy itself (its command line)
//	serve-flood PKIDIR NAME HOST:PORT N SIZE TALLY  N writers of SIZE-byte values as tenant NAME (flood.go)
//	serve-relay HOST:PORT                  a byte relay to HOST:PORT (relay.go)
//
// A child prints "endpoint HOST:PORT" on stdout once it serves, and stops
// when its stdin closes (the benchmark ended or died) or on SIGTERM. Lines
// on its stdin are commands (storeprofile.go).
const endpointPrefix = "endpoint "

// serveChild runs the child named by args[0]; it reports whether args
// named one.
func serveChild(args []string) bool {
	if len(args) == 0 || !strings.HasPrefix(args[0], "serve-") {
		return false
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { readCommands(os.Stdin); stop() }()
	var err error
	if cpu := os.Getenv("KPLEX_BENCH_PIN"); cpu != "" {
		n, err := strconv.Atoi(cpu)
		if err == nil {
			err = pinSelf([]int{n})
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: pin to CPU %q: %v\n", args[0], cpu, err)
			os.Exit(1)
		}
	}
	switch args[0] {
	case "serve-etcd":
		err = serveEtcd(ctx, args[1], args[2], len(args) > 3 && args[3] == "separate-http")
	case "serve-kine":
		err = serveKine(ctx, args[1], backend.Config{Kind: args[2], DSN: args[3], DataDir: args[3]})
	case "serve-proxy":
		err = serveProxy(ctx, args[1:])
	case "serve-flood":
		if len(args) != 7 {
			err = fmt.Errorf("usage: serve-flood PKIDIR NAME HOST:PORT WRITERS VALUEBYTES TALLYFILE")
			break
		}
		err = serveFlood(ctx, args[1], args[2], args[3], args[4], args[5], args[6])
	case "serve-relay":
		if len(args) != 2 {
			err = fmt.Errorf("usage: serve-relay HOST:PORT")
			break
		}
		err = serveRelay(ctx, args[1])
	default:
		err = fmt.Errorf("unknown child %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", args[0], err)
		os.Exit(1)
	}
	return true
}

func announce(endpoint string) { fmt.Printf("%s%s\n", endpointPrefix, endpoint) }

func serveEtcd(ctx context.Context, dir, pkiDir string, separateHTTP bool) error {
	start := embedetcd.Start
	if separateHTTP {
		start = embedetcd.StartSeparateHTTP
	}
	u, stop, err := start(dir, &transport.TLSInfo{
		CertFile: filepath.Join(pkiDir, "server.crt"), KeyFile: filepath.Join(pkiDir, "server.key"),
		TrustedCAFile: filepath.Join(pkiDir, "ca.crt"), ClientCertAuth: true,
	})
	if err != nil {
		return err
	}
	defer stop()
	defer profileOnCommand()()
	announce(strings.TrimPrefix(u, "https://"))
	<-ctx.Done()
	return nil
}

// serveKine serves kine's own etcd bridge over the backend, as kine does.
func serveKine(ctx context.Context, pkiDir string, b backend.Config) error {
	if b.Kind == "sqlite" {
		b.DSN = ""
	} else {
		b.DataDir = ""
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	kb, scheme, err := backend.Open(bctx, &wg, b)
	if err != nil {
		return err
	}
	tlsCfg, err := serverTLSFiles(pkiDir)
	if err != nil {
		return err
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)))
	kineserver.New(kb, scheme, 5*time.Second, "3.6.0").Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = g.Serve(lis) }()
	defer profileOnCommand()()
	announce(lis.Addr().String())
	<-ctx.Done()
	g.Stop()
	return nil
}

// serveProxy runs the proxy from its own command line (after "--").
func serveProxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve-proxy", flag.ContinueOnError)
	profile := fs.String("cpuprofile", "", "write the proxy's CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, err := app.ParseFlags(fs.Args(), os.Stderr)
	if err != nil {
		return err
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	defer profileOnCommand()()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	for {
		if c, err := net.Dial("tcp", o.ListenAddress); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			return fmt.Errorf("proxy exited: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	announce(o.ListenAddress)
	return <-done
}

// serverTLSFiles is the mutual-TLS config of a direct (non-proxy) server.
func serverTLSFiles(pkiDir string) (*tls.Config, error) {
	pair, ca, err := pkiFiles(pkiDir, "server")
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: ca, ClientAuth: tls.RequireAndVerifyClientCert}, nil
}

// pkiFiles loads PKIDIR/name.crt and .key, and the benchmark's CA.
func pkiFiles(pkiDir, name string) (tls.Certificate, *x509.CertPool, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, name+".crt"), filepath.Join(pkiDir, name+".key"))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ca, err := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return tls.Certificate{}, nil, fmt.Errorf("%s: no certificate", filepath.Join(pkiDir, "ca.crt"))
	}
	return pair, roots, nil
}
