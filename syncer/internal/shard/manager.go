// Package shard is a syncer shard: it serves the tenants of its registry,
// each with its own informers on the tenant API, its own host state from
// the bus and its own work queue, so nothing is shared between tenants but
// the host client and the bus connection.
//
// The main flow: Manager.Run follows the shared host nodes, then reloads
// the tenant registry every few seconds, starting a tenantSyncer
// (tenant.go) for each new tenant and stopping removed ones. A
// tenantSyncer replays the tenant's host state from the stream before it
// writes anything, then reconciles pods (pods.go, tokens.go), services
// (services.go), ConfigMaps, Secrets and Endpoints (configs.go) and
// virtual nodes (nodes.go).
package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/bus"
	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/metrics"
	"kplex.dev/syncer/internal/natsbus"
	"kplex.dev/syncer/internal/tenants"
)

// Manager runs a shard's tenants.
type Manager struct {
	Host        kubernetes.Interface
	Bus         *natsbus.Bus
	Log         *slog.Logger
	TenantsFile string
	Workers     int           // per tenant
	Reload      time.Duration // registry reload period
	Patrol      time.Duration // drift patrol period (0: off)

	nodes         *hostcache.Cache
	nodesReplayed chan struct{}
	mu            sync.Mutex
	running       map[string]*runningTenant
	loadErr       error
}

type runningTenant struct {
	cfg    tenants.Tenant
	syncer *tenantSyncer
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Run serves tenants until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	m.nodes = hostcache.New()
	m.nodesReplayed = make(chan struct{})
	m.running = map[string]*runningTenant{}
	if m.Reload == 0 {
		m.Reload = 2 * time.Second
	}
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
	tick := time.NewTicker(m.Reload)
	defer tick.Stop()
	for {
		m.reload(ctx)
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
		rt.syncer.onHostNode(d.Key.Name)
	}
}

// reload applies the registry: new tenants start, removed ones stop,
// changed ones restart. A registry that does not load keeps the tenants
// running as they are.
func (m *Manager) reload(ctx context.Context) {
	cfg, err := tenants.Load(m.TenantsFile)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.loadErr == nil || m.loadErr.Error() != err.Error() {
			m.Log.Error("cannot load the tenants file; keeping the tenants as they are", "err", err)
		}
		m.loadErr = err
		return
	}
	m.loadErr = nil
	want := map[string]tenants.Tenant{}
	for _, t := range cfg.Tenants {
		want[t.Name] = t
	}
	for name, rt := range m.running {
		select {
		case <-rt.done:
			// It stopped on its own (an error): start it again below.
			delete(m.running, name)
			continue
		default:
		}
		if t, ok := want[name]; !ok || !reflect.DeepEqual(t, rt.cfg) {
			m.Log.Info("stopping tenant", "tenant", name, "reason", map[bool]string{true: "settings changed", false: "removed from the registry"}[ok])
			rt.cancel()
			<-rt.done
			delete(m.running, name)
		}
	}
	for name, t := range want {
		if _, ok := m.running[name]; ok {
			continue
		}
		ts, err := newTenantSyncer(t, m.Host, m.nodes, m.Bus, m.Log)
		if err != nil {
			m.Log.Error("cannot serve tenant; retrying at the next reload", "tenant", name, "err", err)
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		rt := &runningTenant{cfg: t, syncer: ts, cancel: cancel, done: make(chan struct{})}
		m.running[name] = rt
		m.Log.Info("serving tenant", "tenant", name)
		go func() {
			defer close(rt.done)
			if err := ts.run(tctx, max(m.Workers, 1), m.Patrol); err != nil && tctx.Err() == nil {
				rt.err = err
				m.Log.Error("tenant sync stopped; restarting it at the next reload", "tenant", name, "err", err)
			}
		}()
	}
	metrics.Tenants.Set(float64(len(m.running)))
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rt := range m.running {
		rt.cancel()
	}
	for name, rt := range m.running {
		<-rt.done
		delete(m.running, name)
	}
}

// Ready reports whether every registered tenant has replayed its host
// state and synced its caches.
func (m *Manager) Ready(*http.Request) error {
	if m.nodesReplayed == nil {
		return errors.New("shard: starting")
	}
	select {
	case <-m.nodesReplayed:
	default:
		return errors.New("shard: host nodes not replayed yet")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loadErr != nil {
		return m.loadErr
	}
	var waiting []string
	for name, rt := range m.running {
		if !rt.syncer.isReady() {
			waiting = append(waiting, name)
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
