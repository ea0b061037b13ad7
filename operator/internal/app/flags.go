package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kplex.dev/api/naming"
	"kplex.dev/operator/internal/registry"
	"kplex.dev/operator/internal/runtime/kube"
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
	// LimitsConfigMap ("namespace/name") and RegistryNamespace replace
	// the two files for a platform in a cluster (no shared filesystem).
	LimitsConfigMap   string
	RegistryNamespace string
	NetworkingConsent string
	NATSURL           string
	ServiceCIDR       string
	MetricsAddress    string
	HealthAddress     string
	LeaderElect       bool
	LeaderNamespace   string
	LeaseDuration     time.Duration
	Workers           int
	MaxStarting       int
	DieWithOperator   bool
	InstallCRDs       bool
	// Kubernetes runtime.
	Images                kube.Images
	PullPolicy            string
	ControlPlaneDatastore string
	APIServerServiceType  string
	ClusterDomain         string
	APIServerEndpoint     string
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
	fs.StringVar(&o.Runtime, "runtime", "process", "where control planes run: process (child processes; local mode and tests) or kubernetes (Deployments in each tenant's host namespace)")
	fs.StringVar(&o.DataDir, "data-dir", "", "process runtime: per-tenant files (certificates, ports); required with it")
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
	fs.StringVar(&o.LimitsConfigMap, "datastore-limits-configmap", "", "NAMESPACE/NAME of a host ConfigMap to write the limits file to (key "+registry.LimitsKey+"), mounted by proxies in the cluster; instead of --datastore-limits-file")
	fs.StringVar(&o.RegistryNamespace, "syncer-registry-namespace", "", "host namespace to keep tenant registrations in, as Secrets the shards mirror (kplex-syncer --tenants-secrets-namespace); instead of --syncer-tenants-dir")
	fs.StringVar(&o.NetworkingConsent, "networking-consent", "labels", "labels: a VirtualCluster may export Services only into host namespaces labeled "+naming.LabelAcceptsExports+"=true, and import host Services only from namespaces labeled "+naming.LabelAllowsImports+"=true; none: into and from any namespace but kplex's")
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
	fs.StringVar(&o.Images.APIServer, "apiserver-image", "", "kubernetes runtime: image running kplex-apiserver (required with it)")
	fs.StringVar(&o.Images.ControllerManager, "controller-manager-image", "", "kubernetes runtime: image running kplex-controller-manager (required with it)")
	fs.StringVar(&o.Images.Scheduler, "scheduler-image", "", "kubernetes runtime: image running kplex-scheduler (needed by VirtualClusters that enable their scheduler)")
	fs.StringVar(&o.PullPolicy, "image-pull-policy", "IfNotPresent", "kubernetes runtime: Always, IfNotPresent or Never")
	fs.StringVar(&o.ControlPlaneDatastore, "control-plane-datastore-endpoints", "", "kubernetes runtime: datastore-proxy URLs as control-plane pods reach them, comma-separated (default: --datastore-endpoints)")
	fs.StringVar(&o.APIServerServiceType, "apiserver-service-type", "ClusterIP", "kubernetes runtime: type of each tenant's kplex-apiserver Service: ClusterIP, NodePort or LoadBalancer")
	fs.StringVar(&o.APIServerEndpoint, "apiserver-endpoint", kube.DefaultEndpoint, "kubernetes runtime: URL clients (syncer shards, admin kubeconfigs) reach each tenant's apiserver at; {tenant} and {namespace} are replaced (e.g. https://{tenant}.vc.example.com behind an SNI gateway)")
	fs.StringVar(&o.ClusterDomain, "cluster-domain", "cluster.local", "kubernetes runtime: the host cluster's DNS domain (a SAN of every tenant's serving certificate)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	required := map[string]string{}
	switch o.Runtime {
	case "process":
		required["data-dir"] = o.DataDir
	case "kubernetes":
		required["apiserver-image"], required["controller-manager-image"] = o.Images.APIServer, o.Images.ControllerManager
		switch corev1.PullPolicy(o.PullPolicy) {
		case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
			o.Images.PullPolicy = corev1.PullPolicy(o.PullPolicy)
		default:
			errs = append(errs, fmt.Errorf("--image-pull-policy %q: want Always, IfNotPresent or Never", o.PullPolicy))
		}
		if _, err := kube.ExpandEndpoint(o.APIServerEndpoint, "example"); err != nil {
			errs = append(errs, fmt.Errorf("--apiserver-endpoint: %w", err))
		}
		switch corev1.ServiceType(o.APIServerServiceType) {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		default:
			errs = append(errs, fmt.Errorf("--apiserver-service-type %q: want ClusterIP, NodePort or LoadBalancer", o.APIServerServiceType))
		}
	default:
		errs = append(errs, fmt.Errorf("--runtime %q: want process or kubernetes", o.Runtime))
	}
	for flagName, v := range map[string]string{"datastore-endpoints": o.DatastoreEndpoints, "datastore-ca-cert": o.DatastoreCACert,
		"datastore-ca-key": o.DatastoreCAKey, "datastore-server-ca": o.DatastoreServerCA} {
		required[flagName] = v
	}
	for _, pair := range [][2]string{{"datastore-limits-file", "datastore-limits-configmap"}, {"syncer-tenants-dir", "syncer-registry-namespace"}} {
		a, b := fs.Lookup(pair[0]).Value.String(), fs.Lookup(pair[1]).Value.String()
		if (a == "") == (b == "") {
			errs = append(errs, fmt.Errorf("give one of --%s and --%s", pair[0], pair[1]))
		}
	}
	if o.LimitsConfigMap != "" {
		if ns, name, ok := strings.Cut(o.LimitsConfigMap, "/"); !ok || ns == "" || name == "" {
			errs = append(errs, fmt.Errorf("--datastore-limits-configmap %q: want NAMESPACE/NAME", o.LimitsConfigMap))
		}
	}
	for _, flagName := range slices.Sorted(maps.Keys(required)) {
		if required[flagName] == "" {
			errs = append(errs, fmt.Errorf("--%s is required", flagName))
		}
	}
	if o.NetworkingConsent != "labels" && o.NetworkingConsent != "none" {
		errs = append(errs, fmt.Errorf("--networking-consent %q: want labels or none", o.NetworkingConsent))
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
