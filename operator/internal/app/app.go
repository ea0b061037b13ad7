// Package app is kplex-operator's wiring: flags, the controller-runtime
// manager (leader election, metrics, health), the runtime, and the
// VirtualCluster reconciler.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"kplex.dev/api/v1alpha1"
	"kplex.dev/cli/pki"
	"kplex.dev/operator/internal/controller"
	"kplex.dev/operator/internal/registry"
	"kplex.dev/operator/internal/runtime/process"
	"kplex.dev/operator/internal/shardinfo"
)

// Options are the command-line flags.
type Options struct {
	Kubeconfig         string
	Runtime            string
	DataDir            string
	RunDir, LogDir     string
	BinDir             string
	DatastoreEndpoints string
	DatastoreCACert    string
	DatastoreCAKey     string
	DatastoreServerCA  string
	DatastoreBackend   string
	DatastoreLimits    string
	SyncerTenantsDir   string
	NATSURL            string
	ServiceCIDR        string
	MetricsAddress     string
	HealthAddress      string
	LeaderElect        bool
	LeaderNamespace    string
	LeaseDuration      time.Duration
	Workers            int
	MaxStarting        int
	DieWithOperator    bool
	InstallCRDs        bool
}

// ParseFlags parses and checks the flags.
func ParseFlags(args []string, out io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("kplex-operator", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, `kplex-operator reconciles VirtualCluster objects (kplex.dev/v1alpha1) on
the host cluster: host namespace, tenant PKI, datastore tenant and limits,
control plane (through a runtime), syncer registration and status; pause,
resume, and deletion with full cleanup.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig of the host cluster (empty: in-cluster config)")
	fs.StringVar(&o.Runtime, "runtime", "process", "where control planes run: process (child processes; local mode and tests)")
	fs.StringVar(&o.DataDir, "data-dir", "", "process runtime: per-tenant files (certificates, ports)")
	fs.StringVar(&o.RunDir, "run-dir", "", "process runtime: pid files (default <data-dir>/run)")
	fs.StringVar(&o.LogDir, "log-dir", "", "process runtime: control-plane logs (default <data-dir>/logs)")
	fs.StringVar(&o.BinDir, "bin-dir", "", "process runtime: directory of kplex-apiserver, kplex-controller-manager, kplex-scheduler (default: this binary's)")
	fs.StringVar(&o.DatastoreEndpoints, "datastore-endpoints", "", "datastore-proxy URLs, comma-separated (https://host:port)")
	fs.StringVar(&o.DatastoreCACert, "datastore-ca-cert", "", "CA certificate that signs tenants' datastore client certificates (CN = tenant)")
	fs.StringVar(&o.DatastoreCAKey, "datastore-ca-key", "", "its key")
	fs.StringVar(&o.DatastoreServerCA, "datastore-server-ca", "", "CA the datastore-proxy's serving certificate chains to")
	fs.StringVar(&o.DatastoreBackend, "datastore-backend", "sqlite", "the datastore-proxy's backend (VirtualClusters asking for another are refused with a reason)")
	fs.StringVar(&o.DatastoreLimits, "datastore-limits-file", "", "the datastore-proxy's per-tenant limits file (--tenant-config of the proxy), written by the operator")
	fs.StringVar(&o.SyncerTenantsDir, "syncer-tenants-dir", "", "directory the syncer shards load tenant registrations from (--tenants-file of the shards)")
	fs.StringVar(&o.NATSURL, "nats-url", "", "the syncer's NATS, to show each tenant's owning shard in its status (empty: not shown)")
	fs.StringVar(&o.ServiceCIDR, "service-cidr", "10.96.0.0/16", "Service ClusterIP range of tenants (the host's, so ClusterIPs match)")
	fs.StringVar(&o.MetricsAddress, "metrics-address", "127.0.0.1:9470", "host:port of /metrics (plain HTTP)")
	fs.StringVar(&o.HealthAddress, "health-address", "127.0.0.1:9471", "host:port of /healthz and /readyz")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "elect one active operator among replicas (a Lease in --leader-election-namespace)")
	fs.StringVar(&o.LeaderNamespace, "leader-election-namespace", "kube-system", "namespace of the leader-election Lease")
	fs.DurationVar(&o.LeaseDuration, "leader-election-lease", 15*time.Second, "how long a silent leader keeps the lease: a killed leader's successor takes over after it")
	fs.IntVar(&o.Workers, "workers", 8, "VirtualClusters reconciled at once")
	fs.IntVar(&o.MaxStarting, "max-starting", 4, "process runtime: control planes starting at once (others queue; 0: no bound)")
	fs.BoolVar(&o.DieWithOperator, "die-with-operator", false, "process runtime: control planes die with the operator (tests)")
	fs.BoolVar(&o.InstallCRDs, "install-crds", true, "create or update the VirtualCluster CRD at start")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	if o.Runtime != "process" {
		errs = append(errs, fmt.Errorf("--runtime %q: only \"process\" is available in this version (the kubernetes runtime is not built yet)", o.Runtime))
	}
	for flagName, v := range map[string]string{"data-dir": o.DataDir, "datastore-endpoints": o.DatastoreEndpoints, "datastore-ca-cert": o.DatastoreCACert,
		"datastore-ca-key": o.DatastoreCAKey, "datastore-server-ca": o.DatastoreServerCA, "datastore-limits-file": o.DatastoreLimits, "syncer-tenants-dir": o.SyncerTenantsDir} {
		if v == "" {
			errs = append(errs, fmt.Errorf("--%s is required", flagName))
		}
	}
	if o.LeaseDuration < time.Second {
		errs = append(errs, fmt.Errorf("--leader-election-lease %v: want at least 1s", o.LeaseDuration))
	}
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("--workers %d: want at least 1", o.Workers))
	}
	if o.RunDir == "" {
		o.RunDir = filepath.Join(o.DataDir, "run")
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join(o.DataDir, "logs")
	}
	if o.BinDir == "" {
		if exe, err := os.Executable(); err == nil {
			o.BinDir = filepath.Dir(exe)
		}
	}
	return o, errors.Join(errs...)
}

// Run runs the operator until ctx ends.
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("host kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return otelhttp.NewTransport(rt) })

	caCert, err := os.ReadFile(o.DatastoreCACert)
	if err != nil {
		return fmt.Errorf("--datastore-ca-cert: %w", err)
	}
	caKey, err := os.ReadFile(o.DatastoreCAKey)
	if err != nil {
		return fmt.Errorf("--datastore-ca-key: %w", err)
	}
	dsCA, err := pki.ParseCA(caCert, caKey)
	if err != nil {
		return fmt.Errorf("--datastore-ca-cert/--datastore-ca-key: %w", err)
	}
	serverCA, err := os.ReadFile(o.DatastoreServerCA)
	if err != nil {
		return fmt.Errorf("--datastore-server-ca: %w", err)
	}

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, v1alpha1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	if o.InstallCRDs {
		if err := installCRDs(ctx, cfg, scheme, log); err != nil {
			return err
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		// Only VirtualClusters are cached: a cache of the host's Secrets or
		// Namespaces would hold every tenant's objects in memory.
		Client:                        client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.Namespace{}, &corev1.Pod{}}}},
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddress},
		HealthProbeBindAddress:        o.HealthAddress,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              "kplex-operator",
		LeaderElectionNamespace:       o.LeaderNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 durationPtr(o.LeaseDuration),
		RenewDeadline:                 durationPtr(o.LeaseDuration * 2 / 3),
		RetryPeriod:                   durationPtr(o.LeaseDuration / 5),
		GracefulShutdownTimeout:       durationPtr(30 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	rt := &process.Runtime{Dir: filepath.Join(o.DataDir, "tenants"), RunDir: o.RunDir, LogDir: o.LogDir, BinDir: o.BinDir,
		DieWithOperator: o.DieWithOperator, MaxStarting: o.MaxStarting}
	shards := &shardinfo.Reader{URL: o.NATSURL}
	defer shards.Close()
	r := &controller.Reconciler{
		Client:             mgr.GetClient(),
		Runtime:            rt,
		Syncer:             registry.Syncer{Dir: o.SyncerTenantsDir},
		Quotas:             &registry.Quotas{Path: o.DatastoreLimits},
		Shards:             shards,
		Log:                log,
		Recorder:           mgr.GetEventRecorder("kplex-operator"),
		DatastoreCA:        dsCA,
		DatastoreEndpoints: strings.Split(o.DatastoreEndpoints, ","),
		DatastoreServerCA:  serverCA,
		ServiceCIDR:        o.ServiceCIDR,
		Backend:            o.DatastoreBackend,
		Workers:            o.Workers,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	rt.OnExit = r.ControlPlaneExited
	log.Info("starting", "runtime", o.Runtime, "leaderElect", o.LeaderElect, "metrics", o.MetricsAddress, "health", o.HealthAddress)
	return mgr.Start(ctx)
}

func durationPtr(d time.Duration) *time.Duration { return &d }
