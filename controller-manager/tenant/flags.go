// Package tenant holds kplex's defaults for a tenant's
// kube-controller-manager. Pure data, no Kubernetes imports.
package tenant

import (
	"fmt"
	"strconv"
	"strings"
)

// Config is what differs between tenants.
type Config struct {
	Name       string
	Kubeconfig string // the controller manager's client identity on the tenant API
	// BindAddress and SecurePort serve /healthz and /metrics.
	BindAddress string
	SecurePort  int

	RootCAFile                   string // tenant CA, published into every namespace
	ServiceAccountPrivateKeyFile string
	ClusterSigningCertFile       string // signs tenant CSRs
	ClusterSigningKeyFile        string
	// TLSCertFile and TLSKeyFile serve /healthz and /metrics with a
	// certificate of the tenant CA (optional: else a self-signed one).
	TLSCertFile string
	TLSKeyFile  string
	// LeaderElect is on when the tenant runs more than one replica.
	LeaderElect bool
}

// Client rate limits on the tenant API: well above the upstream 20/30,
// which would pace every rollout. The host controller manager of the
// local environment uses the same, so neither side's limit hides the
// other's speed.
const (
	KubeAPIQPS   = 200
	KubeAPIBurst = 400
)

// ProcessEnv is the Go runtime setting for a tenant controller manager
// (docs/benchmarks.md): its idle heap is ~30 MiB, most of its RSS is the
// binary's shared text, so a low GOGC keeps the private part small.
var ProcessEnv = []string{"GOGC=25"}

// DisabledControllers are the upstream controllers a virtual cluster does
// not run: nodes are mirrored from the host by the syncer (no IPAM, no
// node lifecycle or taint eviction, no attach/detach, no TTL annotations).
// Cloud controllers are not in kube-controller-manager since v1.31.
var DisabledControllers = []string{
	"node-ipam-controller",
	"node-lifecycle-controller",
	"taint-eviction-controller",
	"device-taint-eviction-controller",
	"persistentvolume-attach-detach-controller",
	"ttl-controller",
	// Their API groups are trimmed from tenant apiservers
	// (kplex.dev/apiserver/tenant.APIGroups): resource.k8s.io,
	// storagemigration.k8s.io, internal.apiserver.k8s.io.
	"resourceclaim-controller",
	"resourcepoolstatusrequest-controller",
	"storage-version-migrator-controller",
	"storageversion-garbage-collector-controller",
}

// Controllers is the --controllers value.
func Controllers() string {
	parts := []string{"*"}
	for _, c := range DisabledControllers {
		parts = append(parts, "-"+c)
	}
	return strings.Join(parts, ",")
}

// Flags returns the kube-controller-manager arguments for the tenant.
func Flags(c Config) ([]string, error) {
	switch {
	case c.Name == "":
		return nil, fmt.Errorf("tenant controller-manager: name is required")
	case c.Kubeconfig == "":
		return nil, fmt.Errorf("tenant %s controller-manager: kubeconfig is required", c.Name)
	case c.SecurePort <= 0 || c.SecurePort > 65535:
		return nil, fmt.Errorf("tenant %s controller-manager: secure port %d out of range", c.Name, c.SecurePort)
	case c.RootCAFile == "" || c.ServiceAccountPrivateKeyFile == "":
		return nil, fmt.Errorf("tenant %s controller-manager: root CA and service-account key are required", c.Name)
	}
	bind := c.BindAddress
	if bind == "" {
		bind = "127.0.0.1"
	}
	f := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		// Callers are authenticated by TokenReview and client certificates
		// only, without reading the front-proxy CA from kube-system: that
		// read made the controller manager exit when it started before its
		// apiserver had bootstrapped RBAC, so it had to wait for readyz.
		"--authentication-skip-lookup=true",
		"--bind-address=" + bind,
		"--secure-port=" + strconv.Itoa(c.SecurePort),
		"--cluster-name=" + c.Name,
		"--controllers=" + Controllers(),
		"--root-ca-file=" + c.RootCAFile,
		"--service-account-private-key-file=" + c.ServiceAccountPrivateKeyFile,
		"--use-service-account-credentials=true",
		"--leader-elect=" + strconv.FormatBool(c.LeaderElect),
		"--profiling=false",
		"--kube-api-qps=" + strconv.Itoa(KubeAPIQPS),
		"--kube-api-burst=" + strconv.Itoa(KubeAPIBurst),
	}
	if c.TLSCertFile != "" {
		f = append(f, "--tls-cert-file="+c.TLSCertFile, "--tls-private-key-file="+c.TLSKeyFile)
	}
	if c.ClusterSigningCertFile != "" {
		f = append(f, "--cluster-signing-cert-file="+c.ClusterSigningCertFile, "--cluster-signing-key-file="+c.ClusterSigningKeyFile)
	}
	return f, nil
}
