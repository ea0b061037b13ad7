package v1alpha1

// SyncSpec chooses what the syncer copies and how strictly it guards the
// host.
type SyncSpec struct {
	// PodSecurity is the Pod Security level every tenant pod must meet
	// before anything is created on the host.
	//
	// +kubebuilder:validation:Enum=baseline;restricted
	// +kubebuilder:default=baseline
	// +optional
	PodSecurity string `json:"podSecurity,omitempty"`

	// ConfigMaps and Secrets: Used syncs those that synced pods use; All
	// syncs every one.
	//
	// +kubebuilder:validation:Enum=Used;All
	// +kubebuilder:default=Used
	// +optional
	ConfigMaps string `json:"configMaps,omitempty"`
	// +kubebuilder:validation:Enum=Used;All
	// +kubebuilder:default=Used
	// +optional
	Secrets string `json:"secrets,omitempty"`

	// Resources are the optional resources to sync besides pods,
	// services, endpoints, configmaps and secrets: the list is complete
	// (a resource left out is not synced, and its host copies are removed;
	// host claims, which hold data, are kept until the tenant is deleted).
	// storageclasses and ingressclasses import the host's classes
	// read-only. Default: claims, ingresses, network policies and
	// disruption budgets.
	//
	// +kubebuilder:validation:items:Enum=persistentvolumeclaims;ingresses;networkpolicies;poddisruptionbudgets;storageclasses;ingressclasses
	// +kubebuilder:default={persistentvolumeclaims,ingresses,networkpolicies,poddisruptionbudgets}
	// +listType=set
	// +optional
	Resources []string `json:"resources,omitempty"`

	// RealNodes shows the host nodes' real labels and capacity on the
	// tenant's virtual nodes.
	// +optional
	RealNodes bool `json:"realNodes,omitempty"`
}

// NetworkingSpec connects services across clusters.
type NetworkingSpec struct {
	// ImportHostServices makes host services (From: on the host) resolvable
	// in the tenant (To: created, with its namespace if missing): a
	// selector-less tenant Service with the host Service's ports, whose
	// Endpoints follow the host's (read every 5 s). A tenant Service of
	// that name that is not an import is left alone.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(m, !m.from.__namespace__.startsWith('kplex-'))",message="a tenant's host namespace (kplex-*) cannot be imported from: use tenantServices"
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.filter(y, y.to.__namespace__ == x.to.__namespace__ && y.to.name == x.to.name).size() == 1)",message="two imports onto the same Service"
	// +optional
	ImportHostServices []ServiceMapping `json:"importHostServices,omitempty"`
	// ExportServices makes tenant services (From: in the tenant) reachable
	// in a host namespace (To: it must exist, and not be a tenant's host
	// namespace): a selector-less host Service with the tenant Service's
	// ports, whose Endpoints are the addresses of the tenant's pods. A
	// host Service of that name that is not this tenant's export is left
	// alone (a warning event on the tenant's Service).
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(m, !m.to.__namespace__.startsWith('kplex-'))",message="a tenant's host namespace (kplex-*) cannot receive exports"
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.filter(y, y.to.__namespace__ == x.to.__namespace__ && y.to.name == x.to.name).size() == 1)",message="two exports onto the same Service"
	// +optional
	ExportServices []ServiceMapping `json:"exportServices,omitempty"`
	// TenantServices maps another tenant's services into this one: an
	// import of that tenant's host copy of the Service.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +optional
	TenantServices []TenantServiceMapping `json:"tenantServices,omitempty"`
}

// ServiceMapping maps a service (From) to a name on the other side (To).
type ServiceMapping struct {
	From ServiceRef `json:"from"`
	To   ServiceRef `json:"to"`
}

// TenantServiceMapping maps another tenant's service into this tenant.
type TenantServiceMapping struct {
	// Tenant is the other VirtualCluster, in this one's namespace.
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Tenant string     `json:"tenant"`
	From   ServiceRef `json:"from"`
	To     ServiceRef `json:"to"`
}

// ServiceRef names a service.
type ServiceRef struct {
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
}

// TenancySpec places the tenant's pods. Shared nodes when empty.
type TenancySpec struct {
	// DedicatedNodes pins every host pod of the tenant to matching nodes.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="tenancy.dedicatedNodes is immutable"
	// +optional
	DedicatedNodes *DedicatedNodes `json:"dedicatedNodes,omitempty"`
	// PrivateNodes runs the tenant's workloads in another host cluster.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="tenancy.privateNodes is immutable"
	// +optional
	PrivateNodes *PrivateNodes `json:"privateNodes,omitempty"`
}

// DedicatedNodes are the host nodes reserved for the tenant.
type DedicatedNodes struct {
	// NodeSelector is enforced on every host pod, whatever the tenant's
	// pod says.
	// +kubebuilder:validation:MinProperties=1
	NodeSelector map[string]string `json:"nodeSelector"`
	// Tolerations are added to every host pod.
	// +listType=atomic
	// +optional
	Tolerations []Toleration `json:"tolerations,omitempty"`
}

// Toleration is a host taint the tenant's pods tolerate.
type Toleration struct {
	Key string `json:"key"`
	// +kubebuilder:validation:Enum=Equal;Exists
	// +optional
	Operator string `json:"operator,omitempty"`
	// +optional
	Value string `json:"value,omitempty"`
	// +kubebuilder:validation:Enum=NoSchedule;PreferNoSchedule;NoExecute
	// +optional
	Effect string `json:"effect,omitempty"`
}

// PrivateNodes names another host cluster.
type PrivateNodes struct {
	// KubeconfigSecret is a Secret in this namespace whose "kubeconfig"
	// key reaches the other cluster.
	// +kubebuilder:validation:MinLength=1
	KubeconfigSecret string `json:"kubeconfigSecret"`
}
