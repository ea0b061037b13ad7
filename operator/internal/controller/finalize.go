package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"kplex.dev/api/naming"
	"kplex.dev/api/v1alpha1"
	"kplex.dev/cli/pki"
	"kplex.dev/operator/internal/datastore"
	"kplex.dev/operator/internal/metrics"
)

// finalize removes everything kplex made for the tenant, in reverse order
// of creation, then lets the VirtualCluster go. Each step is idempotent: a
// crash part-way resumes where it stopped.
func (r *Reconciler) finalize(ctx context.Context, log *slog.Logger, vc *v1alpha1.VirtualCluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(vc, Finalizer) {
		return ctrl.Result{}, nil
	}
	if vc.Status.Phase != v1alpha1.PhaseDeleting {
		vc.Status.Phase = v1alpha1.PhaseDeleting
		setCondition(vc, v1alpha1.ConditionReady, false, "Deleting", "removing the control plane, datastore keys and host objects")
		if err := r.Client.Status().Update(ctx, vc); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		metrics.Phase(vc.Name, string(v1alpha1.PhaseDeleting))
	}
	if owner, err := r.olderNamesake(ctx, vc); err != nil {
		return ctrl.Result{}, err
	} else if owner != nil {
		// This VirtualCluster never owned the tenant: touch nothing of it.
		log.Info("deleting a VirtualCluster that never owned its tenant name", "owner", owner.Namespace+"/"+owner.Name)
		return r.dropFinalizer(ctx, vc)
	}
	if err := r.Syncer.Unregister(ctx, vc.Name); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Runtime.Remove(ctx, vc.Name); err != nil {
		return ctrl.Result{}, err
	}
	n, err := datastore.Purge(ctx, r.purgeIdentity(vc.Name))
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("tenant %s: %w", vc.Name, err)
	}
	if n > 0 {
		log.Info("datastore keys deleted", "keys", n)
	}
	if err := r.Quotas.Delete(ctx, vc.Name); err != nil {
		return ctrl.Result{}, err
	}
	// A shard still serving the tenant could write an export (or, in a
	// private cluster, its host namespace) again after it is removed: wait
	// (up to 30 s) until the shard has let it go.
	private := vc.Spec.Tenancy != nil && vc.Spec.Tenancy.PrivateNodes != nil
	if (private || len(vc.Spec.Networking.ExportServices) > 0) && time.Since(vc.DeletionTimestamp.Time) < 30*time.Second {
		// Not knowing the owner (NATS unreachable) counts as still owned.
		if owner, err := r.Shards.Owner(ctx, vc.Name); err != nil || owner != "" {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
	}
	if err := removeExports(ctx, r.Reader, r.Client, vc.Name); err != nil {
		return ctrl.Result{}, err
	}
	if private {
		if wait, err := r.cleanPrivateCluster(ctx, log, vc); err != nil || wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, err
		}
	}
	// The admin kubeconfig is owned by the VirtualCluster, but the host's
	// garbage collector may not watch VirtualClusters yet (it finds new
	// CRDs at its next discovery): delete it rather than wait on that.
	admin := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: AdminSecretName(vc.Name), Namespace: vc.Namespace}}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(admin), admin); err == nil && metav1.IsControlledBy(admin, vc) {
		if err := r.Client.Delete(ctx, admin); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("delete admin kubeconfig secret: %w", err)
		}
	}
	if done, err := deleteHostNamespace(ctx, r.Client, log, vc.Name); err != nil || !done {
		// Wait until every host object of the tenant is gone.
		return ctrl.Result{RequeueAfter: 500 * time.Millisecond}, err
	}
	if err := r.Syncer.RemoveHostKubeconfig(ctx, vc.Name); err != nil {
		return ctrl.Result{}, err
	}
	log.Info("virtual cluster deleted")
	return r.dropFinalizer(ctx, vc)
}

func (r *Reconciler) dropFinalizer(ctx context.Context, vc *v1alpha1.VirtualCluster) (ctrl.Result, error) {
	controllerutil.RemoveFinalizer(vc, Finalizer)
	if err := r.Client.Update(ctx, vc); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	metrics.Forget(vc.Name)
	r.checked.Delete(vc.Name)
	return ctrl.Result{}, nil
}

// purgeIdentity is a short-lived datastore certificate for the tenant,
// issued here so deletion works even when the PKI Secret is already gone.
func (r *Reconciler) purgeIdentity(tenant string) datastore.Tenant {
	t := datastore.Tenant{Name: tenant, Endpoints: r.DatastoreEndpoints, ServerCA: r.DatastoreServerCA}
	if kp, err := r.DatastoreCA.Issue(pki.CertSpec{CommonName: tenant, Client: true, Validity: time.Hour}); err == nil {
		t.CertPEM = kp.CertPEM()
		t.KeyPEM, _ = kp.KeyPEM()
	}
	return t
}

// deleteHostNamespace deletes the tenant's host namespace in the cluster
// c (the host or a private cluster) and reports whether it is gone. A
// namespace of that name that is not kplex's for the tenant is left alone.
func deleteHostNamespace(ctx context.Context, c client.Client, log *slog.Logger, tenant string) (bool, error) {
	var ns corev1.Namespace
	err := c.Get(ctx, client.ObjectKey{Name: naming.HostNamespace(tenant)}, &ns)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, err
	case ns.Labels[naming.LabelTenant] != tenant:
		log.Warn("host namespace is not kplex's for this tenant; left alone", "hostNamespace", ns.Name)
		return true, nil
	}
	if ns.DeletionTimestamp.IsZero() {
		if err := c.Delete(ctx, &ns); err != nil && !apierrors.IsNotFound(err) {
			return false, err
		}
		log.Info("host namespace deleted", "hostNamespace", ns.Name)
	}
	return false, nil
}

// removeExports deletes the tenant's service exports (host Services and
// Endpoints labeled as exported by it, in any namespace): they live outside
// its host namespace. r reads uncached; w deletes.
func removeExports(ctx context.Context, r client.Reader, w client.Writer, tenant string) error {
	sel := client.MatchingLabels{naming.LabelExportedBy: tenant}
	var svcs corev1.ServiceList
	if err := r.List(ctx, &svcs, sel); err != nil {
		return fmt.Errorf("list the tenant's exported services: %w", err)
	}
	var eps corev1.EndpointsList
	if err := r.List(ctx, &eps, sel); err != nil {
		return fmt.Errorf("list the tenant's exported endpoints: %w", err)
	}
	objs := make([]client.Object, 0, len(svcs.Items)+len(eps.Items))
	for i := range svcs.Items {
		objs = append(objs, &svcs.Items[i])
	}
	for i := range eps.Items {
		objs = append(objs, &eps.Items[i])
	}
	for _, o := range objs {
		if err := w.Delete(ctx, o, client.Preconditions{UID: ptr.To(o.GetUID())}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete export %s/%s: %w", o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}
