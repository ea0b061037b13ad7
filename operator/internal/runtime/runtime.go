// Package runtime is where a tenant's control plane runs. The operator
// reconciles through this interface only; implementations place the
// apiserver and controller manager (and the optional scheduler) as child
// processes (process) or, later, as host Deployments (kubernetes).
//
// Every method is idempotent and safe to call after a crash at any point:
// implementations keep what they need to find a tenant's control plane
// again (pid files, host objects), never only in memory.
package runtime

import (
	"context"
	"errors"
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
}

// Runtime runs tenants' control planes.
type Runtime interface {
	// Endpoint returns the URL clients reach the tenant's API server at,
	// reserving it on first use; it is stable across calls and restarts.
	Endpoint(ctx context.Context, tenant string) (string, error)
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
