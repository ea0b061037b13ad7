// Package registry is the contract between kplex-operator and the syncer
// shards: a tenant registration, as the shards read it from their registry
// files (one file may list many; the operator writes one per tenant). The
// syncer validates and defaults it (syncer/internal/tenants).
package registry

import corev1 "k8s.io/api/core/v1"

// Tenant is one tenant's sync settings.
type Tenant struct {
	Name string `json:"name"`
	// Kubeconfig is the syncer's identity in the tenant API; a relative
	// path is resolved against the registry file's directory.
	Kubeconfig        string `json:"kubeconfig"`
	PodSecurity       string `json:"podSecurity,omitempty"` // baseline (default) | restricted
	ConfigMaps        string `json:"configMaps,omitempty"`  // SyncUsed (default) | SyncAll
	Secrets           string `json:"secrets,omitempty"`     // SyncUsed (default) | SyncAll
	APIServerEndpoint string `json:"apiServerEndpoint,omitempty"`
	RealNodes         bool   `json:"realNodes,omitempty"`
	// IngressClasses maps a virtual ingress class name to the host's.
	IngressClasses map[string]string `json:"ingressClasses,omitempty"`
	// ImportStorageClasses and ImportIngressClasses give the tenant
	// read-only copies of the host's classes.
	ImportStorageClasses bool `json:"importStorageClasses,omitempty"`
	ImportIngressClasses bool `json:"importIngressClasses,omitempty"`
	// NodeSelector and Tolerations are the tenant's dedicated host nodes:
	// the selector is forced onto every host pod (it wins over the
	// tenant's own keys) and the tolerations are added.
	NodeSelector map[string]string   `json:"nodeSelector,omitempty"`
	Tolerations  []corev1.Toleration `json:"tolerations,omitempty"`
}

// Sync modes of ConfigMaps and Secrets.
const (
	SyncUsed = "Used"
	SyncAll  = "All"
)

// File is a whole registry file.
type File struct {
	Tenants []Tenant `json:"tenants"`
}
