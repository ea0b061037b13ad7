package shard

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/translate"
)

// syncNetworkPolicy keeps the host copy of a virtual NetworkPolicy, its
// selectors confined to the tenant's pods (translate.NetworkPolicy).
func (s *tenantSyncer) syncNetworkPolicy(ctx context.Context, ns, name string) error {
	hc := s.host.NetworkingV1().NetworkPolicies(s.hostNS)
	cur := s.hostObjs.Get(hostcache.NetworkPolicies, ns, name)
	if s.netpols == nil { // not synced: no host copy
		return syncCopy[*networkingv1.NetworkPolicy](ctx, hc, s.fieldManager, cur, nil, false)
	}
	v, err := s.netpols.NetworkPolicies(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	wanted := err == nil && v.DeletionTimestamp == nil
	var want *networkingv1.NetworkPolicy
	if wanted {
		nss, err := s.namespaces.List(labels.Everything())
		if err != nil {
			return err
		}
		nsLabels := translate.NamespaceLabels{}
		for _, n := range nss {
			nsLabels[n.Name] = n.Labels
		}
		want = s.tr.NetworkPolicy(v, nsLabels)
	}
	return syncCopy(ctx, hc, s.fieldManager, cur, want, wanted)
}

// syncPDB keeps the host copy of a virtual PodDisruptionBudget.
func (s *tenantSyncer) syncPDB(ctx context.Context, ns, name string) error {
	hc := s.host.PolicyV1().PodDisruptionBudgets(s.hostNS)
	cur := s.hostObjs.Get(hostcache.PodDisruptionBudgets, ns, name)
	if s.pdbs == nil { // not synced: no host copy
		return syncCopy[*policyv1.PodDisruptionBudget](ctx, hc, s.fieldManager, cur, nil, false)
	}
	v, err := s.pdbs.PodDisruptionBudgets(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	wanted := err == nil && v.DeletionTimestamp == nil
	var want *policyv1.PodDisruptionBudget
	if wanted {
		want = s.tr.PodDisruptionBudget(v)
	}
	return syncCopy(ctx, hc, s.fieldManager, cur, want, wanted)
}

// namespaceHandler re-translates every NetworkPolicy when a virtual
// namespace appears, goes or changes labels: namespace selectors in peers
// are evaluated against them.
func (s *tenantSyncer) namespaceHandler() cache.ResourceEventHandler {
	all := func(any) {
		if s.netpols == nil {
			return
		}
		nps, err := s.netpols.List(labels.Everything())
		if err != nil {
			return
		}
		for _, np := range nps {
			s.queue.Add(key{kindNetPol, np.Namespace, np.Name})
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: all,
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Namespace)
			c, ok2 := cur.(*corev1.Namespace)
			if ok1 && ok2 && labels.Equals(o.Labels, c.Labels) {
				return
			}
			all(cur)
		},
		DeleteFunc: all,
	}
}
