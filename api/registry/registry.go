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
	Kubeconfig string `json:"kubeconfig"`
	// HostKubeconfig, when set, is the tenant's own host cluster (private
	// nodes): its host namespace, pods, services and the rest go there,
	// not to the shared host. A relative path is resolved like Kubeconfig.
	HostKubeconfig    string `json:"hostKubeconfig,omitempty"`
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
	// Resources are the optional resources synced besides pods, services,
	// endpoints, configmaps and secrets (OptionalResources). Absent: all
	// of them (a registration written by hand); an empty list: none.
	Resources *[]string `json:"resources,omitempty"`
	// ExportServices make tenant Services reachable in host namespaces: a
	// selector-less host Service with the tenant Service's ports, whose
	// Endpoints follow the tenant's (its pods' host addresses).
	ExportServices []ServiceExport `json:"exportServices,omitempty"`
	// ImportServices make host Services (another tenant's host copies
	// included) resolvable in the tenant: a selector-less tenant Service
	// with the host Service's ports, whose Endpoints follow the host's.
	ImportServices []ServiceImport `json:"importServices,omitempty"`
}

// ServiceImport imports the host Service From as the tenant Service To.
type ServiceImport struct {
	From ServiceRef `json:"from"`
	To   ServiceRef `json:"to"`
}

// ServiceExport exports the tenant Service From as the host Service To.
type ServiceExport struct {
	From ServiceRef `json:"from"`
	To   ServiceRef `json:"to"`
}

// ServiceRef names a Service.
type ServiceRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// The optional resources a tenant can sync (Tenant.Resources).
const (
	PersistentVolumeClaims = "persistentvolumeclaims"
	Ingresses              = "ingresses"
	NetworkPolicies        = "networkpolicies"
	PodDisruptionBudgets   = "poddisruptionbudgets"
)

// OptionalResources are the values Tenant.Resources may hold.
var OptionalResources = []string{PersistentVolumeClaims, Ingresses, NetworkPolicies, PodDisruptionBudgets}

// Syncs reports whether the tenant syncs an optional resource.
func (t Tenant) Syncs(resource string) bool {
	if t.Resources == nil {
		return true
	}
	for _, r := range *t.Resources {
		if r == resource {
			return true
		}
	}
	return false
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

// The files of one tenant's registration in a registry directory (and the
// keys of its registration Secret), relative to the directory.
func RegistrationFile(tenant string) string   { return tenant + ".yaml" }
func KubeconfigFile(tenant string) string     { return tenant + ".kubeconfig" }
func HostKubeconfigFile(tenant string) string { return tenant + ".host.kubeconfig" }

// Registrations in Secrets (no shared filesystem): the operator keeps each
// tenant's registry files in a Secret of one host namespace, labeled
// SecretLabel=<tenant>, with each file's base name as its key; the shards
// mirror those Secrets into a local directory and load it like the
// operator's registry directory.
const (
	SecretLabel  = "kplex.dev/registration"
	SecretPrefix = "kplex-registration-"
)
