package shard

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/naming"
	"kplex.dev/syncer/internal/hostcache"
)

// Imported host classes: a tenant that asks for them gets a copy of every
// host StorageClass and IngressClass, marked kplex.dev/managed, kept equal
// to the host's (a tenant's edit is reverted) and removed with it. Classes
// the tenant made itself are never touched.

func (s *tenantSyncer) onHostClass(resource, name string) {
	if !s.isReady() {
		return
	}
	if (resource == hostcache.StorageClasses && s.cfg.ImportStorageClasses) || (resource == hostcache.IngressClasses && s.cfg.ImportIngressClasses) {
		s.queue.Add(key{resource, "", name})
	}
}

// enqueueClasses queues every host class the tenant imports.
func (s *tenantSyncer) enqueueClasses() {
	for res, on := range map[string]bool{hostcache.StorageClasses: s.cfg.ImportStorageClasses, hostcache.IngressClasses: s.cfg.ImportIngressClasses} {
		if on {
			for _, id := range s.nodes.Names(res) {
				_, name, _ := splitID(id)
				s.queue.Add(key{res, "", name})
			}
		}
	}
}

func managedMeta(name string, m metav1.ObjectMeta) metav1.ObjectMeta {
	labels := naming.TenantMetadata(m.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[naming.LabelManaged] = "true"
	return metav1.ObjectMeta{Name: name, Labels: labels, Annotations: naming.TenantMetadata(m.Annotations)}
}

func (s *tenantSyncer) syncStorageClass(ctx context.Context, name string) error {
	c := s.vclient.StorageV1().StorageClasses()
	cur, err := c.Get(ctx, name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	h := s.nodes.StorageClass(name)
	if h == nil || !s.cfg.ImportStorageClasses {
		if err == nil && cur.Labels[naming.LabelManaged] == "true" {
			return ignoreNotFound(c.Delete(ctx, name, metav1.DeleteOptions{}))
		}
		return nil
	}
	want := &storagev1.StorageClass{ObjectMeta: managedMeta(name, h.ObjectMeta), Provisioner: h.Provisioner, Parameters: h.Parameters,
		ReclaimPolicy: h.ReclaimPolicy, MountOptions: h.MountOptions, AllowVolumeExpansion: h.AllowVolumeExpansion,
		VolumeBindingMode: h.VolumeBindingMode, AllowedTopologies: h.AllowedTopologies}
	if apierrors.IsNotFound(err) {
		_, err := c.Create(ctx, want, metav1.CreateOptions{})
		return ignoreExists(err)
	}
	if cur.Labels[naming.LabelManaged] != "true" {
		return nil // the tenant's own class of that name
	}
	// Provisioner, parameters and reclaim policy are immutable: a class
	// changed on the host is replaced.
	if cur.Provisioner != want.Provisioner || !equality.Semantic.DeepEqual(cur.Parameters, want.Parameters) || !equality.Semantic.DeepEqual(cur.ReclaimPolicy, want.ReclaimPolicy) ||
		!equality.Semantic.DeepEqual(cur.VolumeBindingMode, want.VolumeBindingMode) {
		if err := c.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}}); ignoreNotFound(err) != nil {
			return fmt.Errorf("replace storage class %s: %w", name, err)
		}
		_, err := c.Create(ctx, want, metav1.CreateOptions{})
		return ignoreExists(err)
	}
	if !equality.Semantic.DeepEqual(cur.Labels, want.Labels) || !equality.Semantic.DeepEqual(cur.AllowVolumeExpansion, want.AllowVolumeExpansion) ||
		!equality.Semantic.DeepEqual(cur.MountOptions, want.MountOptions) {
		out := cur.DeepCopy()
		out.Labels, out.Annotations, out.AllowVolumeExpansion, out.MountOptions = want.Labels, want.Annotations, want.AllowVolumeExpansion, want.MountOptions
		_, err := c.Update(ctx, out, metav1.UpdateOptions{})
		return err
	}
	return nil
}

func (s *tenantSyncer) syncIngressClass(ctx context.Context, name string) error {
	c := s.vclient.NetworkingV1().IngressClasses()
	cur, err := c.Get(ctx, name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	h := s.nodes.IngressClass(name)
	if h == nil || !s.cfg.ImportIngressClasses {
		if err == nil && cur.Labels[naming.LabelManaged] == "true" {
			return ignoreNotFound(c.Delete(ctx, name, metav1.DeleteOptions{}))
		}
		return nil
	}
	want := &networkingv1.IngressClass{ObjectMeta: managedMeta(name, h.ObjectMeta), Spec: *h.Spec.DeepCopy()}
	if apierrors.IsNotFound(err) {
		_, err := c.Create(ctx, want, metav1.CreateOptions{})
		return ignoreExists(err)
	}
	if cur.Labels[naming.LabelManaged] != "true" {
		return nil
	}
	if !equality.Semantic.DeepEqual(cur.Spec, want.Spec) || !equality.Semantic.DeepEqual(cur.Labels, want.Labels) {
		out := cur.DeepCopy()
		out.Labels, out.Annotations, out.Spec = want.Labels, want.Annotations, want.Spec
		_, err := c.Update(ctx, out, metav1.UpdateOptions{})
		return err
	}
	return nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
