package shard

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/tenants"
	"kplex.dev/syncer/internal/translate"
)

// hostClient is the part of a typed host client a copy needs.
type hostClient[T metav1.Object] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
	Delete(context.Context, string, metav1.DeleteOptions) error
}

// syncCopy makes the host copy of a virtual object match want (when
// wanted) or go away. cur is the host object as the bus reports it
// (metadata only): the hash kplex wrote says whether the virtual object
// changed, the hash the relay observed whether the host copy was changed
// behind kplex's back.
func syncCopy[T metav1.Object](ctx context.Context, c hostClient[T], manager string, cur metav1.Object, want T, wanted bool) error {
	if !wanted {
		if cur == nil {
			return nil
		}
		if err := deleteUID(ctx, c.Delete, cur.GetName(), cur.GetUID()); err != nil {
			return fmt.Errorf("delete host copy %s: %w", cur.GetName(), err)
		}
		return nil
	}
	if cur == nil {
		_, err := c.Create(ctx, want, metav1.CreateOptions{FieldManager: manager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create host copy %s: %w", want.GetName(), err)
		}
		return nil
	}
	wantHash := translate.ContentHash(want.GetAnnotations())
	observed := translate.ObservedHash(cur.GetAnnotations())
	if translate.ContentHash(cur.GetAnnotations()) == wantHash && translate.VirtualUID(cur) == translate.VirtualUID(want) &&
		(observed == "" || observed == wantHash) {
		return nil
	}
	want.SetResourceVersion(cur.GetResourceVersion())
	if _, err := c.Update(ctx, want, metav1.UpdateOptions{FieldManager: manager}); err != nil {
		return fmt.Errorf("update host copy %s: %w", want.GetName(), err)
	}
	return nil
}

// deleteUID deletes the object name if it is still the one with uid: gone
// already, or replaced by another (a conflict), is done too.
func deleteUID(ctx context.Context, del func(context.Context, string, metav1.DeleteOptions) error, name string, uid types.UID) error {
	err := del(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// used reports whether a live virtual pod (or, for a Secret, an Ingress's
// TLS) refers to a ConfigMap or Secret.
func (s *tenantSyncer) used(kind, ns, name string) (bool, error) {
	id := kind + "/" + ns + "/" + name
	objs, err := s.podIndex.ByIndex(indexRefs, id)
	if err != nil || len(objs) > 0 {
		return len(objs) > 0, err
	}
	if s.ingIndex == nil { // ingresses not synced
		return false, nil
	}
	objs, err = s.ingIndex.ByIndex(indexRefs, id)
	return len(objs) > 0, err
}

func (s *tenantSyncer) syncConfigMap(ctx context.Context, ns, name string) error {
	v, err := s.configMaps.ConfigMaps(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	wanted := v != nil && err == nil && v.DeletionTimestamp == nil
	if wanted && s.cfg.ConfigMaps != tenants.SyncAll {
		if wanted, err = s.used(kindConfigMap, ns, name); err != nil {
			return err
		}
	}
	var want *corev1.ConfigMap
	if wanted {
		want = s.tr.ConfigMap(v)
	}
	return syncCopy(ctx, s.host.CoreV1().ConfigMaps(s.hostNS), s.fieldManager, s.hostObjs.Get(hostcache.ConfigMaps, ns, name), want, wanted)
}

func (s *tenantSyncer) syncSecret(ctx context.Context, ns, name string) error {
	v, err := s.secrets.Secrets(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	wanted := v != nil && err == nil && v.DeletionTimestamp == nil
	if wanted && s.cfg.Secrets != tenants.SyncAll {
		if wanted, err = s.used(kindSecret, ns, name); err != nil {
			return err
		}
	}
	var want *corev1.Secret
	if wanted {
		want = s.tr.Secret(v)
	}
	return syncCopy(ctx, s.host.CoreV1().Secrets(s.hostNS), s.fieldManager, s.hostObjs.Get(hostcache.Secrets, ns, name), want, wanted)
}

// syncEndpoints copies the Endpoints of selector-less virtual Services
// (those of Services with a selector are the host's to compute).
func (s *tenantSyncer) syncEndpoints(ctx context.Context, ns, name string) error {
	v, err := s.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	wanted := err == nil && v.DeletionTimestamp == nil
	if wanted {
		svc, serr := s.services.Services(ns).Get(name)
		wanted = serr == nil && len(svc.Spec.Selector) == 0 && svc.Spec.Type != corev1.ServiceTypeExternalName &&
			!(ns == "default" && name == "kubernetes")
	}
	var want *corev1.Endpoints
	if wanted {
		want = s.tr.Endpoints(v)
	}
	return syncCopy(ctx, s.host.CoreV1().Endpoints(s.hostNS), s.fieldManager, s.hostObjs.Get(hostcache.Endpoints, ns, name), want, wanted)
}
