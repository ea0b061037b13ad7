package shard

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kplex.dev/api/bus"
	"kplex.dev/api/registry"
	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/natsbus"
	"kplex.dev/syncer/internal/relay"
	"kplex.dev/syncer/internal/tenants"
)

// A tenant with private nodes (tenants.Tenant.HostKubeconfig) has its own
// host cluster: its host namespace, pods, services and the rest are
// written there, and its virtual nodes mirror that cluster's nodes. No
// other shard needs that cluster's state, so the shard that owns the
// tenant watches it itself: an in-process relay (package relay), limited
// to the tenant's host namespace plus the cluster's nodes and classes,
// hands every change straight to the tenant's syncer instead of the bus.
// The shared host's load does not change, and each private cluster has
// one watcher: its tenant's owner.

// privateHostConfig reads the tenant's private host cluster's kubeconfig.
// It must carry its credentials inline (registry.CheckHostKubeconfig): it
// comes from the VirtualCluster's creator.
func privateHostConfig(t tenants.Tenant) (*rest.Config, error) {
	b, err := os.ReadFile(t.HostKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: private host kubeconfig: %w", t.Name, err)
	}
	if err := registry.CheckHostKubeconfig(b); err != nil {
		return nil, fmt.Errorf("tenant %s: private host kubeconfig %s: %w", t.Name, t.HostKubeconfig, err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: private host kubeconfig: %w", t.Name, err)
	}
	HostClientConfig(cfg)
	return cfg, nil
}

// usePrivateHost makes the syncer read its host state from its private
// cluster (cfg) rather than from the bus.
func (s *tenantSyncer) usePrivateHost(cfg *rest.Config) error {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("tenant %s: private host client: %w", s.cfg.Name, err)
	}
	s.private = relay.New(c, privateSink{s}, s.log.With("relay", "private"), 2, s.hostNS)
	return nil
}

// followHost delivers the tenant's host state to onHost (and the host
// nodes of a private cluster to onHostNode), closing replayed once the
// current state has been delivered, until ctx ends.
func (s *tenantSyncer) followHost(ctx context.Context, replayed chan struct{}) {
	if s.private == nil {
		err := s.bus.Follow(ctx, bus.TenantFilter(s.cfg.Name), s.onHost, func() { close(replayed) })
		if err != nil && ctx.Err() == nil {
			s.log.Error("following the tenant's host state failed", "err", err)
		}
		return
	}
	go func() {
		select {
		case <-s.private.Synced():
			close(replayed)
		case <-ctx.Done():
		}
	}()
	if err := s.private.Run(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("watching the tenant's private host cluster failed", "err", err)
	}
}

// privateSink is a private host cluster's relay output: the tenant's own
// objects go to its syncer, the cluster's nodes and classes to its nodes
// cache. Other tenants' objects (two tenants may share one private
// cluster) are not this syncer's business.
type privateSink struct{ s *tenantSyncer }

func (p privateSink) Publish(_ context.Context, k bus.Key, m bus.Message, hdr nats.Header) error {
	d := natsbus.Delivery{Key: k, Message: m, Header: hdr}
	switch k.Tenant {
	case bus.SharedTenant:
		if err := p.s.nodes.Apply(d); err != nil {
			p.s.log.Warn("ignoring a private host node change that does not decode", "err", err)
			return nil
		}
		switch k.Resource {
		case hostcache.Nodes:
			p.s.onHostNode(k.Name)
		case hostcache.StorageClasses, hostcache.IngressClasses:
			p.s.onHostClass(k.Resource, k.Name)
		}
	case p.s.cfg.Name:
		p.s.onHost(d)
	}
	return nil
}
