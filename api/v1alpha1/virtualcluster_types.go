package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VirtualCluster is a tenant's Kubernetes cluster: its own API server,
// controller manager and optional scheduler, a datastore tenant, and its
// workloads synced onto the host's nodes.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vc,categories=kplex
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Pods",type=integer,JSONPath=`.status.pods`
// +kubebuilder:printcolumn:name="Shard",type=string,JSONPath=`.status.syncerShard`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 40",message="metadata.name must be a DNS label of at most 40 characters starting with a letter (it names the tenant's host namespace and datastore tenant)"
type VirtualCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VirtualClusterSpec   `json:"spec,omitempty"`
	Status VirtualClusterStatus `json:"status,omitempty"`
}

// VirtualClusterList is a list of VirtualClusters.
//
// +kubebuilder:object:root=true
type VirtualClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualCluster `json:"items"`
}

// VirtualClusterSpec is what the tenant asks for.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.tenancy) && has(self.tenancy.dedicatedNodes) && has(self.tenancy.privateNodes))",message="tenancy: choose dedicatedNodes or privateNodes, not both"
// +kubebuilder:validation:XValidation:rule="!(has(self.tenancy) && has(self.tenancy.privateNodes) && has(self.networking) && has(self.networking.tenantServices) && size(self.networking.tenantServices) > 0)",message="networking.tenantServices: not available with tenancy.privateNodes (the tenant's services are in another cluster)"
// +kubebuilder:validation:XValidation:rule="(has(self.tenancy) && has(self.tenancy.privateNodes)) == (has(oldSelf.tenancy) && has(oldSelf.tenancy.privateNodes))",message="tenancy.privateNodes cannot be added or removed after creation"
type VirtualClusterSpec struct {
	// Version is the Kubernetes minor version of the control plane. Only
	// v1.37 is available.
	//
	// +kubebuilder:validation:Enum=v1.37
	// +kubebuilder:default=v1.37
	// +optional
	Version string `json:"version,omitempty"`

	// Datastore is where the tenant's API objects are stored.
	// +kubebuilder:default={}
	// +optional
	Datastore DatastoreSpec `json:"datastore,omitempty"`

	// ControlPlane sizes the tenant's API server, controller manager and
	// scheduler.
	// +kubebuilder:default={}
	// +optional
	ControlPlane ControlPlaneSpec `json:"controlPlane,omitempty"`

	// Sync chooses what the syncer copies between the tenant and the host.
	// +kubebuilder:default={}
	// +optional
	Sync SyncSpec `json:"sync,omitempty"`

	// Networking connects services across the tenant, the host and other
	// tenants.
	// +kubebuilder:default={}
	// +optional
	Networking NetworkingSpec `json:"networking,omitempty"`

	// Tenancy chooses where the tenant's pods run: the shared nodes
	// (default), dedicated host nodes, or another cluster.
	// +optional
	Tenancy *TenancySpec `json:"tenancy,omitempty"`

	// Paused scales the control plane to zero and removes the tenant's
	// host pods; unpausing restores them with all data.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// DatastoreSpec selects the tenant's datastore and its quotas.
type DatastoreSpec struct {
	// Backend is the datastore-proxy backend the tenant lives on. It
	// cannot change after creation.
	//
	// +kubebuilder:validation:Enum=sqlite;etcd;postgres;mysql
	// +kubebuilder:default=sqlite
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="datastore.backend is immutable: create a new VirtualCluster to use another backend"
	// +optional
	Backend string `json:"backend,omitempty"`

	// Quota limits what the tenant may store and how fast it may ask.
	// +optional
	Quota *DatastoreQuota `json:"quota,omitempty"`
}

// DatastoreQuota are the tenant's datastore limits; unset means the
// platform's default.
type DatastoreQuota struct {
	// MaxKeys is how many keys (API objects) the tenant may store.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxKeys *int64 `json:"maxKeys,omitempty"`
	// MaxBytes is how many bytes of objects the tenant may store.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxBytes *int64 `json:"maxBytes,omitempty"`
	// RequestsPerSecond is the tenant's sustained datastore request rate.
	// +kubebuilder:validation:Minimum=0
	// +optional
	RequestsPerSecond *int32 `json:"requestsPerSecond,omitempty"`
	// Burst is how many requests above the rate are allowed at once.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Burst *int32 `json:"burst,omitempty"`
	// MaxWatches is how many datastore watches the tenant may have open at
	// once (with its watch cache off, about one per client watch).
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxWatches *int32 `json:"maxWatches,omitempty"`
}

// ControlPlaneSpec sizes the tenant's control-plane components.
type ControlPlaneSpec struct {
	// +optional
	APIServer ComponentSpec `json:"apiServer,omitempty"`
	// +optional
	ControllerManager ComponentSpec `json:"controllerManager,omitempty"`
	// Scheduler is the tenant's own scheduler; without it the host
	// scheduler places the tenant's pods.
	// +optional
	Scheduler SchedulerSpec `json:"scheduler,omitempty"`
}

// ComponentSpec is one control-plane component's size.
type ComponentSpec struct {
	// Replicas of the component (1 when unset). The kubernetes runtime
	// runs them as a Deployment; the process runtime runs one. Use
	// spec.paused to stop a control plane.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// Resources of each replica. The process runtime applies the limits
	// as Go runtime limits (memory: GOMEMLIMIT at 90%; cpu: GOMAXPROCS).
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
}

// SchedulerSpec turns the tenant's scheduler on and sizes it.
type SchedulerSpec struct {
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// +optional
	ComponentSpec `json:",inline"`
}
