package controller

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kplex.dev/api/naming"
	apiregistry "kplex.dev/api/registry"
	"kplex.dev/api/v1alpha1"
)

// Private nodes: a VirtualCluster whose spec.tenancy.privateNodes names a
// Secret holding another cluster's kubeconfig keeps its control plane on
// the host, and its workloads in that cluster. The operator checks the
// Secret before anything else is made (privateNodes), hands the kubeconfig
// to the syncer with the registration (the shard writes the tenant's host
// namespace there), removes host pods there on pause, and deletes the
// tenant's host namespace and exports there on delete.

// privateGiveUp is how long a deletion keeps trying to reach a private
// cluster before it leaves the tenant's objects there behind.
const privateGiveUp = 5 * time.Minute

// Condition reasons of private nodes.
const (
	reasonPrivateNodesUnavailable = "PrivateNodesUnavailable"
	reasonPrivateClusterDown      = "PrivateClusterUnreachable"
)

// privateNodes reads the private cluster's kubeconfig from the Secret the
// spec names; the tenant waits (Pending) until it is there and valid.
func (s *run) privateNodes(ctx context.Context) (bool, error) {
	tn := s.vc.Spec.Tenancy
	if tn == nil || tn.PrivateNodes == nil {
		return true, nil
	}
	kc, err := s.r.privateKubeconfigFromSecret(ctx, s.vc)
	if err != nil {
		setCondition(s.vc, v1alpha1.ConditionReady, false, reasonPrivateNodesUnavailable, err.Error())
		return false, nil
	}
	// The tenant's workloads cannot move between clusters: a Secret now
	// naming another server than the one registered is refused (the
	// registered one stays in use) until it is put back.
	if prev, err := s.r.Syncer.HostKubeconfig(ctx, s.vc.Name); err == nil {
		if was, now := serverOf(prev), serverOf(kc); was != now {
			setCondition(s.vc, v1alpha1.ConditionReady, false, reasonPrivateNodesUnavailable, fmt.Sprintf(
				"spec.tenancy.privateNodes.kubeconfigSecret: the Secret now names server %s, but the tenant's workloads are in %s; they cannot move between clusters: restore the Secret, or delete and create the VirtualCluster", now, was))
			return false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	s.privateKubeconfig = kc
	if !s.r.NamespaceConsent || (len(s.vc.Spec.Networking.ExportServices) == 0 && len(s.vc.Spec.Networking.ImportHostServices) == 0) {
		return true, nil
	}
	c, _, err := privateCluster(kc)
	if err != nil {
		return false, err
	}
	return s.consented(ctx, c)
}

// privateKubeconfigFromSecret returns the kubeconfig of vc's private
// cluster, checked to parse, or an error that names the field and says
// what to do.
func (r *Reconciler) privateKubeconfigFromSecret(ctx context.Context, vc *v1alpha1.VirtualCluster) ([]byte, error) {
	name := vc.Spec.Tenancy.PrivateNodes.KubeconfigSecret
	field := "spec.tenancy.privateNodes.kubeconfigSecret"
	var sec corev1.Secret
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: vc.Namespace, Name: name}, &sec)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%s: Secret %s/%s not found; create it with the other cluster's kubeconfig under the key %q", field, vc.Namespace, name, KubeconfigKey)
	case err != nil:
		return nil, fmt.Errorf("%s: read Secret %s/%s: %w", field, vc.Namespace, name, err)
	}
	kc := sec.Data[KubeconfigKey]
	if len(kc) == 0 {
		return nil, fmt.Errorf("%s: Secret %s/%s has no %q key", field, vc.Namespace, name, KubeconfigKey)
	}
	if _, err := clientcmd.RESTConfigFromKubeConfig(kc); err != nil {
		return nil, fmt.Errorf("%s: Secret %s/%s: not a usable kubeconfig: %w", field, vc.Namespace, name, err)
	}
	if err := apiregistry.CheckHostKubeconfig(kc); err != nil {
		return nil, fmt.Errorf("%s: Secret %s/%s: %w", field, vc.Namespace, name, err)
	}
	return kc, nil
}

// serverOf is the API server URL a kubeconfig reaches ("" if it does not
// parse).
func serverOf(kc []byte) string {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		return ""
	}
	return cfg.Host
}

// privateCluster is a client of a private cluster, with a short timeout:
// the operator's calls there are few and must not hang a reconcile.
func privateCluster(kc []byte) (client.Client, kubernetes.Interface, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		return nil, nil, fmt.Errorf("private cluster kubeconfig: %w", err)
	}
	cfg.Timeout = 10 * time.Second
	cfg.UserAgent = "kplex-operator"
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("private cluster client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("private cluster client: %w", err)
	}
	return c, cs, nil
}

// privateReachable reports an error if the private cluster does not answer.
func privateReachable(ctx context.Context, kc []byte) error {
	_, cs, err := privateCluster(kc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw(); err != nil {
		return fmt.Errorf("the private cluster does not answer: %w", err)
	}
	return nil
}

// privateHostClient is the client of the cluster that holds the tenant's
// host pods: the host, or its private cluster.
func (s *run) privateHostClient() (client.Client, error) {
	if s.privateKubeconfig == nil {
		return s.r.Client, nil
	}
	c, _, err := privateCluster(s.privateKubeconfig)
	return c, err
}

// cleanPrivateCluster removes the tenant's host namespace and exports from
// its private cluster, reached with the kubeconfig the shards were given
// (none: the tenant was never registered there, so kplex wrote nothing
// there). It returns 0 once they are gone, else how long to wait before
// looking again: briefly while the namespace terminates, longer while the
// cluster does not answer. A cluster still not clean privateGiveUp after
// the deletion began (unreachable, or a namespace stuck terminating) is
// left with whatever is there (logged and recorded as an event).
func (r *Reconciler) cleanPrivateCluster(ctx context.Context, log *slog.Logger, vc *v1alpha1.VirtualCluster) (time.Duration, error) {
	kc, err := r.Syncer.HostKubeconfig(ctx, vc.Name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err // the registry itself: retried without a deadline
	}
	done, err := cleanCluster(ctx, log, kc, vc.Name)
	switch {
	case err == nil && done:
		return 0, nil
	case time.Since(vc.DeletionTimestamp.Time) >= privateGiveUp:
		if err == nil {
			err = fmt.Errorf("namespace %s still terminating after %v", naming.HostNamespace(vc.Name), privateGiveUp)
		}
		r.leavePrivate(log, vc, err)
		return 0, nil
	case err != nil:
		log.Warn("cannot clean the private cluster yet; retrying in 10s", "err", err)
		return 10 * time.Second, nil
	}
	return time.Second, nil
}

func cleanCluster(ctx context.Context, log *slog.Logger, kc []byte, tenant string) (bool, error) {
	c, _, err := privateCluster(kc)
	if err != nil {
		return false, err
	}
	if err := removeExports(ctx, c, c, tenant); err != nil {
		return false, err
	}
	return deleteHostNamespace(ctx, c, log, tenant)
}

func (r *Reconciler) leavePrivate(log *slog.Logger, vc *v1alpha1.VirtualCluster, err error) {
	msg := "the tenant's host namespace " + naming.HostNamespace(vc.Name) + " in its private cluster is left behind: " + err.Error()
	log.Error("private cluster not cleaned", "err", err)
	if r.Recorder != nil {
		r.Recorder.Eventf(vc, nil, corev1.EventTypeWarning, "PrivateClusterLeftBehind", "Delete", "%s", msg)
	}
}
