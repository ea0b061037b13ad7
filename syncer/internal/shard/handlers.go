package shard

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/metrics"
	"kplex.dev/syncer/internal/natsbus"
	"kplex.dev/syncer/internal/translate"
)

// handler enqueues virtual changes: the object itself and what depends on
// it (a pod's ConfigMaps, Secrets and node).
func (s *tenantSyncer) handler(kind string) cache.ResourceEventHandler {
	add := func(o any) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		m, ok := o.(metav1.Object)
		if !ok {
			return
		}
		s.queue.Add(key{kind, m.GetNamespace(), m.GetName()})
		if kind == kindService || kind == kindEndpoints {
			if len(s.exportsOf(m.GetNamespace(), m.GetName())) > 0 {
				s.queue.Add(key{kindExport, m.GetNamespace(), m.GetName()})
			}
			if _, ok := s.importOf(m.GetNamespace(), m.GetName()); ok {
				s.queue.Add(key{kindImport, m.GetNamespace(), m.GetName()})
			}
		}
		if p, ok := o.(*corev1.Pod); ok {
			s.enqueuePodDeps(p)
		}
		if ing, ok := o.(*networkingv1.Ingress); ok {
			for _, n := range translate.IngressSecrets(ing) {
				s.queue.Add(key{kindSecret, ing.Namespace, n})
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: add,
		UpdateFunc: func(old, cur any) {
			if p, ok := old.(*corev1.Pod); ok && p.Spec.NodeName != cur.(*corev1.Pod).Spec.NodeName {
				s.enqueuePodDeps(p)
			}
			add(cur)
		},
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				s.tokens.Delete(p.UID)
			}
			add(o)
		},
	}
}

func (s *tenantSyncer) enqueuePodDeps(p *corev1.Pod) {
	refs := translate.PodReferences(&p.Spec)
	for _, n := range refs.ConfigMaps {
		s.queue.Add(key{kindConfigMap, p.Namespace, n})
	}
	for _, n := range refs.Secrets {
		s.queue.Add(key{kindSecret, p.Namespace, n})
	}
	if p.Spec.NodeName != "" {
		s.queue.Add(key{kindNode, "", p.Spec.NodeName})
	}
}

// onHost records a host change from the bus and enqueues the virtual
// object it belongs to.
func (s *tenantSyncer) onHost(d natsbus.Delivery) {
	ctx := otel.GetTextMapPropagator().Extract(context.Background(), propagation.HeaderCarrier(d.Header))
	_, span := otel.Tracer("kplex.dev/syncer/shard").Start(ctx, "shard.host-change")
	span.SetAttributes(attribute.String("kplex.tenant", s.cfg.Name), attribute.String("kplex.resource", d.Key.Resource),
		attribute.String("kplex.namespace", d.Key.Namespace), attribute.String("kplex.name", d.Key.Name))
	defer span.End()
	if d.Key.Resource == natsbus.EventsResource {
		s.hostEvent(d)
		return
	}
	if err := s.hostObjs.Apply(d); err != nil {
		s.log.Warn("ignoring a host change that does not decode", "err", err)
		return
	}
	metrics.HostEvents.WithLabelValues(s.cfg.Name, d.Key.Resource).Inc()
	kind := d.Key.Resource
	if kind == hostcache.PodTokens {
		kind = kindPod
	}
	// A host write this change calls for is a repair: kplex's own writes
	// come back converged.
	k := key{kind, d.Key.Namespace, d.Key.Name}
	s.drift.Store(k, struct{}{})
	s.queue.Add(k)
}

// onHostNode is called for every host node change.
func (s *tenantSyncer) onHostNode(name string) {
	if !s.isReady() {
		return
	}
	if objs, _ := s.podIndex.ByIndex(indexNode, name); len(objs) > 0 {
		s.queue.Add(key{kindNode, "", name})
		return
	}
	if _, err := s.vnodes.Get(name); err == nil {
		s.queue.Add(key{kindNode, "", name})
	}
}

func podRefs(o any) ([]string, error) {
	p, ok := o.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("not a pod: %T", o)
	}
	if terminal(p) {
		return nil, nil
	}
	refs := translate.PodReferences(&p.Spec)
	out := make([]string, 0, len(refs.ConfigMaps)+len(refs.Secrets))
	for _, n := range refs.ConfigMaps {
		out = append(out, kindConfigMap+"/"+p.Namespace+"/"+n)
	}
	for _, n := range refs.Secrets {
		out = append(out, kindSecret+"/"+p.Namespace+"/"+n)
	}
	return out, nil
}

func podNode(o any) ([]string, error) {
	p, ok := o.(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" {
		return nil, nil
	}
	return []string{p.Spec.NodeName}, nil
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func dropManagedFields(o any) (any, error) {
	if m, ok := o.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return o, nil
}
