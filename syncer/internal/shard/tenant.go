package shard

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	listersnetworkingv1 "k8s.io/client-go/listers/networking/v1"
	listerspolicyv1 "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"kplex.dev/api/naming"
	"kplex.dev/api/registry"
	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/metrics"
	"kplex.dev/syncer/internal/natsbus"
	"kplex.dev/syncer/internal/ownership"
	"kplex.dev/syncer/internal/relay"
	"kplex.dev/syncer/internal/tenants"
	"kplex.dev/syncer/internal/translate"
)

// Kinds of work items.
const (
	kindPod       = "pods"
	kindService   = "services"
	kindEndpoints = "endpoints"
	kindConfigMap = "configmaps"
	kindSecret    = "secrets"
	kindNode      = "nodes"
	kindEvent     = "events"
	kindNetPol    = hostcache.NetworkPolicies
	kindPDB       = hostcache.PodDisruptionBudgets
	kindIngress   = hostcache.Ingresses
	kindPVC       = hostcache.PersistentVolumeClaims
	kindSC        = hostcache.StorageClasses
	kindIC        = hostcache.IngressClasses
)

// key is one virtual object to reconcile.
type key struct{ kind, ns, name string }

// Indexes on the virtual pod informer.
const (
	indexRefs = "refs" // "configmaps/<ns>/<name>", "secrets/<ns>/<name>"
	indexNode = "node" // spec.nodeName
)

// tenantSyncer syncs one tenant: it watches the tenant's API, reads the
// tenant's host state from the bus, and writes the host.
type tenantSyncer struct {
	cfg    tenants.Tenant
	tr     translate.Tenant
	log    *slog.Logger
	host   kubernetes.Interface
	hostNS string
	nodes  *hostcache.Cache // host nodes and classes (shared, or the private cluster's)
	bus    *natsbus.Bus
	// private watches the tenant's private host cluster, if it has one
	// (private.go); nil: the host state comes from the bus.
	private *relay.Relay
	// fieldManager names this shard's writes under this lease
	// (kplex-syncer/<shard>@<epoch>), so every host write can be traced to
	// the lease it was made under.
	fieldManager string

	vclient  kubernetes.Interface
	hostObjs *hostcache.Cache
	queue    workqueue.TypedRateLimitingInterface[key]
	policy   *translate.Policy
	recorder record.EventRecorder

	pods       listerscorev1.PodLister
	podIndex   cache.Indexer
	services   listerscorev1.ServiceLister
	configMaps listerscorev1.ConfigMapLister
	secrets    listerscorev1.SecretLister
	endpoints  listerscorev1.EndpointsLister
	vnodes     listerscorev1.NodeLister
	netpols    listersnetworkingv1.NetworkPolicyLister
	pdbs       listerspolicyv1.PodDisruptionBudgetLister
	ingresses  listersnetworkingv1.IngressLister
	pvcs       listerscorev1.PersistentVolumeClaimLister
	pvs        listerscorev1.PersistentVolumeLister
	ingIndex   cache.Indexer
	namespaces listerscorev1.NamespaceLister

	moving sync.Map // key -> time.Time: Services being recreated
	tokens sync.Map // virtual pod UID -> time.Time: when its token is renewed
	events sync.Map // "ns/host event name" -> *corev1.Event waiting to be written
	// drift holds keys queued by the drift patrol or by a change on the
	// host side; their reconcile counts its host writes as repairs.
	drift sync.Map

	readyMu sync.Mutex
	ready   bool
}

// newTenantSyncer builds a tenant's syncer. Every write it makes, to the
// host or to the tenant's API, goes through the lease's fence.
func newTenantSyncer(cfg tenants.Tenant, hostCfg *rest.Config, lease *ownership.Lease, shardName string, nodes *hostcache.Cache, b *natsbus.Bus, log *slog.Logger) (*tenantSyncer, error) {
	onFenced := func() { metrics.FencedWrites.WithLabelValues(cfg.Name).Inc() }
	fence := func(c *rest.Config) *rest.Config {
		c = rest.CopyConfig(c)
		c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return lease.Fence(rt, onFenced) })
		return c
	}
	host, err := kubernetes.NewForConfig(fence(hostCfg))
	if err != nil {
		return nil, fmt.Errorf("tenant %s: host client: %w", cfg.Name, err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: kubeconfig: %w", cfg.Name, err)
	}
	// The shard is every kubelet of the tenant: the tenant API server's
	// own limits protect it, not a client-side rate limit.
	rc.QPS, rc.Burst = 1000, 2000
	rc.UserAgent = "kplex-syncer"
	vclient, err := kubernetes.NewForConfig(fence(rc))
	if err != nil {
		return nil, fmt.Errorf("tenant %s: client: %w", cfg.Name, err)
	}
	apiHost, apiPort, err := tenants.SplitEndpoint(cfg.APIServerEndpoint)
	if cfg.APIServerEndpoint == "" {
		apiHost, apiPort, err = tenants.SplitEndpoint(rc.Host)
	}
	if err != nil {
		return nil, fmt.Errorf("tenant %s: api server endpoint: %w", cfg.Name, err)
	}
	pol, err := translate.NewPolicy(cfg.PodSecurity)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", cfg.Name, err)
	}
	tr := translate.NewTenant(cfg.Name, apiHost, apiPort)
	tr.NodeSelector, tr.Tolerations = cfg.NodeSelector, cfg.Tolerations
	return &tenantSyncer{
		cfg: cfg, tr: tr, log: log.With("tenant", cfg.Name),
		host: host, hostNS: naming.HostNamespace(cfg.Name), nodes: nodes, bus: b,
		vclient: vclient, hostObjs: hostcache.New(), policy: pol,
		fieldManager: fmt.Sprintf("kplex-syncer/%s@%d", shardName, lease.Epoch()),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter(
				workqueue.NewTypedItemExponentialFailureRateLimiter[key](50*time.Millisecond, 30*time.Second),
			),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "tenant-" + cfg.Name}),
	}, nil
}

// run syncs the tenant until ctx ends, with a drift patrol pass every
// patrolEvery (0: none).
func (s *tenantSyncer) run(ctx context.Context, workers int, patrolEvery time.Duration) error {
	defer s.queue.ShutDown()
	defer metrics.QueueDepth.DeleteLabelValues(s.cfg.Name)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.vclient.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	s.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kplex-syncer"})

	f := informers.NewSharedInformerFactory(s.vclient, 0)
	podInf := f.Core().V1().Pods().Informer()
	_ = podInf.SetTransform(dropManagedFields)
	if err := podInf.AddIndexers(cache.Indexers{indexRefs: podRefs, indexNode: podNode}); err != nil {
		return err
	}
	s.pods, s.podIndex = f.Core().V1().Pods().Lister(), podInf.GetIndexer()
	s.services = f.Core().V1().Services().Lister()
	s.configMaps = f.Core().V1().ConfigMaps().Lister()
	s.secrets = f.Core().V1().Secrets().Lister()
	s.endpoints = f.Core().V1().Endpoints().Lister()
	s.vnodes = f.Core().V1().Nodes().Lister()
	s.namespaces = f.Core().V1().Namespaces().Lister()
	nsInf := f.Core().V1().Namespaces().Informer()
	_ = nsInf.SetTransform(dropManagedFields)
	if _, err := nsInf.AddEventHandler(s.namespaceHandler()); err != nil {
		return err
	}
	infs := map[string]cache.SharedIndexInformer{
		kindPod: podInf, kindService: f.Core().V1().Services().Informer(),
		kindConfigMap: f.Core().V1().ConfigMaps().Informer(), kindSecret: f.Core().V1().Secrets().Informer(),
		kindEndpoints: f.Core().V1().Endpoints().Informer(), kindNode: f.Core().V1().Nodes().Informer(),
	}
	// The optional resources: informers (and listers) only for those the
	// tenant syncs; a nil lister means "not synced" (optional.go).
	if s.cfg.Syncs(registry.NetworkPolicies) {
		s.netpols, infs[kindNetPol] = f.Networking().V1().NetworkPolicies().Lister(), f.Networking().V1().NetworkPolicies().Informer()
	}
	if s.cfg.Syncs(registry.PodDisruptionBudgets) {
		s.pdbs, infs[kindPDB] = f.Policy().V1().PodDisruptionBudgets().Lister(), f.Policy().V1().PodDisruptionBudgets().Informer()
	}
	if s.cfg.Syncs(registry.Ingresses) {
		ingInf := f.Networking().V1().Ingresses().Informer()
		if err := ingInf.AddIndexers(cache.Indexers{indexRefs: ingressRefs}); err != nil {
			return err
		}
		s.ingresses, s.ingIndex, infs[kindIngress] = f.Networking().V1().Ingresses().Lister(), ingInf.GetIndexer(), ingInf
	}
	if s.cfg.Syncs(registry.PersistentVolumeClaims) {
		s.pvcs, infs[kindPVC] = f.Core().V1().PersistentVolumeClaims().Lister(), f.Core().V1().PersistentVolumeClaims().Informer()
		s.pvs = f.Core().V1().PersistentVolumes().Lister()
		_ = f.Core().V1().PersistentVolumes().Informer().SetTransform(dropManagedFields)
	}
	for kind, inf := range infs {
		if kind != kindPod {
			_ = inf.SetTransform(dropManagedFields)
		}
		if _, err := inf.AddEventHandler(s.handler(kind)); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	defer f.Shutdown()

	// The tenant's host state, replayed from the stream, then followed.
	replayed := make(chan struct{})
	go s.followHost(ctx, replayed)
	if err := s.ensureHostNamespace(ctx); err != nil {
		return err
	}
	for _, synced := range f.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return fmt.Errorf("tenant %s: virtual caches did not sync", s.cfg.Name)
		}
	}
	select {
	case <-replayed:
	case <-ctx.Done():
		return nil
	}
	// Host objects whose virtual object is gone are found from the host
	// side: enqueue every host object once.
	for _, res := range []string{hostcache.Pods, hostcache.Services, hostcache.ConfigMaps, hostcache.Secrets, hostcache.Endpoints, hostcache.NetworkPolicies, hostcache.PodDisruptionBudgets, hostcache.Ingresses, hostcache.PersistentVolumeClaims} {
		for _, id := range s.hostObjs.Names(res) {
			ns, name, _ := cache.SplitMetaNamespaceKey(id)
			s.queue.Add(key{res, ns, name})
		}
	}
	s.setReady()
	s.enqueueClasses()
	s.enqueueExports()
	s.enqueueImports()
	s.log.Info("tenant synced and serving", "hostPods", s.hostObjs.Len(hostcache.Pods))
	go s.patrol(ctx, patrolEvery)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for s.next(ctx) {
			}
		})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.queue.ShutDown()
			wg.Wait()
			return nil
		case <-tick.C:
			metrics.QueueDepth.WithLabelValues(s.cfg.Name).Set(float64(s.queue.Len()))
		}
	}
}

func (s *tenantSyncer) setReady() {
	s.readyMu.Lock()
	s.ready = true
	s.readyMu.Unlock()
}

func (s *tenantSyncer) isReady() bool {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	return s.ready
}

// ensureHostNamespace creates the tenant's host namespace (the operator
// will own this step; until then the shard does it).
func (s *tenantSyncer) ensureHostNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.hostNS, Labels: map[string]string{naming.LabelTenant: s.cfg.Name}}}
	for {
		_, err := s.host.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// kplex's for this tenant, or nothing is written there (a
			// private cluster may hold a namespace of that name already).
			var cur *corev1.Namespace
			if cur, err = s.host.CoreV1().Namespaces().Get(ctx, s.hostNS, metav1.GetOptions{}); err == nil && cur.Labels[naming.LabelTenant] != s.cfg.Name {
				err = fmt.Errorf("namespace %s exists and is not kplex's for tenant %s (label %s); nothing is written there", s.hostNS, s.cfg.Name, naming.LabelTenant)
			}
		}
		if err == nil {
			return nil
		}
		s.log.Warn("cannot create the host namespace yet; retrying", "namespace", s.hostNS, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// next processes one work item.
func (s *tenantSyncer) next(ctx context.Context) bool {
	k, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(k)
	start := time.Now()
	rctx, writes := ctx, &atomic.Int64{}
	_, checked := s.drift.LoadAndDelete(k)
	if checked {
		rctx = context.WithValue(ctx, writesKey{}, writes)
	}
	requeue, err := s.reconcile(rctx, k)
	if checked && err == nil && writes.Load() > 0 {
		s.reportRepair(k)
	}
	metrics.SyncDuration.WithLabelValues(s.cfg.Name, k.kind).Observe(time.Since(start).Seconds())
	switch {
	case err != nil:
		metrics.SyncErrors.WithLabelValues(s.cfg.Name, k.kind).Inc()
		if s.queue.NumRequeues(k) >= 3 {
			s.log.Warn("sync failed; retrying with backoff", "kind", k.kind, "namespace", k.ns, "name", k.name, "err", err)
		}
		s.queue.AddRateLimited(k)
	case requeue > 0:
		s.queue.Forget(k)
		s.queue.AddAfter(k, requeue)
	default:
		s.queue.Forget(k)
	}
	return true
}

func (s *tenantSyncer) reconcile(ctx context.Context, k key) (time.Duration, error) {
	switch k.kind {
	case kindPod:
		return s.syncPod(ctx, k.ns, k.name)
	case kindService:
		return 0, s.syncService(ctx, k.ns, k.name)
	case kindConfigMap:
		return 0, s.syncConfigMap(ctx, k.ns, k.name)
	case kindSecret:
		return 0, s.syncSecret(ctx, k.ns, k.name)
	case kindEndpoints:
		return 0, s.syncEndpoints(ctx, k.ns, k.name)
	case kindNode:
		return 0, s.syncNode(ctx, k.name)
	case kindEvent:
		return 0, s.syncEvent(ctx, k.ns, k.name)
	case kindNetPol:
		return 0, s.syncNetworkPolicy(ctx, k.ns, k.name)
	case kindPDB:
		return 0, s.syncPDB(ctx, k.ns, k.name)
	case kindIngress:
		return 0, s.syncIngress(ctx, k.ns, k.name)
	case kindPVC:
		return 0, s.syncPVC(ctx, k.ns, k.name)
	case kindSC:
		return 0, s.syncStorageClass(ctx, k.name)
	case kindIC:
		return 0, s.syncIngressClass(ctx, k.name)
	case kindExport:
		return 0, s.syncExport(ctx, k.ns, k.name)
	case kindImport:
		return s.syncImport(ctx, k.ns, k.name)
	}
	return 0, nil
}
