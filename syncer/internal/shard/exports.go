package shard

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"kplex.dev/api/naming"
	"kplex.dev/api/registry"
	"kplex.dev/syncer/internal/translate"
)

// Service exports (registry.Tenant.ExportServices): a tenant Service made
// reachable in a host namespace as a selector-less host Service whose
// Endpoints are the tenant's (its pods' host addresses). Exports are keyed
// by their tenant Service (kindExport, its namespace and name): a change
// to that Service or its Endpoints re-syncs every export of it. They live
// outside the tenant's host namespace, so the bus does not carry them; the
// shard reads them from the host when it syncs one, the drift patrol
// re-syncs them all, and a host Service of that name that is not this
// tenant's export is never touched.

// kindExport keys the exports of one tenant Service.
const kindExport = "export"

// exportsOf returns the exports of the tenant Service ns/name.
func (s *tenantSyncer) exportsOf(ns, name string) []registry.ServiceExport {
	var out []registry.ServiceExport
	for _, e := range s.cfg.ExportServices {
		if e.From.Namespace == ns && e.From.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// enqueueExports queues every export (at start and by the patrol), and the
// removal of those no longer registered (the key with no name).
func (s *tenantSyncer) enqueueExports() {
	s.queue.Add(key{kind: kindExport})
	for _, e := range s.cfg.ExportServices {
		s.queue.Add(key{kindExport, e.From.Namespace, e.From.Name})
	}
}

// syncExport keeps the host exports of the tenant Service ns/name.
func (s *tenantSyncer) syncExport(ctx context.Context, ns, name string) error {
	if name == "" {
		return s.pruneExports(ctx)
	}
	var errs []error // one refused export does not hold up the others
	for _, e := range s.exportsOf(ns, name) {
		errs = append(errs, s.syncOneExport(ctx, e))
	}
	return errors.Join(errs...)
}

func (s *tenantSyncer) syncOneExport(ctx context.Context, e registry.ServiceExport) error {
	v, err := s.services.Services(e.From.Namespace).Get(e.From.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err != nil || v.DeletionTimestamp != nil || v.Spec.Type == corev1.ServiceTypeExternalName {
		return s.removeExport(ctx, e.To)
	}
	eps, err := s.endpoints.Endpoints(e.From.Namespace).Get(e.From.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := s.writeExportedService(ctx, e, v); err != nil {
		return err
	}
	return s.writeExportedEndpoints(ctx, e, eps)
}

func (s *tenantSyncer) writeExportedService(ctx context.Context, e registry.ServiceExport, v *corev1.Service) error {
	want := s.tr.ExportedService(e, v)
	svcs := s.host.CoreV1().Services(e.To.Namespace)
	cur, err := svcs.Get(ctx, e.To.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := svcs.Create(ctx, want, metav1.CreateOptions{FieldManager: s.fieldManager}); err != nil {
			return fmt.Errorf("export %s/%s as host service %s/%s: %w", e.From.Namespace, e.From.Name, e.To.Namespace, e.To.Name, err)
		}
		return nil
	case err != nil:
		return err
	case cur.Labels[naming.LabelExportedBy] != s.cfg.Name:
		s.recorder.Eventf(v, corev1.EventTypeWarning, "ExportConflict", "The host service %s/%s exists and is not this tenant's export: left alone", e.To.Namespace, e.To.Name)
		return fmt.Errorf("host service %s/%s exists and is not an export of tenant %s: left alone", e.To.Namespace, e.To.Name, s.cfg.Name)
	}
	if equality.Semantic.DeepEqual(cur.Spec.Ports, mergePorts(cur.Spec.Ports, want.Spec.Ports)) && len(cur.Spec.Selector) == 0 &&
		cur.Annotations[translate.AnnotationExportOf] == want.Annotations[translate.AnnotationExportOf] {
		return nil
	}
	out := cur.DeepCopy()
	out.Spec.Ports, out.Spec.Selector = mergePorts(cur.Spec.Ports, want.Spec.Ports), nil
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[translate.AnnotationExportOf] = want.Annotations[translate.AnnotationExportOf]
	if _, err := svcs.Update(ctx, out, metav1.UpdateOptions{FieldManager: s.fieldManager}); err != nil {
		return fmt.Errorf("update exported host service %s/%s: %w", e.To.Namespace, e.To.Name, err)
	}
	return nil
}

// mergePorts is want with the host-assigned node ports of cur kept.
func mergePorts(cur, want []corev1.ServicePort) []corev1.ServicePort {
	out := make([]corev1.ServicePort, len(want))
	for i, p := range want {
		for _, c := range cur {
			if c.Name == p.Name && c.Port == p.Port && c.Protocol == p.Protocol {
				p.NodePort = c.NodePort
			}
		}
		out[i] = p
	}
	return out
}

func (s *tenantSyncer) writeExportedEndpoints(ctx context.Context, e registry.ServiceExport, v *corev1.Endpoints) error {
	want := s.tr.ExportedEndpoints(e, v)
	c := s.host.CoreV1().Endpoints(e.To.Namespace)
	cur, err := c.Get(ctx, e.To.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := c.Create(ctx, want, metav1.CreateOptions{FieldManager: s.fieldManager}); err != nil {
			return fmt.Errorf("exported endpoints %s/%s: %w", e.To.Namespace, e.To.Name, err)
		}
		return nil
	case err != nil:
		return err
	case cur.Labels[naming.LabelExportedBy] != s.cfg.Name:
		return fmt.Errorf("host endpoints %s/%s exist and are not an export of tenant %s: left alone", e.To.Namespace, e.To.Name, s.cfg.Name)
	case equality.Semantic.DeepEqual(cur.Subsets, want.Subsets):
		return nil
	}
	out := cur.DeepCopy()
	out.Subsets = want.Subsets
	if _, err := c.Update(ctx, out, metav1.UpdateOptions{FieldManager: s.fieldManager}); err != nil {
		return fmt.Errorf("update exported endpoints %s/%s: %w", e.To.Namespace, e.To.Name, err)
	}
	return nil
}

// removeExport deletes the host Service to (and its Endpoints) if it is
// this tenant's export.
func (s *tenantSyncer) removeExport(ctx context.Context, to registry.ServiceRef) error {
	svcs := s.host.CoreV1().Services(to.Namespace)
	cur, err := svcs.Get(ctx, to.Name, metav1.GetOptions{})
	if err == nil && cur.Labels[naming.LabelExportedBy] == s.cfg.Name {
		if err := deleteUID(ctx, svcs.Delete, cur.Name, cur.UID); err != nil {
			return fmt.Errorf("remove exported host service %s/%s: %w", to.Namespace, to.Name, err)
		}
	} else if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	eps := s.host.CoreV1().Endpoints(to.Namespace)
	ep, err := eps.Get(ctx, to.Name, metav1.GetOptions{})
	if err == nil && ep.Labels[naming.LabelExportedBy] == s.cfg.Name {
		return deleteUID(ctx, eps.Delete, ep.Name, ep.UID)
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// pruneExports removes the tenant's host exports that its registration no
// longer lists (an export taken out of the spec).
func (s *tenantSyncer) pruneExports(ctx context.Context) error {
	sel := labels.SelectorFromSet(labels.Set{naming.LabelExportedBy: s.cfg.Name}).String()
	list, err := s.host.CoreV1().Services("").List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list the tenant's exported host services: %w", err)
	}
	listed := map[registry.ServiceRef]bool{}
	for _, e := range s.cfg.ExportServices {
		listed[e.To] = true
	}
	var errs []error
	for _, svc := range list.Items {
		if to := (registry.ServiceRef{Namespace: svc.Namespace, Name: svc.Name}); !listed[to] {
			if err := s.removeExport(ctx, to); err != nil {
				errs = append(errs, err)
				continue
			}
			s.log.Info("removed an export no longer registered", "host", to.Namespace+"/"+to.Name)
		}
	}
	return errors.Join(errs...)
}
