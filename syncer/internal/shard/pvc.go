package shard

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"kplex.dev/api/naming"
	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/translate"
)

// syncPVC keeps the host claim of a virtual PersistentVolumeClaim, passes
// on a resize, and once the host has bound the claim shows the tenant the
// volume: a virtual PersistentVolume named after the host volume, bound
// to the claim, which the tenant's own volume binder then completes
// (claim and volume Bound, capacity from the volume).
//
// When the tenant does not sync claims, a host claim left from before is
// kept as it is: it holds the tenant's data (deleting the tenant removes
// it with the host namespace).
func (s *tenantSyncer) syncPVC(ctx context.Context, ns, name string) error {
	if s.pvcs == nil {
		return nil
	}
	v, err := s.pvcs.PersistentVolumeClaims(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	h, _ := s.hostObjs.Get(hostcache.PersistentVolumeClaims, ns, name).(*corev1.PersistentVolumeClaim)
	claims := s.host.CoreV1().PersistentVolumeClaims(s.hostNS)
	switch {
	case apierrors.IsNotFound(err) || v.DeletionTimestamp != nil:
		if h != nil {
			if err := deleteUID(ctx, claims.Delete, h.Name, h.UID); err != nil {
				return fmt.Errorf("delete host claim %s: %w", h.Name, err)
			}
		}
		return s.removeVolumeViews(ctx, ns, name)
	case h != nil && translate.VirtualUID(h) != v.UID:
		return claims.Delete(ctx, h.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &h.UID}})
	case h == nil:
		_, err := claims.Create(ctx, s.tr.PersistentVolumeClaim(v), metav1.CreateOptions{FieldManager: s.fieldManager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create host claim: %w", err)
		}
		return nil
	}
	if want := v.Spec.Resources.Requests; !equality.Semantic.DeepEqual(want, h.Spec.Resources.Requests) {
		body, _ := json.Marshal(map[string]any{"spec": map[string]any{"resources": map[string]any{"requests": want}}})
		if _, err := claims.Patch(ctx, h.Name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: s.fieldManager}); err != nil {
			return fmt.Errorf("resize host claim %s: %w", h.Name, err)
		}
	}
	if h.Spec.VolumeName == "" || h.Status.Phase != corev1.ClaimBound {
		return nil
	}
	want := translate.PersistentVolume(v, h)
	pvs := s.vclient.CoreV1().PersistentVolumes()
	cur, err := s.pvs.Get(want.Name)
	switch {
	case apierrors.IsNotFound(err):
		if _, err := pvs.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("virtual volume %s: %w", want.Name, err)
		}
	case err != nil:
		return err
	case translate.PVNeedsUpdate(cur, want):
		out := cur.DeepCopy()
		out.Spec.Capacity, out.Spec.AccessModes, out.Spec.StorageClassName = want.Spec.Capacity, want.Spec.AccessModes, want.Spec.StorageClassName
		if _, err := pvs.Update(ctx, out, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("virtual volume %s: %w", want.Name, err)
		}
	}
	if v.Spec.VolumeName == "" {
		body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": v.UID}, "spec": map[string]any{"volumeName": want.Name}})
		if _, err := s.vclient.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("bind claim %s/%s to %s: %w", ns, name, want.Name, err)
		}
	}
	return nil
}

// removeVolumeViews deletes the virtual volumes kplex made for a claim
// that is gone.
func (s *tenantSyncer) removeVolumeViews(ctx context.Context, ns, name string) error {
	pvs, err := s.pvs.List(labels.SelectorFromSet(labels.Set{naming.LabelManaged: "true"}))
	if err != nil {
		return err
	}
	for _, pv := range pvs {
		if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == ns && ref.Name == name && pv.DeletionTimestamp == nil {
			if err := s.vclient.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("remove virtual volume %s: %w", pv.Name, err)
			}
		}
	}
	return nil
}
