package shard

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/translate"
)

// syncIngress keeps the host copy of a virtual Ingress (backends and TLS
// Secrets translated, class mapped), makes sure its TLS Secrets are on the
// host, and mirrors the host's load-balancer status back.
func (s *tenantSyncer) syncIngress(ctx context.Context, ns, name string) error {
	hc := s.host.NetworkingV1().Ingresses(s.hostNS)
	cur := s.hostObjs.Get(hostcache.Ingresses, ns, name)
	if s.ingresses == nil { // not synced: no host copy
		return syncCopy[*networkingv1.Ingress](ctx, hc, s.fieldManager, cur, nil, false)
	}
	v, err := s.ingresses.Ingresses(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	wanted := err == nil && v.DeletionTimestamp == nil
	var want *networkingv1.Ingress
	if wanted {
		for _, secret := range translate.IngressSecrets(v) {
			if err := s.syncSecret(ctx, ns, secret); err != nil {
				return err
			}
		}
		want = s.tr.Ingress(v, s.cfg.IngressClasses)
	}
	if err := syncCopy(ctx, hc, s.fieldManager, cur, want, wanted); err != nil {
		return err
	}
	h, ok := cur.(*networkingv1.Ingress)
	if !wanted || !ok || equality.Semantic.DeepEqual(v.Status, h.Status) {
		return nil
	}
	out := v.DeepCopy()
	out.Status = h.Status
	if _, err := s.vclient.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("ingress %s/%s status: %w", ns, name, err)
	}
	return nil
}

func ingressRefs(o any) ([]string, error) {
	ing, ok := o.(*networkingv1.Ingress)
	if !ok {
		return nil, fmt.Errorf("not an ingress: %T", o)
	}
	var out []string
	for _, secret := range translate.IngressSecrets(ing) {
		out = append(out, kindSecret+"/"+ing.Namespace+"/"+secret)
	}
	return out, nil
}
