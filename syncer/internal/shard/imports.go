package shard

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"kplex.dev/api/naming"
	"kplex.dev/api/registry"
	"kplex.dev/syncer/internal/translate"
)

// Service imports (registry.Tenant.ImportServices): a host Service (another
// tenant's host copy included) made resolvable in the tenant as a
// selector-less tenant Service whose Endpoints are the host's. The tenant
// Service is then synced like any other: its host copy gets the same
// Endpoints, so the tenant's pods reach the host Service's pods through
// it. Imports are keyed by their tenant Service (kindImport). Host Services
// outside the tenant's host namespace are not on the bus: each import reads
// its host Service every importPoll. A tenant Service of that name that
// kplex did not import is left alone.

// kindImport keys the import of one tenant Service.
const kindImport = "import"

// importPoll is how often an import reads its host Service.
const importPoll = 5 * time.Second

// importOf returns the import whose tenant Service is ns/name.
func (s *tenantSyncer) importOf(ns, name string) (registry.ServiceImport, bool) {
	for _, i := range s.cfg.ImportServices {
		if i.To.Namespace == ns && i.To.Name == name {
			return i, true
		}
	}
	return registry.ServiceImport{}, false
}

// enqueueImports queues every import and the removal of those no longer
// registered (the key with no name).
func (s *tenantSyncer) enqueueImports() {
	s.queue.Add(key{kind: kindImport})
	for _, i := range s.cfg.ImportServices {
		s.queue.Add(key{kindImport, i.To.Namespace, i.To.Name})
	}
}

// syncImport keeps the tenant Service ns/name on its host Service, and asks
// to be run again in importPoll.
func (s *tenantSyncer) syncImport(ctx context.Context, ns, name string) (time.Duration, error) {
	if name == "" {
		return 0, s.pruneImports(ctx)
	}
	i, ok := s.importOf(ns, name)
	if !ok {
		return 0, s.removeImport(ctx, ns, name)
	}
	h, err := s.host.CoreV1().Services(i.From.Namespace).Get(ctx, i.From.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return importPoll, s.removeImport(ctx, ns, name)
	}
	if err != nil {
		return 0, fmt.Errorf("read imported host service %s/%s: %w", i.From.Namespace, i.From.Name, err)
	}
	he, err := s.host.CoreV1().Endpoints(i.From.Namespace).Get(ctx, i.From.Name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("read imported host endpoints %s/%s: %w", i.From.Namespace, i.From.Name, err)
	}
	if err != nil {
		he = nil
	}
	if err := s.ensureVirtualNamespace(ctx, ns); err != nil {
		return 0, err
	}
	want := translate.ImportedService(i, h)
	if err := s.writeImportedService(ctx, want); err != nil {
		return 0, err
	}
	if want.Spec.Type == corev1.ServiceTypeExternalName { // a name, no endpoints
		if cur, err := s.endpoints.Endpoints(ns).Get(name); err == nil && cur.Labels[naming.LabelImported] == "true" {
			return importPoll, deleteUID(ctx, s.vclient.CoreV1().Endpoints(ns).Delete, name, cur.UID)
		}
		return importPoll, nil
	}
	return importPoll, s.writeImportedEndpoints(ctx, translate.ImportedEndpoints(i, he))
}

func (s *tenantSyncer) writeImportedService(ctx context.Context, want *corev1.Service) error {
	c := s.vclient.CoreV1().Services(want.Namespace)
	cur, err := s.services.Services(want.Namespace).Get(want.Name)
	switch {
	case apierrors.IsNotFound(err):
		if _, err := c.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("import as %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	case err != nil:
		return err
	case cur.Labels[naming.LabelImported] != "true":
		s.recorder.Eventf(cur, corev1.EventTypeWarning, "ImportConflict", "kplex imports %s here, but this Service is not an import: left alone", want.Annotations[naming.AnnotationImportOf])
		return fmt.Errorf("service %s/%s exists and is not an import: left alone", want.Namespace, want.Name)
	case (cur.Spec.ClusterIP == corev1.ClusterIPNone) != (want.Spec.ClusterIP == corev1.ClusterIPNone):
		// The host Service became headless, or stopped being: a ClusterIP
		// cannot change, so the import is made again.
		if err := deleteUID(ctx, c.Delete, cur.Name, cur.UID); err != nil {
			return fmt.Errorf("re-import %s/%s: %w", want.Namespace, want.Name, err)
		}
		if _, err := c.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("re-import %s/%s: %w", want.Namespace, want.Name, err)
		}
		s.log.Info("imported service made again: the host service's headless setting changed", "namespace", want.Namespace, "name", want.Name)
		return nil
	case cur.Spec.Type == want.Spec.Type && cur.Spec.ExternalName == want.Spec.ExternalName && len(cur.Spec.Selector) == 0 &&
		equality.Semantic.DeepEqual(cur.Spec.Ports, mergePorts(cur.Spec.Ports, want.Spec.Ports)) &&
		cur.Annotations[naming.AnnotationImportOf] == want.Annotations[naming.AnnotationImportOf]:
		return nil
	}
	out := cur.DeepCopy()
	out.Spec.Type, out.Spec.ExternalName, out.Spec.Selector = want.Spec.Type, want.Spec.ExternalName, nil
	out.Spec.Ports = mergePorts(cur.Spec.Ports, want.Spec.Ports)
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[naming.AnnotationImportOf] = want.Annotations[naming.AnnotationImportOf]
	if _, err := c.Update(ctx, out, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update imported service %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

func (s *tenantSyncer) writeImportedEndpoints(ctx context.Context, want *corev1.Endpoints) error {
	c := s.vclient.CoreV1().Endpoints(want.Namespace)
	cur, err := s.endpoints.Endpoints(want.Namespace).Get(want.Name)
	switch {
	case apierrors.IsNotFound(err):
		if _, err := c.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("imported endpoints %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	case err != nil:
		return err
	case cur.Labels[naming.LabelImported] != "true":
		return fmt.Errorf("endpoints %s/%s exist and are not an import: left alone", want.Namespace, want.Name)
	case equality.Semantic.DeepEqual(cur.Subsets, want.Subsets):
		return nil
	}
	out := cur.DeepCopy()
	out.Subsets = want.Subsets
	if _, err := c.Update(ctx, out, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update imported endpoints %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// removeImport deletes the tenant Service ns/name and its Endpoints if kplex
// imported them.
func (s *tenantSyncer) removeImport(ctx context.Context, ns, name string) error {
	if cur, err := s.services.Services(ns).Get(name); err == nil && cur.Labels[naming.LabelImported] == "true" {
		if err := deleteUID(ctx, s.vclient.CoreV1().Services(ns).Delete, name, cur.UID); err != nil {
			return fmt.Errorf("remove imported service %s/%s: %w", ns, name, err)
		}
	}
	if cur, err := s.endpoints.Endpoints(ns).Get(name); err == nil && cur.Labels[naming.LabelImported] == "true" {
		if err := deleteUID(ctx, s.vclient.CoreV1().Endpoints(ns).Delete, name, cur.UID); err != nil {
			return fmt.Errorf("remove imported endpoints %s/%s: %w", ns, name, err)
		}
	}
	return nil
}

// pruneImports removes imported tenant Services that the registration no
// longer lists.
func (s *tenantSyncer) pruneImports(ctx context.Context) error {
	imported, err := s.services.List(labels.SelectorFromSet(labels.Set{naming.LabelImported: "true"}))
	if err != nil {
		return err
	}
	for _, v := range imported {
		if _, ok := s.importOf(v.Namespace, v.Name); !ok {
			if err := s.removeImport(ctx, v.Namespace, v.Name); err != nil {
				return err
			}
			s.log.Info("removed an import no longer registered", "namespace", v.Namespace, "name", v.Name)
		}
	}
	return nil
}

// ensureVirtualNamespace creates the tenant namespace an import goes to.
func (s *tenantSyncer) ensureVirtualNamespace(ctx context.Context, ns string) error {
	if _, err := s.namespaces.Get(ns); err == nil {
		return nil
	}
	_, err := s.vclient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s for an import: %w", ns, err)
	}
	return nil
}
