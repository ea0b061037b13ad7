// Package server is the proxy's etcd v3 gRPC surface, shared by every
// tenant.
//
// Each RPC finds its tenant from the verified client certificate (CN =
// tenant; identity.go) and is served by that tenant's kine KVServerBridge
// over a tenantbackend.Backend: kine translates the etcd API into backend
// calls, and the tenant backend confines them to the tenant's keyspace.
// One file per service: kv.go, watch.go, lease.go, maintenance.go,
// cluster.go.
package server

import (
	"context"
	"sync"
	"time"

	kineserver "github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"

	"kplex.dev/datastore-proxy/keyspace"
	"kplex.dev/datastore-proxy/tenantbackend"
)

// EmulatedETCDVersion is the etcd version the proxy reports.
const EmulatedETCDVersion = "3.6.0"

// Server serves every tenant from one shared backend.
type Server struct {
	backend        kineserver.Backend
	scheme         string
	notifyInterval time.Duration

	mu      sync.Mutex
	tenants map[string]*kineserver.KVServerBridge

	etcdserverpb.UnsafeKVServer
	etcdserverpb.UnsafeWatchServer
	etcdserverpb.UnsafeLeaseServer
	etcdserverpb.UnsafeMaintenanceServer
	etcdserverpb.UnsafeClusterServer
}

// New returns a server over a started backend. scheme names the backend
// driver (kine uses it for driver-specific behaviour); notifyInterval is
// how often idle watches get progress notifications.
func New(backend kineserver.Backend, scheme string, notifyInterval time.Duration) *Server {
	return &Server{backend: backend, scheme: scheme, notifyInterval: notifyInterval, tenants: map[string]*kineserver.KVServerBridge{}}
}

// Register adds the etcd services to a gRPC server.
func (s *Server) Register(g *grpc.Server) {
	etcdserverpb.RegisterKVServer(g, s)
	etcdserverpb.RegisterWatchServer(g, s)
	etcdserverpb.RegisterLeaseServer(g, s)
	etcdserverpb.RegisterMaintenanceServer(g, s)
	etcdserverpb.RegisterClusterServer(g, s)
}

// Tenants returns the tenants seen since start.
func (s *Server) Tenants() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.tenants))
	for t := range s.tenants {
		out = append(out, t)
	}
	return out
}

// bridge returns the caller's tenant bridge.
func (s *Server) bridge(ctx context.Context) (*kineserver.KVServerBridge, error) {
	tenant, err := TenantFromContext(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.tenants[tenant]; ok {
		return b, nil
	}
	space, err := keyspace.ForTenant(tenant)
	if err != nil {
		return nil, err
	}
	b := kineserver.New(tenantbackend.New(s.backend, space), s.scheme, s.notifyInterval, EmulatedETCDVersion)
	s.tenants[tenant] = b
	return b, nil
}
