package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Phase summarises a VirtualCluster's state.
type Phase string

// Phases.
const (
	PhasePending      Phase = "Pending"
	PhaseProvisioning Phase = "Provisioning"
	PhaseReady        Phase = "Ready"
	PhasePaused       Phase = "Paused"
	PhaseDeleting     Phase = "Deleting"
	PhaseFailed       Phase = "Failed"
)

// Condition types, each with a reason when not True.
const (
	ConditionDatastoreReady    = "DatastoreReady"
	ConditionControlPlaneReady = "ControlPlaneReady"
	ConditionSyncerAssigned    = "SyncerAssigned"
	ConditionReady             = "Ready"
)

// VirtualClusterStatus is what the operator observed.
type VirtualClusterStatus struct {
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Endpoint is the tenant API server's URL.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// AdminKubeconfigSecret is the Secret (this namespace) holding the
	// tenant's admin kubeconfig.
	// +optional
	AdminKubeconfigSecret string `json:"adminKubeconfigSecret,omitempty"`
	// SyncerShard owns the tenant.
	// +optional
	SyncerShard string `json:"syncerShard,omitempty"`
	// +optional
	Pods int32 `json:"pods,omitempty"`
	// +optional
	Nodes int32 `json:"nodes,omitempty"`
}
