package relay

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"kplex.dev/api/bus"
	"kplex.dev/api/naming"
	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/metrics"
	"kplex.dev/syncer/internal/natsbus"
)

// relayEvents forwards host Events about tenants' pods and Services (the
// scheduler's FailedScheduling, a kubelet's pulls and probes...) with the
// involved object rewritten to the virtual one. Events are not cached: one
// plain watch from "now", filtered to tenant host namespaces; an Event
// missed while the relay was down is not replayed (Events are best effort
// in Kubernetes too).
func (r *Relay) relayEvents(ctx context.Context) error {
	events := r.host.CoreV1().Events(r.namespace)
	list, err := events.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return fmt.Errorf("relay: list host events: %w", err)
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return events.Watch(ctx, o)
		},
	})
	if err != nil {
		return fmt.Errorf("relay: watch host events: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			if e, ok := ev.Object.(*corev1.Event); ok {
				r.forwardEvent(ctx, e)
			}
		}
	}
}

// forwardEvent publishes e if it is about a tenant's pod or Service.
func (r *Relay) forwardEvent(ctx context.Context, e *corev1.Event) {
	tenant, ok := naming.TenantOfHostNamespace(e.InvolvedObject.Namespace)
	if !ok {
		return
	}
	var store cache.Store
	switch e.InvolvedObject.Kind {
	case "Pod":
		store = r.stores[hostcache.Pods]
	case "Service":
		store = r.stores[hostcache.Services]
	default:
		return
	}
	item, exists, err := store.GetByKey(e.InvolvedObject.Namespace + "/" + e.InvolvedObject.Name)
	if err != nil || !exists {
		return
	}
	m, ok := item.(metav1.Object)
	if !ok || m.GetUID() != e.InvolvedObject.UID {
		return
	}
	id, ok := naming.IdentityOf(m.GetLabels(), m.GetAnnotations())
	if !ok || id.Tenant != tenant {
		return
	}
	out := e.DeepCopy()
	out.ManagedFields = nil
	out.InvolvedObject.Namespace = id.Namespace
	out.InvolvedObject.Name = id.Name
	out.InvolvedObject.UID = types.UID(m.GetAnnotations()[naming.AnnotationUID])
	out.InvolvedObject.ResourceVersion = ""
	// Messages name the host object ("Successfully assigned
	// kplex-demo/web-x-default-7 to node-1"): name the virtual one instead.
	out.Message = strings.ReplaceAll(out.Message, m.GetNamespace()+"/"+m.GetName(), id.Namespace+"/"+id.Name)
	key := bus.Key{Tenant: tenant, Resource: natsbus.EventsResource, Namespace: id.Namespace, Name: e.Name}
	msg := bus.Message{Type: bus.Upserted, ResourceVersion: e.ResourceVersion, Object: encode(out)}
	for attempt := 0; ; attempt++ {
		err := r.send(ctx, key, msg)
		if err == nil || ctx.Err() != nil || attempt == 5 {
			if err != nil {
				metrics.RelayErrors.WithLabelValues(natsbus.EventsResource).Inc()
				r.log.Warn("dropping a host event the bus did not take", "tenant", tenant, "event", e.Name, "err", err)
			}
			return
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}
