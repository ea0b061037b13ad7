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
// in Kubernetes too). An Event read before the relay's cache holds its
// object waits in held for the cache to catch up.
func (r *Relay) relayEvents(ctx context.Context, held *heldEvents) error {
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
	tick := time.NewTicker(eventRetryEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			if held.len() == 0 {
				continue
			}
			for _, e := range held.retry(now, func(e *corev1.Event) bool { return r.forwardEvent(ctx, e) }) {
				r.dropEvent(e, "object-not-cached")
			}
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			e, ok := ev.Object.(*corev1.Event)
			if !ok {
				continue
			}
			held.supersede(e)
			if !r.forwardEvent(ctx, e) {
				if dropped := held.hold(e, time.Now()); dropped != nil {
					r.dropEvent(dropped, "too-many-waiting")
				}
			}
		}
	}
}

const (
	// eventWait is how long an Event waits for its object to reach the
	// relay's cache; eventHoldLimit is how many may wait at once.
	eventWait       = 10 * time.Second
	eventHoldLimit  = 10000
	eventRetryEvery = 250 * time.Millisecond
)

// forwardEvent publishes e if it is about a tenant's pod or Service. It
// returns false when the relay's cache does not hold that object (yet),
// or holds another object of that name: e may be tried again later. Any
// other outcome (published, not a tenant's, given up after retries) is
// final.
func (r *Relay) forwardEvent(ctx context.Context, e *corev1.Event) bool {
	tenant, ok := naming.TenantOfHostNamespace(e.InvolvedObject.Namespace)
	if !ok {
		return true
	}
	var store cache.Store
	switch e.InvolvedObject.Kind {
	case "Pod":
		store = r.stores[hostcache.Pods]
	case "Service":
		store = r.stores[hostcache.Services]
	default:
		return true
	}
	item, exists, err := store.GetByKey(e.InvolvedObject.Namespace + "/" + e.InvolvedObject.Name)
	if err != nil || !exists {
		return false
	}
	m, ok := item.(metav1.Object)
	if !ok || m.GetUID() != e.InvolvedObject.UID {
		return false
	}
	id, ok := naming.IdentityOf(m.GetLabels(), m.GetAnnotations())
	if !ok || id.Tenant != tenant {
		return true
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
			return true
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

// dropEvent counts (and logs, at debug level) a host Event given up on
// before it was published.
func (r *Relay) dropEvent(e *corev1.Event, reason string) {
	metrics.RelayEventsDropped.WithLabelValues(reason).Inc()
	tenant, _ := naming.TenantOfHostNamespace(e.InvolvedObject.Namespace)
	r.log.Debug("dropping a host event", "tenant", tenant, "event", e.Name, "kind", e.InvolvedObject.Kind,
		"object", e.InvolvedObject.Name, "reason", reason)
}
