package shard

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/syncer/internal/translate"
)

// syncService keeps the host Service of a virtual Service, and the virtual
// Service on the host's addresses.
//
// ClusterIP: the host is asked for the virtual ClusterIP first (tenant and
// host share the Service range, and the tenant allocated it at random, so
// it is usually free on the host). Only when the host refuses it does the
// host allocate one, and the virtual Service is then recreated on it:
// ClusterIPs are immutable, so a recreate is the only way to move one, and
// it is rare. Intercepting creation with an admission webhook would avoid
// even that, at the price of a webhook in every tenant's API path.
func (s *tenantSyncer) syncService(ctx context.Context, ns, name string) error {
	if ns == "default" && name == "kubernetes" {
		return nil // the tenant API server itself
	}
	v, err := s.services.Services(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	h := s.hostObjs.Service(ns, name)
	services := s.host.CoreV1().Services(s.hostNS)
	if since, ok := s.moving.Load(key{kindService, ns, name}); ok {
		// Being recreated on its host ClusterIP: until the informer shows
		// the new Service, its absence is not a deletion.
		if apierrors.IsNotFound(err) || (h != nil && v.Spec.ClusterIP != h.Spec.ClusterIP) {
			if time.Since(since.(time.Time)) < movingGrace {
				return fmt.Errorf("virtual service %s/%s is being recreated on the host ClusterIP", ns, name)
			}
		}
		s.moving.Delete(key{kindService, ns, name})
	}
	if apierrors.IsNotFound(err) || v.DeletionTimestamp != nil {
		if h == nil {
			return nil
		}
		if err := deleteUID(ctx, services.Delete, h.Name, h.UID); err != nil {
			return fmt.Errorf("delete host service %s: %w", h.Name, err)
		}
		return nil
	}
	want := s.tr.Service(v)
	if h == nil {
		created, err := services.Create(ctx, want, metav1.CreateOptions{FieldManager: s.fieldManager})
		if apierrors.IsInvalid(err) {
			// The virtual addresses are taken (or outside the host's
			// ranges): let the host allocate.
			translate.WithoutAddresses(want)
			created, err = services.Create(ctx, want, metav1.CreateOptions{FieldManager: s.fieldManager})
		}
		if apierrors.IsAlreadyExists(err) {
			return nil // the bus will report it
		}
		if err != nil {
			return fmt.Errorf("create host service %s: %w", want.Name, err)
		}
		h = created
	} else if (h.Spec.ClusterIP == corev1.ClusterIPNone) != (want.Spec.ClusterIP == corev1.ClusterIPNone) {
		// Headless on one side only (the tenant made its Service again):
		// a ClusterIP cannot change, so the host copy is made again once
		// the bus reports it gone.
		if err := deleteUID(ctx, services.Delete, h.Name, h.UID); err != nil {
			return fmt.Errorf("delete host service %s to make it again: %w", h.Name, err)
		}
		return fmt.Errorf("host service %s is being made again: headless changed", h.Name)
	} else if upd, need := translate.ServiceNeedsUpdate(h, want); need {
		if h, err = services.Update(ctx, upd, metav1.UpdateOptions{FieldManager: s.fieldManager}); err != nil {
			return fmt.Errorf("update host service %s: %w", want.Name, err)
		}
	}
	if len(v.Spec.Selector) == 0 {
		s.queue.Add(key{kindEndpoints, ns, name})
	}
	return s.alignVirtualService(ctx, v, h)
}

// movingGrace is how long a Service being recreated on its host
// ClusterIP may be missing from the informer before it counts as deleted.
const movingGrace = 30 * time.Second

// alignVirtualService puts the virtual Service on the host Service's
// ClusterIP, node ports and load-balancer status.
func (s *tenantSyncer) alignVirtualService(ctx context.Context, v, h *corev1.Service) error {
	vsvc := s.vclient.CoreV1().Services(v.Namespace)
	hip := h.Spec.ClusterIP
	if hip != "" && hip != corev1.ClusterIPNone && v.Spec.ClusterIP != "" && v.Spec.ClusterIP != corev1.ClusterIPNone && hip != v.Spec.ClusterIP {
		re := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: v.Name, Namespace: v.Namespace, Labels: v.Labels, Annotations: v.Annotations}, Spec: *v.Spec.DeepCopy()}
		re.Spec.ClusterIP, re.Spec.ClusterIPs = hip, h.Spec.ClusterIPs
		if ports, differ := translate.NodePortsDiffer(v, h); differ {
			re.Spec.Ports = ports
		}
		err := vsvc.Delete(ctx, v.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &v.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("move virtual service to host ClusterIP %s: %w", hip, err)
		}
		s.moving.Store(key{kindService, v.Namespace, v.Name}, time.Now())
		if _, err := vsvc.Create(ctx, re, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("recreate virtual service on host ClusterIP %s: %w", hip, err)
		}
		s.log.Info("virtual service moved to its host ClusterIP", "namespace", v.Namespace, "service", v.Name, "from", v.Spec.ClusterIP, "to", hip)
		return nil
	}
	if ports, differ := translate.NodePortsDiffer(v, h); differ {
		out := v.DeepCopy()
		out.Spec.Ports = ports
		if _, err := vsvc.Update(ctx, out, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("move virtual service to host node ports: %w", err)
		}
		return nil
	}
	if !equality.Semantic.DeepEqual(v.Status.LoadBalancer, h.Status.LoadBalancer) {
		out := v.DeepCopy()
		out.Status.LoadBalancer = h.Status.LoadBalancer
		if _, err := vsvc.UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update virtual service status: %w", err)
		}
	}
	return nil
}
