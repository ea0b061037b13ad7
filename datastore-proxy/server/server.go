// Package server is the proxy's etcd v3 gRPC surface, shared by every
// tenant.
//
// Each RPC finds its tenant from the verified client certificate (CN =
// tenant; identity.go) and is served by that tenant's kine KVServerBridge
// over a tenantbackend.Backend: kine translates the etcd API into backend
// calls, and the tenant backend confines them to the tenant's keyspace.
// Exceptions: the tenant backend serves Put itself (kv.go says why), on
// etcd a list is etcd's own answer with the keys rewritten, never decoded
// (rawlist.go), and a tenant's watch streams share one watch stream of the
// tenant's own (watchhub): on etcd, an etcd watch stream; on the SQL
// backends, one the proxy serves itself (localwatch). One file per
// service: kv.go, watch.go, lease.go, maintenance.go, cluster.go.
package server

import (
	"context"
	"sync"
	"time"

	kineserver "github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"

	"golang.org/x/time/rate"

	"kplex.dev/datastore-proxy/fairshare"
	"kplex.dev/datastore-proxy/keyspace"
	"kplex.dev/datastore-proxy/quota"
	"kplex.dev/datastore-proxy/tenantbackend"
	"kplex.dev/datastore-proxy/tenantconfig"
	"kplex.dev/datastore-proxy/watchhub"
)

// EmulatedETCDVersion is the etcd version the proxy reports.
const EmulatedETCDVersion = "3.6.0"

// Server serves every tenant from one shared backend.
type Server struct {
	backend        kineserver.Backend
	scheme         string
	notifyInterval time.Duration
	limits         *tenantconfig.Store
	onWatch        func(tenant string) (done func())
	onWatchRefused func(tenant string)
	onStall        func(tenant string)
	stallTimeout   time.Duration
	onSlotWait     func(tenant string, write bool, waited time.Duration)
	forgetAfter    time.Duration
	onForget       func(tenant string)
	fair           *fairshare.Scheduler
	fairWrites     *fairshare.Scheduler
	// draining ends when the proxy drains its watch streams (drain.go).
	draining context.Context
	drain    context.CancelCauseFunc

	mu       sync.Mutex
	tenants  map[string]*tenant
	limiters map[string]*rate.Limiter
	uses     map[string]*usage   // idle.go
	dormant  map[string]*dormant // idle.go

	etcdserverpb.UnsafeKVServer
	etcdserverpb.UnsafeWatchServer
	etcdserverpb.UnsafeLeaseServer
	etcdserverpb.UnsafeMaintenanceServer
	etcdserverpb.UnsafeClusterServer
}

// Options tune a Server.
type Options struct {
	// Scheme names the backend driver (kine uses it for driver-specific
	// behaviour).
	Scheme string
	// NotifyInterval is how often idle watches get progress notifications
	// on the SQL backends (localwatch; on etcd, etcd's own).
	NotifyInterval time.Duration
	// Limits are the tenants' quotas (nil: none).
	Limits *tenantconfig.Store
	// BackendSlots is how many reads run against the backend at once,
	// shared among tenants least recently served first (admission.go).
	BackendSlots int
	// WriteSlots is the same for writes (default: BackendSlots).
	WriteSlots int
	// TenantShare caps each tenant's running reads while other tenants
	// are active too; 0: no cap.
	TenantShare int
	// TenantWriteShare is the same for writes (0: TenantShare). A write in
	// flight delays every other tenant's requests in a store that syncs
	// writes to disk in batches (etcd's linearizable reads wait for the
	// raft round, and so the disk sync, of the writes in flight), so it is
	// kept small: a flood is held back by TenantBusyShare, not by this.
	TenantWriteShare int
	// TenantBusyShare, between 0 and 1, bounds the share of time a tenant
	// keeps backend slots busy while other tenants are active
	// (fairshare.Scheduler.WithBusyShare); 0: no bound.
	TenantBusyShare float64
	// OnWatch, if set, is told of every watch a tenant starts
	// (tenantbackend.Backend.OnWatch); it returns what to call when the
	// watch ends.
	OnWatch func(tenant string) (done func())
	// OnWatchRefused, if set, is told of every watch refused for the
	// tenant's maxWatches.
	OnWatchRefused func(tenant string)
	// WatchStallTimeout is how long a watch stream may take no
	// response while the tenant has another, before it is ended so that
	// the others go on (watchhub.Config.StallTimeout); 0: never.
	WatchStallTimeout time.Duration
	// OnWatchStreamStalled, if set, is told of every watch stream ended so.
	OnWatchStreamStalled func(tenant string)
	// OnSlotWait, if set, is told how long each request admitted (or
	// given up) waited for its backend slot: the fair share's queue.
	OnSlotWait func(tenant string, write bool, waited time.Duration)
	// ForgetIdle is how long a tenant may be idle, with no request and no
	// stream open, before the proxy forgets it (idle.go); 0: never.
	ForgetIdle time.Duration
	// OnForget, if set, is told of every tenant forgotten so.
	OnForget func(tenant string)
}

// New returns a server over a started backend.
func New(backend kineserver.Backend, o Options) *Server {
	if o.Limits == nil {
		o.Limits = &tenantconfig.Store{}
	}
	if o.BackendSlots == 0 {
		o.BackendSlots = 32
	}
	if o.WriteSlots == 0 {
		o.WriteSlots = o.BackendSlots
	}
	if o.TenantWriteShare == 0 {
		o.TenantWriteShare = o.TenantShare
	}
	activity := fairshare.NewActivity() // a tenant reading counts as active for writes too
	draining, drain := context.WithCancelCause(context.Background())
	return &Server{
		draining: draining, drain: drain,
		backend: backend, scheme: o.Scheme, notifyInterval: o.NotifyInterval,
		limits: o.Limits, onWatch: o.OnWatch, onWatchRefused: o.OnWatchRefused, onStall: o.OnWatchStreamStalled, stallTimeout: o.WatchStallTimeout, onSlotWait: o.OnSlotWait, forgetAfter: o.ForgetIdle, onForget: o.OnForget, fair: fairshare.New(o.BackendSlots, o.TenantShare, activity).WithBusyShare(o.TenantBusyShare), fairWrites: fairshare.New(o.WriteSlots, o.TenantWriteShare, activity).WithBusyShare(o.TenantBusyShare),
		tenants: map[string]*tenant{}, limiters: map[string]*rate.Limiter{}, uses: map[string]*usage{}, dormant: map[string]*dormant{},
	}
}

// Register adds the etcd services to a gRPC server.
func (s *Server) Register(g *grpc.Server) {
	etcdserverpb.RegisterKVServer(g, s)
	etcdserverpb.RegisterWatchServer(g, s)
	etcdserverpb.RegisterLeaseServer(g, s)
	etcdserverpb.RegisterMaintenanceServer(g, s)
	etcdserverpb.RegisterClusterServer(g, s)
}

// Usage reports the stored keys and bytes of every tenant whose usage has
// been counted.
func (s *Server) Usage() map[string][2]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][2]int64, len(s.tenants))
	for t, st := range s.tenants {
		if k, b, ok := st.usage.Snapshot(); ok {
			out[t] = [2]int64{k, b}
		}
	}
	return out
}

// tenant is what the proxy keeps of one tenant: kine's bridge over the
// tenant's view of the backend, and the usage counted for its quota.
type tenant struct {
	bridge  *kineserver.KVServerBridge
	backend *tenantbackend.Backend
	usage   *quota.Usage
	hub     *watchhub.Hub // the tenant's watch streams
	// admitWatch holds up or refuses a watch create request for the
	// tenant's request rate: a watch from a revision reads the store's
	// history (watch.go, watchhub.Config.Admit).
	admitWatch func(ctx context.Context) error
}

// bridge returns the caller's tenant bridge.
func (s *Server) bridge(ctx context.Context) (*kineserver.KVServerBridge, error) {
	st, err := s.tenant(ctx)
	if err != nil {
		return nil, err
	}
	return st.bridge, nil
}

// tenant returns the caller's tenant, set up at its first call.
func (s *Server) tenant(ctx context.Context) (*tenant, error) {
	name, err := TenantFromContext(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.tenants[name]; ok {
		return st, nil
	}
	space, err := keyspace.ForTenant(name)
	if err != nil {
		return nil, err
	}
	u := &quota.Usage{}
	if d := s.dormant[name]; d != nil { // forgotten lately (idle.go)
		u = d.usage
		delete(s.dormant, name)
	}
	limits := func() tenantconfig.Limits { return s.limits.For(name) }
	tb := tenantbackend.New(s.backend, space, limits, u)
	if s.onWatch != nil {
		tb.OnWatch = func() func() { return s.onWatch(name) }
	}
	if s.onWatchRefused != nil {
		tb.OnWatchRefused = func() { s.onWatchRefused(name) }
	}
	st := &tenant{bridge: kineserver.New(tb, s.scheme, s.notifyInterval, EmulatedETCDVersion), backend: tb, usage: u,
		admitWatch: func(ctx context.Context) error { return s.rateLimit(ctx, name) }}
	tb.ProgressInterval = s.notifyInterval
	tb.AdmitCatchUp = func(ctx context.Context) (func(), error) { return s.slot(ctx, name, false) }
	cfg := watchhub.Config{Tenant: tb, Range: createRange, FixKV: compactKeyAsAPI, StallTimeout: s.stallTimeout, Admit: st.admitWatch}
	if s.onStall != nil {
		cfg.OnStall = func() { s.onStall(name) }
	}
	st.hub = watchhub.New(cfg)
	s.tenants[name] = st
	return st, nil
}
