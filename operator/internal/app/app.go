// Package app is kplex-operator's wiring: flags, the controller-runtime
// manager (leader election, metrics, health), the runtime, and the
// VirtualCluster reconciler.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"kplex.dev/api/naming"
	"kplex.dev/api/v1alpha1"
	"kplex.dev/cli/pki"
	"kplex.dev/operator/internal/controller"
	"kplex.dev/operator/internal/registry"
	kplexruntime "kplex.dev/operator/internal/runtime"
	"kplex.dev/operator/internal/runtime/kube"
	"kplex.dev/operator/internal/runtime/process"
	"kplex.dev/operator/internal/shardinfo"
)

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
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, v1alpha1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	if o.InstallCRDs {
		if err := installCRDs(ctx, cfg, scheme, log); err != nil {
			return err
		}
	}
	// Control-plane objects (kubernetes runtime) are cached, selected by
	// their component label: never the host's other Deployments or the
	// tenants' synced Services.
	components, err := labels.Parse(naming.LabelComponent)
	if err != nil {
		return err
	}
	byComponent := cache.ByObject{Label: components}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		// VirtualClusters are cached, and control-plane objects: a cache of
		// the host's Secrets or Namespaces would hold every tenant's objects
		// in memory.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.Namespace{}, &corev1.Pod{}, &corev1.ConfigMap{}}}},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}: byComponent, &corev1.Service{}: byComponent, &policyv1.PodDisruptionBudget{}: byComponent}},
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
	var rt kplexruntime.Runtime
	var proc *process.Runtime
	switch o.Runtime {
	case "kubernetes":
		k := &kube.Runtime{Client: mgr.GetClient(), Images: o.Images, ServiceType: corev1.ServiceType(o.APIServerServiceType), ClusterDomain: o.ClusterDomain,
			EndpointTemplate: o.APIServerEndpoint}
		if o.ControlPlaneDatastore != "" {
			k.DatastoreEndpoints = strings.Split(o.ControlPlaneDatastore, ",")
		}
		rt = k
	default:
		proc = &process.Runtime{Dir: filepath.Join(o.DataDir, "tenants"), RunDir: o.RunDir, LogDir: o.LogDir, BinDir: o.BinDir,
			DieWithOperator: o.DieWithOperator, MaxStarting: o.MaxStarting}
		rt = proc
	}
	shards := &shardinfo.Reader{URL: o.NATSURL}
	defer shards.Close()
	r := &controller.Reconciler{
		Client:             mgr.GetClient(),
		Reader:             mgr.GetAPIReader(),
		Runtime:            rt,
		Syncer:             syncerRegistry(o, mgr.GetClient()),
		Quotas:             quotas(o, mgr.GetClient()),
		Shards:             shards,
		Log:                log,
		Recorder:           mgr.GetEventRecorder("kplex-operator"),
		DatastoreCA:        dsCA,
		DatastoreEndpoints: strings.Split(o.DatastoreEndpoints, ","),
		DatastoreServerCA:  serverCA,
		ServiceCIDR:        o.ServiceCIDR,
		Backend:            o.DatastoreBackend,
		Workers:            o.Workers,
		WatchComponents:    o.Runtime == "kubernetes",
		NamespaceConsent:   o.NetworkingConsent == "labels",
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if proc != nil {
		proc.OnExit = r.ControlPlaneExited
	}
	log.Info("starting", "runtime", o.Runtime, "leaderElect", o.LeaderElect, "metrics", o.MetricsAddress, "health", o.HealthAddress)
	return mgr.Start(ctx)
}

func durationPtr(d time.Duration) *time.Duration { return &d }

// syncerRegistry is where tenants are registered: files, or Secrets.
func syncerRegistry(o Options, c client.Client) registry.SyncerRegistry {
	if o.RegistryNamespace != "" {
		return registry.SyncerSecrets{Client: c, Namespace: o.RegistryNamespace}
	}
	return registry.Syncer{Dir: o.SyncerTenantsDir}
}

// quotas is where the datastore limits are written: a file, or a ConfigMap.
func quotas(o Options, c client.Client) *registry.Quotas {
	q := &registry.Quotas{Path: o.DatastoreLimits, Client: c}
	if ns, name, ok := strings.Cut(o.LimitsConfigMap, "/"); ok {
		q.ConfigMap = client.ObjectKey{Namespace: ns, Name: name}
	}
	return q
}
