// Package runtime is where a tenant's control plane runs. The operator
// reconciles through this interface only; implementations place the
// apiserver and controller manager (and the optional scheduler) as child
// processes (process, local mode and tests) or as host Deployments
// (kube, production).
//
// Every method is idempotent and safe to call after a crash at any point:
// implementations keep what they need to find a tenant's control plane
// again (pid files, host objects), never only in memory.
package runtime

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
)

// Components of a tenant's control plane.
const (
	APIServer         = "apiserver"
	ControllerManager = "controller-manager"
	Scheduler         = "scheduler"
)

// Tenant is what a runtime needs to run one tenant's control plane.
type Tenant struct {
	Name string
	// PKI is the tenant's PKI Secret data (see tenantpki).
	PKI map[string][]byte
	// DatastoreEndpoints are the datastore-proxy's URLs and
	// DatastoreServerCA the CA its serving certificate chains to.
	DatastoreEndpoints []string
	DatastoreServerCA  []byte
	ServiceCIDR        string
	Scheduler          bool
	// Sizes of the components (runtimes that cannot apply replicas or
	// resources, like process, run one replica as is).
	APIServer, ControllerManager, SchedulerSize Size
}

// Size is one component's replicas and per-replica resources.
type Size struct {
	Replicas  int32 // 0 means 1
	Resources corev1.ResourceRequirements
}

// ReplicasOr1 is the replica count, 1 when unset.
func (s Size) ReplicasOr1() int32 {
	if s.Replicas <= 0 {
		return 1
	}
	return s.Replicas
}

// Runtime runs tenants' control planes.
type Runtime interface {
	// Endpoint returns the URL clients reach the tenant's API server at,
	// reserving it on first use; it is stable across calls and restarts.
	Endpoint(ctx context.Context, tenant string) (string, error)
	// Hosts are the names and addresses, besides the endpoint's host, that
	// the tenant's serving certificate must carry for this runtime (e.g.
	// in-cluster Service names).
	Hosts(tenant string) []string
	// Ensure starts whatever of the control plane is not running (and
	// restarts what died, or what runs with outdated files). It returns
	// ErrQueued when the tenant must wait for others to finish starting.
	Ensure(ctx context.Context, t Tenant) error
	// Ready returns nil when every component answers its health check,
	// else an error saying which is not ready and why.
	Ready(ctx context.Context, tenant string) error
	// Stop stops the control plane and keeps its reservation and files
	// (pause).
	Stop(ctx context.Context, tenant string) error
	// Remove stops the control plane and removes everything the runtime
	// holds for the tenant.
	Remove(ctx context.Context, tenant string) error
}

// ErrQueued means the control plane waits for a start slot: call Ensure
// again shortly.
var ErrQueued = errors.New("queued behind other control planes that are starting")
