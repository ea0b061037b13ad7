// Package relay is the host relay: the ONE watch on kplex-managed host
// objects (and host nodes), publishing each object's latest state to the
// bus. Shards never watch the host; host API load does not grow with
// shards or tenants.
//
// Publishing is level-based: a change enqueues the object's key, and a
// worker publishes what the informer holds for it then (Upserted) or that
// it is gone (Deleted). A failed publish is retried with backoff, and a
// burst of changes to one object coalesces into one message. On start the
// relay reads the stream's last values and publishes Deleted for objects
// removed while it was down, and skips objects whose resourceVersion the
// stream already has.
//
// The same relay, limited to one host namespace, watches a tenant's
// private host cluster (private nodes) for the shard that owns the tenant,
// and hands each change to that tenant's syncer instead of the bus (Sink).
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"kplex.dev/api/bus"
	"kplex.dev/api/naming"
	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/metrics"
	"kplex.dev/syncer/internal/natsbus"
)

// Sink takes what the relay publishes: the bus (natsbus.Bus), or, for a
// tenant's private host cluster, that tenant's syncer directly. A Publish
// that fails is retried with backoff.
type Sink interface {
	Publish(ctx context.Context, key bus.Key, msg bus.Message, hdr nats.Header) error
}

// Relay publishes host changes.
type Relay struct {
	host    kubernetes.Interface
	sink    Sink
	log     *slog.Logger
	workers int
	// namespace limits the tenant objects watched to one host namespace
	// (a private host cluster); "" watches every namespace.
	namespace string

	queue  workqueue.TypedRateLimitingInterface[hostKey]
	stores map[string]cache.Store
	mu     sync.Mutex
	last   map[hostKey]published
	synced chan struct{}
	// guard, when set, must hold for a publish to go out (the leader's
	// lease, see Elected).
	guard func() bool
}

// hostKey is a host object's coordinates.
type hostKey struct{ resource, ns, name string }

// published is what the stream holds for a host object.
type published struct {
	key     bus.Key
	rv      string
	deleted bool
	last    runtime.Object // last state, for the Deleted message
}

// New returns a relay publishing to sink the kplex objects of namespace
// ("": of every namespace), and every node and class.
func New(host kubernetes.Interface, sink Sink, log *slog.Logger, workers int, namespace string) *Relay {
	return &Relay{
		host: host, sink: sink, log: log, workers: max(workers, 1), namespace: namespace,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			// Retries while NATS is away are capped at 5 s, so the backlog goes
			// out soon after it returns.
			workqueue.NewTypedItemExponentialFailureRateLimiter[hostKey](10*time.Millisecond, 5*time.Second),
			workqueue.TypedRateLimitingQueueConfig[hostKey]{Name: "relay"}),
		stores: map[string]cache.Store{},
		last:   map[hostKey]published{},
		synced: make(chan struct{}),
	}
}

// Synced is closed once the relay has caught up with the host.
func (r *Relay) Synced() <-chan struct{} { return r.synced }

// Ready is the relay's readiness check.
func (r *Relay) Ready(*http.Request) error {
	select {
	case <-r.synced:
	default:
		return fmt.Errorf("relay: not caught up with the host yet")
	}
	if c, ok := r.sink.(interface{ Connected() bool }); ok && !c.Connected() {
		return fmt.Errorf("relay: nats disconnected")
	}
	return nil
}

// Run watches and publishes until ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	defer r.queue.ShutDown()
	managed := labels.SelectorFromSet(labels.Set{naming.LabelManaged: "true"}).String()
	tf := informers.NewSharedInformerFactoryWithOptions(r.host, 0, informers.WithNamespace(r.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = managed }))
	nf := informers.NewSharedInformerFactory(r.host, 0)
	type src struct {
		resource string
		inf      cache.SharedIndexInformer
	}
	srcs := []src{
		{hostcache.Pods, tf.Core().V1().Pods().Informer()},
		{hostcache.Services, tf.Core().V1().Services().Informer()},
		{hostcache.Endpoints, tf.Core().V1().Endpoints().Informer()},
		{hostcache.ConfigMaps, tf.Core().V1().ConfigMaps().Informer()},
		{hostcache.Secrets, tf.Core().V1().Secrets().Informer()},
		{hostcache.NetworkPolicies, tf.Networking().V1().NetworkPolicies().Informer()},
		{hostcache.PodDisruptionBudgets, tf.Policy().V1().PodDisruptionBudgets().Informer()},
		{hostcache.Ingresses, tf.Networking().V1().Ingresses().Informer()},
		{hostcache.PersistentVolumeClaims, tf.Core().V1().PersistentVolumeClaims().Informer()},
		{hostcache.Nodes, nf.Core().V1().Nodes().Informer()},
		{hostcache.StorageClasses, nf.Storage().V1().StorageClasses().Informer()},
		{hostcache.IngressClasses, nf.Networking().V1().IngressClasses().Informer()},
	}
	for _, s := range srcs {
		resource := s.resource
		if err := s.inf.SetTransform(trim); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		_, err := s.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { r.enqueue(resource, o) },
			UpdateFunc: func(_, o any) { r.enqueue(resource, o) },
			DeleteFunc: func(o any) { r.remember(resource, o); r.enqueue(resource, o) },
		})
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		r.stores[resource] = s.inf.GetStore()
	}
	tf.Start(ctx.Done())
	nf.Start(ctx.Done())
	for _, s := range srcs {
		if !cache.WaitForCacheSync(ctx.Done(), s.inf.HasSynced) {
			return ctx.Err()
		}
	}
	if err := r.loadStream(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for range r.workers {
		wg.Go(func() {
			for r.next(ctx) {
			}
		})
	}
	go r.waitCaughtUp(ctx)
	wg.Go(func() {
		// Events are best effort: a failing watch is retried, and never
		// stops the relay. Held Events outlive a watch restart.
		held := &heldEvents{wait: eventWait, limit: eventHoldLimit}
		for ctx.Err() == nil {
			if err := r.relayEvents(ctx, held); err != nil {
				r.log.Warn("host events watch failed; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
	<-ctx.Done()
	r.queue.ShutDown()
	wg.Wait()
	tf.Shutdown()
	nf.Shutdown()
	return nil
}

// waitCaughtUp closes synced once the first backlog is published.
func (r *Relay) waitCaughtUp(ctx context.Context) {
	for ctx.Err() == nil {
		if r.queue.Len() == 0 {
			r.log.Info("relay caught up with the host")
			close(r.synced)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// loadStream reads what the stream holds, so unchanged objects are not
// published again and objects deleted while the relay was away are.
func (r *Relay) loadStream(ctx context.Context) error {
	stream, ok := r.sink.(interface {
		LastValues(ctx context.Context, filter string) ([]natsbus.Delivery, error)
	})
	if !ok {
		return nil // not a stream: nothing was published before this run
	}
	start := time.Now()
	vals, err := stream.LastValues(ctx, bus.Prefix+".>")
	if err != nil {
		return fmt.Errorf("relay: read stream: %w", err)
	}
	r.mu.Lock()
	for _, d := range vals {
		var meta metav1.PartialObjectMetadata
		if err := json.Unmarshal(d.Message.Object, &meta); err != nil {
			continue
		}
		hk := hostKey{d.Key.Resource, meta.Namespace, meta.Name}
		if d.Key.Resource == hostcache.PodTokens {
			hk.resource = hostcache.Secrets
		}
		if _, watched := r.stores[hk.resource]; !watched {
			continue // Events, and resources of another relay version
		}
		r.last[hk] = published{key: d.Key, rv: d.Message.ResourceVersion, deleted: d.Message.Type == bus.Deleted, last: &meta}
		r.queue.Add(hk)
	}
	r.mu.Unlock()
	r.log.Info("relay read the stream", "subjects", len(vals), "duration", time.Since(start).String())
	return nil
}

func (r *Relay) enqueue(resource string, o any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(o)
	if err != nil {
		return
	}
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	r.queue.Add(hostKey{resource, ns, name})
}

// remember keeps a deleted object's last state for its Deleted message.
func (r *Relay) remember(resource string, o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	obj, ok := o.(runtime.Object)
	if !ok {
		return
	}
	m, err := metaOf(obj)
	if err != nil {
		return
	}
	hk := hostKey{resource, m.GetNamespace(), m.GetName()}
	r.mu.Lock()
	p := r.last[hk]
	p.last = obj
	r.last[hk] = p
	r.mu.Unlock()
}

func (r *Relay) next(ctx context.Context) bool {
	hk, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(hk)
	if err := r.publish(ctx, hk); err != nil {
		metrics.RelayErrors.WithLabelValues(hk.resource).Inc()
		if r.queue.NumRequeues(hk) == 5 {
			r.log.Error("relay cannot publish; retrying with backoff", "resource", hk.resource, "namespace", hk.ns, "name", hk.name, "err", err)
		}
		r.queue.AddRateLimited(hk)
		return true
	}
	r.queue.Forget(hk)
	return true
}

// publish sends the host object's current state (or its deletion).
func (r *Relay) publish(ctx context.Context, hk hostKey) error {
	store, ok := r.stores[hk.resource]
	if !ok {
		return nil
	}
	id := hk.name
	if hk.ns != "" {
		id = hk.ns + "/" + hk.name
	}
	item, exists, err := store.GetByKey(id)
	if err != nil {
		return err
	}
	r.mu.Lock()
	prev, known := r.last[hk]
	r.mu.Unlock()

	var msg bus.Message
	var key bus.Key
	var obj runtime.Object
	if exists {
		obj = item.(runtime.Object)
		m, err := metaOf(obj)
		if err != nil {
			return err
		}
		var ok bool
		if key, ok = busKey(hk.resource, m); !ok {
			return nil // not a well-formed kplex object: nothing to publish
		}
		if known && !prev.deleted && prev.rv == m.GetResourceVersion() && prev.key == key {
			return nil
		}
		if known && !prev.deleted && prev.key != key {
			// Its identity changed (someone edited kplex's annotations):
			// the old subject's object is gone.
			if err := r.send(ctx, prev.key, bus.Message{Type: bus.Deleted, ResourceVersion: m.GetResourceVersion(), Object: encode(obj)}); err != nil {
				return err
			}
		}
		msg = bus.Message{Type: bus.Upserted, ResourceVersion: m.GetResourceVersion(), Object: encode(obj)}
	} else {
		if !known || prev.deleted || prev.key.Resource == "" {
			return nil
		}
		key, obj = prev.key, prev.last
		rv := prev.rv
		msg = bus.Message{Type: bus.Deleted, ResourceVersion: rv, Object: encode(obj)}
	}
	if err := r.send(ctx, key, msg); err != nil {
		return err
	}
	r.mu.Lock()
	if msg.Type == bus.Deleted {
		delete(r.last, hk)
	} else {
		r.last[hk] = published{key: key, rv: msg.ResourceVersion, last: obj}
	}
	r.mu.Unlock()
	return nil
}

func (r *Relay) send(ctx context.Context, key bus.Key, msg bus.Message) error {
	if r.guard != nil && !r.guard() {
		return errNotLeader
	}
	ctx, span := otel.Tracer("kplex.dev/syncer/relay").Start(ctx, "relay.publish")
	defer span.End()
	span.SetAttributes(attribute.String("kplex.tenant", key.Tenant), attribute.String("kplex.resource", key.Resource),
		attribute.String("kplex.namespace", key.Namespace), attribute.String("kplex.name", key.Name), attribute.String("kplex.type", string(msg.Type)))
	hdr := nats.Header{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(hdr))
	if err := r.sink.Publish(ctx, key, msg, hdr); err != nil {
		span.RecordError(err)
		return err
	}
	metrics.RelayPublished.WithLabelValues(key.Resource, string(msg.Type)).Inc()
	return nil
}

var errNotLeader = errors.New("relay: not holding the leader lease")
