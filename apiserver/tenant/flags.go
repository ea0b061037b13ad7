// Package tenant holds kplex's defaults for a tenant's kube-apiserver: the
// flags that turn the upstream binary into a virtual cluster's API server.
// It is pure data (no Kubernetes imports) so the CLI and the operator can
// build a tenant's command line without linking the apiserver.
package tenant

import (
	"fmt"
	"strconv"
	"strings"

	"kplex.dev/apiserver/gctune"
)

// Config is what differs between tenants.
type Config struct {
	Name        string // tenant name; part of the issuer and the etcd prefix
	BindAddress string // e.g. 127.0.0.1
	// AdvertiseAddress defaults to BindAddress; in a pod it is the pod's
	// IP ("$(POD_IP)", expanded by the kubelet).
	AdvertiseAddress string
	SecurePort       int

	EtcdServers  []string
	EtcdCAFile   string
	EtcdCertFile string
	EtcdKeyFile  string
	// EtcdPrefix confines the tenant's keys; empty means "/registry" (the
	// datastore-proxy confines tenants itself).
	EtcdPrefix string

	TLSCertFile  string // serving cert
	TLSKeyFile   string
	ClientCAFile string // tenant CA: admin and component client certs

	// FrontProxyCAFile and the front-proxy client pair let the apiserver
	// proxy to aggregated APIs (metrics-server...) and let components
	// authenticate proxied requests. Optional.
	FrontProxyCAFile         string
	FrontProxyClientCertFile string
	FrontProxyClientKeyFile  string

	ServiceAccountSigningKeyFile string
	ServiceAccountKeyFile        string // public key
	ServiceClusterIPRange        string
	// WatchCache enables the apiserver watch cache. Off by default for
	// tenants: it costs memory per resource and a tenant's load is small
	// (see docs/benchmarks.md for the measurement).
	WatchCache bool
}

// ProcessEnv is the Go runtime setting for a tenant apiserver, chosen by
// measurement (docs/benchmarks.md). Idle, a tenant apiserver's heap is
// mostly garbage between GCs, so GOGC=10 keeps it near the live heap
// (~183 MiB RSS against 240 MiB at the default 100). Under load that GOGC
// costs more CPU than the work (a 100-pod rollout: 1.8 s of apiserver CPU
// against 0.8 s at 100), so gctune raises GOGC to 100 while the
// allocation rate is high and lowers it again after the burst.
var ProcessEnv = []string{"GOGC=10", gctune.EnvBusy + "=100"}

// APIGroups are the group/versions a tenant gets: what workloads, RBAC,
// CRDs, webhooks and the controller manager need. Alpha/beta versions,
// flowcontrol (priority and fairness is off), resource.k8s.io (DRA),
// storagemigration and internal.apiserver are left out.
var APIGroups = []string{
	"api/v1",
	"admissionregistration.k8s.io/v1",
	"apiextensions.k8s.io/v1",
	"apiregistration.k8s.io/v1",
	"apps/v1",
	"authentication.k8s.io/v1",
	"authorization.k8s.io/v1",
	"autoscaling/v1",
	"autoscaling/v2",
	"batch/v1",
	"certificates.k8s.io/v1",
	"coordination.k8s.io/v1",
	"discovery.k8s.io/v1",
	"events.k8s.io/v1",
	"networking.k8s.io/v1",
	"node.k8s.io/v1",
	"policy/v1",
	"rbac.authorization.k8s.io/v1",
	"scheduling.k8s.io/v1",
	"storage.k8s.io/v1",
}

// RuntimeConfig is the --runtime-config value serving exactly APIGroups.
func RuntimeConfig() string {
	parts := []string{"api/all=false"}
	for _, gv := range APIGroups {
		parts = append(parts, gv+"=true")
	}
	return strings.Join(parts, ",")
}

// Validate reports the first missing or malformed field.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("tenant apiserver: name is required")
	case c.SecurePort <= 0 || c.SecurePort > 65535:
		return fmt.Errorf("tenant %s apiserver: secure port %d out of range", c.Name, c.SecurePort)
	case len(c.EtcdServers) == 0:
		return fmt.Errorf("tenant %s apiserver: no etcd servers", c.Name)
	case c.TLSCertFile == "" || c.TLSKeyFile == "" || c.ClientCAFile == "":
		return fmt.Errorf("tenant %s apiserver: serving cert, key and client CA are required", c.Name)
	case c.ServiceAccountSigningKeyFile == "" || c.ServiceAccountKeyFile == "":
		return fmt.Errorf("tenant %s apiserver: service-account key pair is required", c.Name)
	case c.ServiceClusterIPRange == "":
		return fmt.Errorf("tenant %s apiserver: service cluster IP range is required", c.Name)
	}
	return nil
}

// Flags returns the kube-apiserver arguments for the tenant.
func Flags(c Config) ([]string, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	bind := c.BindAddress
	if bind == "" {
		bind = "127.0.0.1"
	}
	advertise := c.AdvertiseAddress
	if advertise == "" {
		advertise = bind
	}
	f := []string{
		"--bind-address=" + bind,
		"--advertise-address=" + advertise,
		"--secure-port=" + strconv.Itoa(c.SecurePort),
		// The tenant's "kubernetes" Service endpoints are the syncer's job.
		"--endpoint-reconciler-type=none",
		"--etcd-servers=" + strings.Join(c.EtcdServers, ","),
		"--tls-cert-file=" + c.TLSCertFile,
		"--tls-private-key-file=" + c.TLSKeyFile,
		"--client-ca-file=" + c.ClientCAFile,
		"--service-account-issuer=https://kubernetes.default.svc/kplex/" + c.Name,
		"--service-account-signing-key-file=" + c.ServiceAccountSigningKeyFile,
		"--service-account-key-file=" + c.ServiceAccountKeyFile,
		"--service-cluster-ip-range=" + c.ServiceClusterIPRange,
		"--authorization-mode=RBAC",
		"--runtime-config=" + RuntimeConfig(),
		"--enable-priority-and-fairness=false",
		"--watch-cache=" + strconv.FormatBool(c.WatchCache),
		"--profiling=false",
		// Tenants never talk to kubelets directly (the syncer mirrors pods).
		"--kubelet-preferred-address-types=InternalIP",
	}
	if c.EtcdCAFile != "" {
		f = append(f, "--etcd-cafile="+c.EtcdCAFile, "--etcd-certfile="+c.EtcdCertFile, "--etcd-keyfile="+c.EtcdKeyFile)
	}
	if c.FrontProxyCAFile != "" {
		f = append(f, FrontProxyFlags(c.FrontProxyCAFile, c.FrontProxyClientCertFile, c.FrontProxyClientKeyFile)...)
	}
	if c.EtcdPrefix != "" {
		f = append(f, "--etcd-prefix="+c.EtcdPrefix)
	}
	return f, nil
}

// FrontProxyFlags are the kube-apiserver flags of the aggregation layer's
// front proxy: the CA that signs proxied requests' client certificate, the
// standard X-Remote-* headers, and the apiserver's own proxy client pair.
// The host apiserver uses them too.
func FrontProxyFlags(caFile, clientCertFile, clientKeyFile string) []string {
	return []string{
		"--requestheader-client-ca-file=" + caFile,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + clientCertFile,
		"--proxy-client-key-file=" + clientKeyFile,
	}
}
