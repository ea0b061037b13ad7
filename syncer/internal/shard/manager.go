// Package shard is a syncer shard: it serves the tenants of its registry,
// each with its own informers on the tenant API, its own host state from
// the bus and its own work queue, so nothing is shared between tenants but
// the host client and the bus connection.
//
// The main flow: Manager.Run joins the shard membership (package
// ownership), follows the shared host nodes, then twice a second
// reconciles its tenants: of the registry's tenants (reloaded every few
// seconds), those rendezvous hashing gives to this shard are acquired
// (a fenced lease) and served by a tenantSyncer (tenant.go); those it
// should not own any more, or whose lease it lost, are stopped and
// released. A tenantSyncer replays the tenant's host state from the
// stream before it writes anything, then reconciles pods (pods.go,
// tokens.go), services (services.go), ConfigMaps, Secrets and Endpoints
// (configs.go), policies (policies.go), virtual nodes (nodes.go) and
// events (events.go), with a drift patrol (patrol.go). A tenant with
// private nodes has its own host cluster, which its syncer watches and
// writes instead of the shared host and the bus (private.go).
package shard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"kplex.dev/api/bus"
	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/metrics"
	"kplex.dev/syncer/internal/natsbus"
	"kplex.dev/syncer/internal/ownership"
	"kplex.dev/syncer/internal/tenants"
)

// Manager runs a shard's tenants.
type Manager struct {
	HostConfig   *rest.Config
	Bus          *natsbus.Bus
	Log          *slog.Logger
	Shard        string        // this shard's name, unique among shards
	TenantsFiles []string      // registry files or directories (tenants.LoadAll)
	Workers      int           // per tenant
	Reload       time.Duration // registry reload period
	Patrol       time.Duration // drift patrol period (0: off)
	// MembershipTTL is how long a silent shard stays live; failover takes
	// about 1.5 times it.
	MembershipTTL time.Duration

	coord         *ownership.Coordinator
	nodes         *hostcache.Cache
	nodesReplayed chan struct{}
	mu            sync.Mutex
	running       map[string]*runningTenant
	registry      map[string]tenants.Tenant
	pending       map[string]tenants.Tenant // a changed registry read once
	// creds fingerprints each registered tenant's kubeconfig files: a
	// tenant whose credentials were rotated is restarted with them.
	creds   map[string]string
	loaded  time.Time
	loadErr error
}

type runningTenant struct {
	cfg    tenants.Tenant
	creds  string
	lease  *ownership.Lease
	syncer *tenantSyncer
	cancel context.CancelFunc
	done   chan struct{}
}

// Run serves tenants until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	m.nodes = hostcache.New()
	m.nodesReplayed = make(chan struct{})
	m.running = map[string]*runningTenant{}
	if m.Reload == 0 {
		m.Reload = 2 * time.Second
	}
	if m.MembershipTTL == 0 {
		m.MembershipTTL = 3 * time.Second
	}
	coord, err := ownership.New(ctx, m.Bus.JetStream(), m.Shard, m.MembershipTTL, m.Log)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.coord = coord
	m.mu.Unlock()
	cctx, stopMembership := context.WithCancel(context.Background())
	membershipDone := make(chan struct{})
	go func() {
		defer close(membershipDone)
		if err := coord.Run(cctx); err != nil {
			m.Log.Error("shard membership failed", "err", err)
		}
	}()
	defer func() { stopMembership(); <-membershipDone }()
	go func() {
		err := m.Bus.Follow(ctx, bus.TenantFilter(bus.SharedTenant), m.onNode, func() { close(m.nodesReplayed) })
		if err != nil && ctx.Err() == nil {
			m.Log.Error("following host nodes failed", "err", err)
		}
	}()
	select {
	case <-m.nodesReplayed:
	case <-ctx.Done():
		return nil
	}
	tick := time.NewTicker(m.MembershipTTL / 6)
	defer tick.Stop()
	for {
		if time.Since(m.loaded) >= m.Reload {
			m.reload()
		}
		m.reconcile(ctx)
		select {
		case <-ctx.Done():
			m.stopAll()
			return nil
		case <-tick.C:
		}
	}
}

func (m *Manager) onNode(d natsbus.Delivery) {
	if err := m.nodes.Apply(d); err != nil {
		m.Log.Warn("ignoring a host node change that does not decode", "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rt := range m.running {
		if rt.syncer.private != nil {
			continue // its nodes are its private cluster's
		}
		switch d.Key.Resource {
		case hostcache.Nodes:
			rt.syncer.onHostNode(d.Key.Name)
		case hostcache.StorageClasses, hostcache.IngressClasses:
			rt.syncer.onHostClass(d.Key.Resource, d.Key.Name)
		}
	}
}

// reload reads the registry. A registry that does not load keeps the
// last good one. A changed registry is applied only once a second read, a
// tick later, agrees: a file caught half-written (a truncated list parses
// as fewer tenants) would otherwise stop every tenant it lacks.
func (m *Manager) reload() {
	cfg, err := tenants.LoadAll(m.TenantsFiles)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loaded = time.Now()
	if err != nil && cfg != nil {
		// Some registrations did not load: serve the rest.
		if m.loadErr == nil || m.loadErr.Error() != err.Error() {
			m.Log.Error("some tenant registrations do not load; serving the others", "err", err)
		}
		m.loadErr = err
	} else if err != nil {
		if m.loadErr == nil || m.loadErr.Error() != err.Error() {
			m.Log.Error("cannot load the tenants file; keeping the tenants as they are", "err", err)
		}
		m.loadErr = err
		return
	}
	if err == nil {
		m.loadErr = nil
	}
	next := map[string]tenants.Tenant{}
	for _, t := range cfg.Tenants {
		next[t.Name] = t
	}
	if m.registry != nil && !reflect.DeepEqual(next, m.registry) && !reflect.DeepEqual(next, m.pending) {
		m.pending = next
		m.loaded = time.Time{} // read again at the next tick
		return
	}
	m.registry, m.pending = next, nil
	m.creds = map[string]string{}
	for name, t := range next {
		m.creds[name] = credentials(t)
	}
}

func (m *Manager) credsOf(tenant string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.creds[tenant]
}

// credentials fingerprints the tenant's kubeconfig files (the operator
// replaces them atomically when it rotates a certificate; the registration
// itself does not change). A file that cannot be read counts as empty:
// starting the tenant reports why.
func credentials(t tenants.Tenant) string {
	h := sha256.New()
	for _, p := range []string{t.Kubeconfig, t.HostKubeconfig} {
		if p != "" {
			b, _ := os.ReadFile(p)
			fmt.Fprintf(h, "%d:", len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// reconcile stops the tenants this shard should not serve (any more) and
// starts those it should and can acquire.
func (m *Manager) reconcile(ctx context.Context) {
	m.mu.Lock()
	registry := m.registry
	m.mu.Unlock()
	settled := m.coord.Settled()
	for name, rt := range m.snapshot() {
		why := ""
		t, listed := registry[name]
		select {
		case <-rt.done:
			why = "its sync stopped"
		case <-rt.lease.Lost():
			why = "lease lost"
		default:
			switch {
			case !listed:
				why = "removed from the registry"
			case !reflect.DeepEqual(t, rt.cfg):
				why = "settings changed"
			case m.credsOf(name) != rt.creds:
				why = "credentials changed"
			case settled && !m.coord.Desired(name):
				why = "another shard should own it"
			}
		}
		if why != "" {
			m.stop(ctx, name, rt, why)
		}
	}
	if !settled {
		return // not sure yet who is live: acquire nothing
	}
	// Acquire in parallel: a takeover waits TTL/2 per tenant, and a dead
	// shard's tenants should all move in that one wait.
	running := m.snapshot()
	var wg sync.WaitGroup
	for name, t := range registry {
		if _, ok := running[name]; ok || !m.coord.Desired(name) {
			continue
		}
		wg.Go(func() {
			lease, err := m.coord.TryAcquire(ctx, name)
			if errors.Is(err, ownership.ErrHeld) {
				return // its holder will release it
			}
			if err != nil {
				m.Log.Warn("cannot acquire tenant; retrying", "tenant", name, "err", err)
				return
			}
			m.start(ctx, t, lease)
		})
	}
	wg.Wait()
	m.mu.Lock()
	metrics.Tenants.Set(float64(len(m.running)))
	m.mu.Unlock()
}

func (m *Manager) snapshot() map[string]*runningTenant {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*runningTenant, len(m.running))
	for k, v := range m.running {
		out[k] = v
	}
	return out
}

func (m *Manager) start(ctx context.Context, t tenants.Tenant, lease *ownership.Lease) {
	ts, err := m.newTenantSyncer(t, lease)
	if err != nil {
		m.Log.Error("cannot serve tenant; retrying", "tenant", t.Name, "err", err)
		_ = lease.Release(ctx)
		return
	}
	tctx, cancel := context.WithCancel(ctx)
	rt := &runningTenant{cfg: t, creds: m.credsOf(t.Name), lease: lease, syncer: ts, cancel: cancel, done: make(chan struct{})}
	m.mu.Lock()
	m.running[t.Name] = rt
	m.mu.Unlock()
	epoch := strconv.FormatUint(lease.Epoch(), 10)
	metrics.Owned.WithLabelValues(t.Name, epoch).Set(1)
	m.Log.Info("serving tenant", "tenant", t.Name, "epoch", epoch)
	go func() {
		defer close(rt.done)
		if err := ts.run(tctx, max(m.Workers, 1), m.Patrol); err != nil && tctx.Err() == nil {
			m.Log.Error("tenant sync stopped; restarting it", "tenant", t.Name, "err", err)
		}
	}()
}

// newTenantSyncer builds the syncer of a tenant on the shared host, or on
// its private host cluster.
func (m *Manager) newTenantSyncer(t tenants.Tenant, lease *ownership.Lease) (*tenantSyncer, error) {
	if t.HostKubeconfig == "" {
		return newTenantSyncer(t, m.HostConfig, lease, m.Shard, m.nodes, m.Bus, m.Log)
	}
	cfg, err := privateHostConfig(t)
	if err != nil {
		return nil, err
	}
	ts, err := newTenantSyncer(t, cfg, lease, m.Shard, hostcache.New(), m.Bus, m.Log)
	if err != nil {
		return nil, err
	}
	return ts, ts.usePrivateHost(cfg)
}

// stop ends a tenant's sync, then releases its lease: the next owner
// starts only after this one stopped writing.
func (m *Manager) stop(ctx context.Context, name string, rt *runningTenant, why string) {
	m.Log.Info("stopping tenant", "tenant", name, "reason", why)
	rt.cancel()
	<-rt.done
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if err := rt.lease.Release(rctx); err != nil {
		m.Log.Warn("releasing the tenant failed; it moves when the lease lapses", "tenant", name, "err", err)
	}
	cancel()
	metrics.Owned.DeleteLabelValues(name, strconv.FormatUint(rt.lease.Epoch(), 10))
	m.mu.Lock()
	delete(m.running, name)
	m.mu.Unlock()
}

func (m *Manager) stopAll() {
	for name, rt := range m.snapshot() {
		m.stop(context.Background(), name, rt, "shutting down")
	}
}

// Ready reports whether the shard knows who is live and every tenant it
// owns has replayed its host state and synced its caches (tenants with
// private nodes aside: their clusters are their own).
func (m *Manager) Ready(*http.Request) error {
	m.mu.Lock()
	coord := m.coord
	m.mu.Unlock()
	if coord == nil || m.nodesReplayed == nil {
		return errors.New("shard: starting")
	}
	select {
	case <-m.nodesReplayed:
	default:
		return errors.New("shard: host nodes not replayed yet")
	}
	if !coord.Settled() {
		return errors.New("shard: learning which shards are live")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loadErr != nil {
		return m.loadErr
	}
	var waiting []string
	for name, t := range m.registry {
		if t.HostKubeconfig != "" {
			// A private cluster is its tenant's: one that does not answer
			// must not make the shard, serving everyone, unready.
			continue
		}
		if coord.Desired(name) {
			if rt, ok := m.running[name]; !ok || !rt.syncer.isReady() {
				waiting = append(waiting, name)
			}
		}
	}
	if len(waiting) > 0 {
		sort.Strings(waiting)
		return fmt.Errorf("shard: tenants not synced yet: %s", strings.Join(waiting, ", "))
	}
	if !m.Bus.Connected() {
		return errors.New("shard: nats disconnected")
	}
	return nil
}
