// Package controller reconciles VirtualClusters. Reconcile runs an ordered
// list of small steps (steps.go), each idempotent and each recording its
// outcome in a status condition, so a crash at any point converges on the
// next run:
//
//	name -> supported -> private nodes -> namespace -> endpoint -> pki -> datastore -> (pause)
//	-> control plane -> syncer registration -> counts -> Ready
//
// Deletion (finalize.go) undoes them in reverse under a finalizer: control
// plane, syncer registration, datastore keys and limits, host namespace
// (and, for private nodes, the tenant's namespace in its own cluster:
// private.go).
package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"kplex.dev/api/naming"
	"kplex.dev/api/v1alpha1"
	"kplex.dev/cli/pki"
	"kplex.dev/operator/internal/metrics"
	"kplex.dev/operator/internal/registry"
	"kplex.dev/operator/internal/runtime"
	"kplex.dev/operator/internal/shardinfo"
)

// Finalizer holds a VirtualCluster until everything kplex made for it is
// gone.
const Finalizer = "kplex.dev/cleanup"

// Resync is how often a Ready tenant is checked again: the process
// runtime restarts a dead component at the latest then.
const Resync = 10 * time.Second

// Reconciler reconciles VirtualClusters.
type Reconciler struct {
	Client client.Client
	// Reader reads the host uncached: objects the operator does not keep
	// in its cache (a tenant's service exports, in any namespace).
	Reader   client.Reader
	Runtime  runtime.Runtime
	Syncer   registry.SyncerRegistry
	Quotas   *registry.Quotas
	Shards   *shardinfo.Reader
	Recorder events.EventRecorder
	Log      *slog.Logger

	// checked remembers, per tenant, what was verified recently, so a
	// resync does not re-verify every certificate or reconnect to the
	// datastore (hundreds of tenants resync every few seconds).
	checked sync.Map // tenant -> *checks
	// namespaces maps a tenant to its VirtualCluster's namespace, for
	// ControlPlaneExited.
	namespaces sync.Map
	exits      chan event.GenericEvent

	DatastoreCA        *pki.CA
	DatastoreEndpoints []string
	DatastoreServerCA  []byte
	ServiceCIDR        string
	Backend            string // the datastore-proxy's backend
	Workers            int
	// NamespaceConsent refuses exports into, and host imports from, host
	// namespaces not labeled to consent (mappings.go: consentProblems).
	NamespaceConsent bool
	// WatchComponents reconciles a tenant when one of its control-plane
	// Deployments changes (kubernetes runtime), so Ready follows a
	// rollout at once.
	WatchComponents bool
}

// SetupWithManager registers the reconciler.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.exits = make(chan event.GenericEvent, 1024)
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.VirtualCluster{}).
		WatchesRawSource(source.Channel(r.exits, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers})
	if r.WatchComponents {
		b = b.Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.componentOwner))
	}
	return b.Complete(r)
}

// componentOwner maps a control-plane Deployment to its VirtualCluster
// (a tenant not reconciled since the operator started is found at its
// first reconcile instead).
func (r *Reconciler) componentOwner(_ context.Context, o client.Object) []reconcile.Request {
	tenant := o.GetLabels()[naming.LabelTenant]
	ns, ok := r.namespaces.Load(tenant)
	if o.GetLabels()[naming.LabelComponent] == "" || !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns.(string), Name: tenant}}}
}

// Reconcile brings one VirtualCluster to its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	start := time.Now()
	defer func() { metrics.Reconciles(start, err) }()
	var vc v1alpha1.VirtualCluster
	if err := r.Client.Get(ctx, req.NamespacedName, &vc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := r.Log.With("tenant", vc.Name, "namespace", vc.Namespace)
	r.namespaces.Store(vc.Name, vc.Namespace)
	if !vc.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, log, &vc)
	}
	if !controllerutil.ContainsFinalizer(&vc, Finalizer) {
		controllerutil.AddFinalizer(&vc, Finalizer)
		if err := r.Client.Update(ctx, &vc); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
	}
	before := vc.Status.DeepCopy()
	s := &run{r: r, vc: &vc, log: log}
	res, err = s.steps(ctx)
	vc.Status.ObservedGeneration = vc.Generation
	if !equality.Semantic.DeepEqual(before, &vc.Status) {
		if uerr := r.Client.Status().Update(ctx, &vc); uerr != nil && !apierrors.IsConflict(uerr) {
			return ctrl.Result{}, fmt.Errorf("update status: %w", uerr)
		} else if uerr != nil {
			return ctrl.Result{Requeue: true}, nil
		}
		if before.Phase != vc.Status.Phase {
			log.Info("phase changed", "from", before.Phase, "to", vc.Status.Phase)
			r.event(&vc)
		}
	}
	return res, err
}

// checks are a tenant's recent verifications.
type checks struct {
	mu          sync.Mutex
	pkiVersion  string // PKI Secret resourceVersion last verified complete
	pkiAt       time.Time
	datastoreAt time.Time
}

// Re-verification periods of an unchanged tenant.
const (
	pkiRecheck       = time.Hour // certificates are renewed 30 days before expiry
	datastoreRecheck = time.Minute
)

func (r *Reconciler) checksOf(tenant string) *checks {
	c, _ := r.checked.LoadOrStore(tenant, &checks{})
	return c.(*checks)
}

// run is one reconcile of one VirtualCluster.
type run struct {
	r        *Reconciler
	vc       *v1alpha1.VirtualCluster
	log      *slog.Logger
	endpoint string
	pki      map[string][]byte
	// privateKubeconfig reaches the tenant's private cluster (private
	// nodes); nil: its pods are on the host.
	privateKubeconfig []byte
}

// steps runs the steps in order, stopping at the first that is not done.
func (s *run) steps(ctx context.Context) (ctrl.Result, error) {
	if s.vc.Status.Phase == "" {
		s.vc.Status.Phase = v1alpha1.PhasePending
	}
	for _, st := range []struct {
		name string
		fn   func(context.Context) (done bool, err error)
	}{
		{"name", s.uniqueName},
		{"supported", s.supported},
		{"privatenodes", s.privateNodes},
		{"namespace", s.namespace},
		{"endpoint", s.ensureEndpoint},
		{"pki", s.ensurePKI},
		{"datastore", s.datastore},
		{"pause", s.pause},
		{"controlplane", s.controlPlane},
		{"syncer", s.syncer},
		{"counts", s.counts},
	} {
		t := time.Now()
		done, err := st.fn(ctx)
		metrics.Step(st.name, t, err)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("tenant %s: %s: %w", s.vc.Name, st.name, err)
		}
		if !done {
			return ctrl.Result{RequeueAfter: s.requeue()}, nil
		}
	}
	s.setPhase(v1alpha1.PhaseReady)
	setCondition(s.vc, v1alpha1.ConditionReady, true, "Ready", "the API server is serving and the syncer has the tenant")
	return ctrl.Result{RequeueAfter: Resync}, nil
}

// requeue is the poll period while a step waits: short while the tenant
// comes up, so create -> Ready is not paced by it.
func (s *run) requeue() time.Duration {
	if s.vc.Status.Phase == v1alpha1.PhasePaused || s.vc.Status.Phase == v1alpha1.PhaseFailed {
		return Resync
	}
	if c := apimeta.FindStatusCondition(s.vc.Status.Conditions, v1alpha1.ConditionControlPlaneReady); c != nil && c.Reason == "Queued" {
		return 2 * time.Second
	}
	// Waiting on the user (a Secret to create) or on another cluster.
	for typ, reason := range map[string]string{v1alpha1.ConditionReady: reasonPrivateNodesUnavailable, v1alpha1.ConditionSyncerAssigned: reasonPrivateClusterDown} {
		if c := apimeta.FindStatusCondition(s.vc.Status.Conditions, typ); c != nil && c.Status == metav1.ConditionFalse && c.Reason == reason {
			return 5 * time.Second
		}
	}
	return 500 * time.Millisecond
}

func (s *run) setPhase(p v1alpha1.Phase) {
	s.vc.Status.Phase = p
	metrics.Phase(s.vc.Name, string(p))
}

// event records a phase change on the VirtualCluster, with the condition
// that explains it.
func (r *Reconciler) event(vc *v1alpha1.VirtualCluster) {
	if r.Recorder == nil {
		return
	}
	typ, note := corev1.EventTypeNormal, "phase "+string(vc.Status.Phase)
	for _, c := range vc.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			note += ": " + c.Message
			if c.Status != metav1.ConditionTrue && vc.Status.Phase == v1alpha1.PhaseFailed {
				typ = corev1.EventTypeWarning
			}
		}
	}
	r.Recorder.Eventf(vc, nil, typ, string(vc.Status.Phase), "Reconcile", "%s", note)
}

// ControlPlaneExited queues the tenant's VirtualCluster for a reconcile:
// one of its control-plane processes exited (a crash, or a stop the
// operator asked for; the reconcile sorts out which).
func (r *Reconciler) ControlPlaneExited(tenant string) {
	ns, ok := r.namespaces.Load(tenant)
	if !ok || r.exits == nil {
		return
	}
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: tenant, Namespace: ns.(string)}}
	select {
	case r.exits <- event.GenericEvent{Object: vc}:
	default: // full: the resync restarts it
	}
}
