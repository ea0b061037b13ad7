// Package app is kplex-syncer's flags and main flow: Run connects to the
// host and the bus, then runs the relay (relay.Relay), a shard
// (shard.Manager), both (mode all), or only an embedded NATS server (mode
// nats, for the local environment), with /metrics, /healthz and /readyz
// served beside them, until SIGTERM.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kplex.dev/syncer/internal/natsbus"
	"kplex.dev/syncer/internal/relay"
	"kplex.dev/syncer/internal/shard"
	"kplex.dev/syncer/internal/tenantsecrets"
)

// Modes.
const (
	ModeRelay = "relay"
	ModeShard = "shard"
	ModeAll   = "all"
	ModeNATS  = "nats"
)

// Options are the command-line flags.
type Options struct {
	Mode           string
	HostKubeconfig string
	NATSURL        string
	NATSListen     string
	NATSStoreDir   string
	TenantsFiles   listFlag
	// TenantsSecretsNamespace and TenantsSecretsDir: registrations kept
	// in host Secrets (tenantsecrets), mirrored into a local directory.
	TenantsSecretsNamespace string
	TenantsSecretsDir       string
	MetricsAddress          string
	Workers                 int
	RelayWorkers            int
	ShutdownGrace           time.Duration
	Profiling               bool
	PatrolInterval          time.Duration
	ShardName               string
	MembershipTTL           time.Duration
}

// ParseFlags parses and checks the flags.
func ParseFlags(args []string, out io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("kplex-syncer", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, `kplex-syncer runs tenants' workloads on the host cluster.

Modes:
  relay  the one watch on kplex-managed host objects; publishes each change
         to NATS JetStream (subject kplex.host.<tenant>.<resource>.<ns>.<name>)
  shard  syncs the tenants of --tenants-file and --tenants-secrets-namespace:
         virtual -> host writes, host state read from the bus (never from
         host watches)
  all    relay and shard in one process (a single-process install)
  nats   only an embedded NATS server with JetStream (local mode)

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Mode, "mode", ModeAll, "relay, shard, all or nats")
	fs.StringVar(&o.HostKubeconfig, "host-kubeconfig", "", "kubeconfig of the host cluster (empty: in-cluster config)")
	fs.StringVar(&o.NATSURL, "nats-url", "", "NATS server URL(s), comma-separated; empty starts an in-process NATS server")
	fs.StringVar(&o.NATSListen, "nats-listen", "127.0.0.1:4222", "mode nats: host:port to serve NATS clients on")
	fs.StringVar(&o.NATSStoreDir, "nats-store-dir", "", "JetStream directory of an embedded NATS server (empty: a temporary directory)")
	fs.Var(&o.TenantsFiles, "tenants-file", "shard: a tenant registry (YAML), or a directory of them (one per tenant, as kplex-operator writes); repeatable; reloaded every 2s")
	fs.StringVar(&o.TenantsSecretsNamespace, "tenants-secrets-namespace", "", "shard: also serve the tenants registered as Secrets in this host namespace (kplex-operator --syncer-registry-namespace), for a platform without a shared filesystem")
	fs.StringVar(&o.TenantsSecretsDir, "tenants-secrets-dir", "", "shard: where those registrations are mirrored (default: a temporary directory)")
	fs.StringVar(&o.MetricsAddress, "metrics-address", "127.0.0.1:9464", "host:port of /metrics, /healthz and /readyz (plain HTTP)")
	fs.IntVar(&o.Workers, "workers", 16, "shard: concurrent reconciles per tenant")
	fs.IntVar(&o.RelayWorkers, "relay-workers", 4, "relay: concurrent publishes")
	fs.StringVar(&o.ShardName, "shard-name", defaultShardName(), "this shard's (or relay's) name, unique among the shards (relays) sharing a NATS (default: the host name)")
	fs.DurationVar(&o.MembershipTTL, "membership-ttl", 3*time.Second, "how long a silent shard or relay counts as live; a dead shard's tenants, or a dead relay's leadership, move after about 1.5x this")
	fs.DurationVar(&o.PatrolInterval, "patrol-interval", 2*time.Minute, "shard: how often the drift patrol re-checks every object of every tenant (0: never)")
	fs.BoolVar(&o.Profiling, "profiling", false, "serve Go profiles at /debug/pprof/ on --metrics-address")
	fs.DurationVar(&o.ShutdownGrace, "shutdown-grace", 10*time.Second, "how long in-flight work may take after SIGTERM")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch o.Mode {
	case ModeRelay, ModeShard, ModeAll, ModeNATS:
	default:
		return o, fmt.Errorf("--mode %q: want relay, shard, all or nats", o.Mode)
	}
	if (o.Mode == ModeShard || o.Mode == ModeAll) && len(o.TenantsFiles) == 0 && o.TenantsSecretsNamespace == "" {
		return o, fmt.Errorf("--mode %s needs --tenants-file or --tenants-secrets-namespace", o.Mode)
	}
	if o.Mode == ModeShard && o.NATSURL == "" {
		return o, errors.New("--mode shard needs --nats-url: an in-process NATS server would not see the relay's changes")
	}
	if o.Workers < 1 || o.RelayWorkers < 1 {
		return o, errors.New("--workers and --relay-workers must be at least 1")
	}
	return o, nil
}

// Run runs the chosen mode until ctx ends.
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	readiness := &checks{}
	ln, err := net.Listen("tcp", o.MetricsAddress)
	if err != nil {
		return fmt.Errorf("--metrics-address: %w", err)
	}
	srv := &http.Server{Handler: mux(readiness, o.Profiling), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	if o.Mode == ModeNATS {
		s, err := natsbus.RunServer(natsbus.ServerConfig{Listen: o.NATSListen, StoreDir: o.NATSStoreDir})
		if err != nil {
			return err
		}
		log.Info("serving nats", "address", o.NATSListen, "store", o.NATSStoreDir)
		readiness.add(func(*http.Request) error {
			if !s.Running() || !s.JetStreamEnabled() {
				return errors.New("nats not ready")
			}
			return nil
		})
		<-ctx.Done()
		s.Shutdown()
		s.WaitForShutdown()
		return nil
	}

	hostCfg, err := hostConfig(o.HostKubeconfig)
	if err != nil {
		return err
	}
	host, err := kubernetes.NewForConfig(hostCfg)
	if err != nil {
		return fmt.Errorf("host client: %w", err)
	}
	b, err := natsbus.Open(ctx, natsbus.Config{URL: o.NATSURL, StoreDir: o.NATSStoreDir, Name: "kplex-syncer-" + o.Mode, Log: log})
	if err != nil {
		return err
	}
	defer b.Close()

	// Components stop when runCtx ends; SIGTERM gives them ShutdownGrace.
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if o.Mode == ModeRelay || o.Mode == ModeAll {
		r := &relay.Elected{Host: host, Bus: b, Log: log.With("relay", o.ShardName), Workers: o.RelayWorkers, Name: o.ShardName, TTL: o.MembershipTTL}
		readiness.add(r.Ready)
		wg.Go(func() { errc <- r.Run(runCtx) })
	}
	if o.Mode == ModeShard || o.Mode == ModeAll {
		// The mirror follows runCtx, but its first sync must also end on
		// SIGTERM (ctx): an API server that never answers must not hold
		// the shutdown.
		mctx, mcancel := context.WithCancel(runCtx)
		defer mcancel()
		stopOnSignal := context.AfterFunc(ctx, mcancel)
		files, cleanup, err := mirrorRegistrations(mctx, o, host, log)
		stopOnSignal()
		if err != nil {
			return err
		}
		defer cleanup()
		m := &shard.Manager{HostConfig: hostCfg, Bus: b, Log: log.With("shard", o.ShardName), Shard: o.ShardName, TenantsFiles: files,
			Workers: o.Workers, Patrol: o.PatrolInterval, MembershipTTL: o.MembershipTTL}
		readiness.add(m.Ready)
		wg.Go(func() { errc <- m.Run(runCtx) })
	}
	log.Info("syncer started", "nats", natsName(o.NATSURL))
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	}
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(o.ShutdownGrace):
		log.Warn("shutdown grace expired with work in flight")
	}
	return err
}

// mirrorRegistrations starts mirroring the registrations kept in Secrets,
// if asked, and returns every registry path the shard loads.
func mirrorRegistrations(ctx context.Context, o Options, host kubernetes.Interface, log *slog.Logger) ([]string, func(), error) {
	files := append([]string{}, o.TenantsFiles...)
	if o.TenantsSecretsNamespace == "" {
		return files, func() {}, nil
	}
	dir, cleanup := o.TenantsSecretsDir, func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", "kplex-registrations-")
		if err != nil {
			return nil, nil, fmt.Errorf("registration mirror: %w", err)
		}
		dir, cleanup = d, func() { _ = os.RemoveAll(d) }
	}
	mr := &tenantsecrets.Mirror{Client: host, Namespace: o.TenantsSecretsNamespace, Dir: dir, Log: log}
	if err := mr.Start(ctx); err != nil {
		cleanup()
		return nil, nil, err
	}
	log.Info("mirroring tenant registrations from Secrets", "namespace", o.TenantsSecretsNamespace, "dir", dir)
	return append(files, dir), cleanup, nil
}

func natsName(url string) string {
	if url == "" {
		return "in-process"
	}
	return url
}

func defaultShardName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "shard"
	}
	return h
}

func hostConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, errors.New("no --host-kubeconfig given and not running in a cluster")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("host kubeconfig: %w", err)
	}
	shard.HostClientConfig(cfg)
	return cfg, nil
}

// checks are the readiness checks, added as components start.
type checks struct {
	mu  sync.Mutex
	fns []func(*http.Request) error
}

func (c *checks) add(f func(*http.Request) error) {
	c.mu.Lock()
	c.fns = append(c.fns, f)
	c.mu.Unlock()
}

func (c *checks) check(r *http.Request) error {
	c.mu.Lock()
	fns := c.fns
	c.mu.Unlock()
	if len(fns) == 0 {
		return errors.New("starting")
	}
	for _, f := range fns {
		if err := f(r); err != nil {
			return err
		}
	}
	return nil
}

func mux(readiness *checks, profiling bool) *http.ServeMux {
	m := http.NewServeMux()
	if profiling {
		m.HandleFunc("/debug/pprof/", pprof.Index)
		m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	m.Handle("/metrics", promhttp.Handler())
	m.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	m.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := readiness.check(r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	return m
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
