package shard

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"

	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/metrics"
)

// The drift patrol: every interval, every virtual object and every host
// object of the tenant is reconciled again, so whatever was changed on the
// host behind kplex's back is put back (a host spec restored from the
// virtual one, a host copy whose virtual object is gone deleted) even when
// no event says so. Reconciles the patrol asked for, and those a host-side
// change asked for, count the host writes they make; those that wrote
// repaired something, which is reported in
// kplex_syncer_patrol_repairs_total, the log and an Event on the virtual
// object. Only kplex-managed host objects are ever visited: the patrol
// walks the relay's view, which holds nothing else.

// HostClientConfig sets what every host client of the syncer uses (the
// shared host's and private clusters'): its rate, its user agent, and
// counting its writes (CountWrites).
func HostClientConfig(cfg *rest.Config) {
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.UserAgent = "kplex-syncer"
	CountWrites(cfg)
}

// CountWrites makes a host client count its mutating requests on the
// counter its request's context carries (see next).
func CountWrites(cfg *rest.Config) {
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return writeCounter{rt} })
}

type writesKey struct{}

type writeCounter struct{ next http.RoundTripper }

func (w writeCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if c, ok := r.Context().Value(writesKey{}).(*atomic.Int64); ok {
			c.Add(1)
		}
	}
	return w.next.RoundTrip(r)
}

// patrol runs a pass every interval until ctx ends.
func (s *tenantSyncer) patrol(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.patrolPass()
		}
	}
}

func (s *tenantSyncer) patrolPass() {
	s.enqueueClasses()
	s.enqueueExports()
	visit := func(k key) {
		s.drift.Store(k, struct{}{})
		s.queue.Add(k)
	}
	everything := labels.Everything()
	if pods, err := s.pods.List(everything); err == nil {
		for _, p := range pods {
			visit(key{kindPod, p.Namespace, p.Name})
		}
	}
	if svcs, err := s.services.List(everything); err == nil {
		for _, v := range svcs {
			visit(key{kindService, v.Namespace, v.Name})
		}
	}
	// Optional resources the tenant does not sync have no lister; their
	// host copies are still visited below (and removed).
	if s.netpols != nil {
		if nps, err := s.netpols.List(everything); err == nil {
			for _, v := range nps {
				visit(key{kindNetPol, v.Namespace, v.Name})
			}
		}
	}
	if s.pdbs != nil {
		if pdbs, err := s.pdbs.List(everything); err == nil {
			for _, v := range pdbs {
				visit(key{kindPDB, v.Namespace, v.Name})
			}
		}
	}
	if s.pvcs != nil {
		if pvcs, err := s.pvcs.List(everything); err == nil {
			for _, v := range pvcs {
				visit(key{kindPVC, v.Namespace, v.Name})
			}
		}
	}
	if s.ingresses != nil {
		if ings, err := s.ingresses.List(everything); err == nil {
			for _, v := range ings {
				visit(key{kindIngress, v.Namespace, v.Name})
			}
		}
	}
	for res, kind := range map[string]string{
		hostcache.Pods: kindPod, hostcache.Services: kindService, hostcache.ConfigMaps: kindConfigMap,
		hostcache.Secrets: kindSecret, hostcache.Endpoints: kindEndpoints,
		hostcache.NetworkPolicies: kindNetPol, hostcache.PodDisruptionBudgets: kindPDB, hostcache.Ingresses: kindIngress,
		hostcache.PersistentVolumeClaims: kindPVC,
	} {
		for _, id := range s.hostObjs.Names(res) {
			ns, name, _ := splitID(id)
			visit(key{kind, ns, name})
		}
	}
}

// reportRepair records that a patrolled reconcile wrote to the host.
func (s *tenantSyncer) reportRepair(k key) {
	metrics.PatrolRepairs.WithLabelValues(s.cfg.Name, k.kind).Inc()
	s.log.Info("drift patrol repaired a host object", "kind", k.kind, "namespace", k.ns, "name", k.name)
	kind := map[string][2]string{
		kindPod: {"Pod", "v1"}, kindService: {"Service", "v1"}, kindConfigMap: {"ConfigMap", "v1"}, kindSecret: {"Secret", "v1"},
		kindEndpoints: {"Endpoints", "v1"}, kindNetPol: {"NetworkPolicy", "networking.k8s.io/v1"}, kindPDB: {"PodDisruptionBudget", "policy/v1"},
		kindIngress: {"Ingress", "networking.k8s.io/v1"}, kindPVC: {"PersistentVolumeClaim", "v1"},
	}[k.kind]
	if kind[0] == "" || s.recorder == nil {
		return
	}
	ref := &corev1.ObjectReference{Kind: kind[0], APIVersion: kind[1], Namespace: k.ns, Name: k.name}
	s.recorder.Event(ref, corev1.EventTypeNormal, "DriftRepaired", "kplex found the host copy changed or missing and restored it")
}

func splitID(id string) (ns, name string, ok bool) {
	for i := 0; i < len(id); i++ {
		if id[i] == '/' {
			return id[:i], id[i+1:], true
		}
	}
	return "", id, false
}
