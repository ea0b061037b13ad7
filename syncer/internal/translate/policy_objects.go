package translate

import (
	"encoding/json"

	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"kplex.dev/api/naming"
)

// NamespaceLabels gives the labels of each virtual namespace, for
// NetworkPolicy namespace selectors.
type NamespaceLabels map[string]map[string]string

// NetworkPolicy returns the host NetworkPolicy of a virtual one. It lives
// in the tenant's host namespace and every selector in it is confined to
// the tenant's pods: the policy's own pod selector to the virtual
// namespace's pods, peer pod selectors to the pods of the virtual
// namespaces their namespace selector matches (evaluated against the
// virtual namespaces' labels, since all of a tenant's pods share one host
// namespace), so no rule can select another tenant's or the host's pods.
// IP blocks and ports are kept.
func (t Tenant) NetworkPolicy(v *networkingv1.NetworkPolicy, nsLabels NamespaceLabels) *networkingv1.NetworkPolicy {
	h := &networkingv1.NetworkPolicy{ObjectMeta: t.HostMeta(v.ObjectMeta)}
	spec := *v.Spec.DeepCopy()
	spec.PodSelector = *t.labelSelector(&spec.PodSelector, []string{v.Namespace})
	peers := func(ps []networkingv1.NetworkPolicyPeer) {
		for i := range ps {
			p := &ps[i]
			if p.IPBlock != nil {
				continue
			}
			namespaces := []string{v.Namespace}
			if p.NamespaceSelector != nil {
				namespaces = matchNamespaces(p.NamespaceSelector, nsLabels)
			}
			sel := p.PodSelector
			if sel == nil {
				sel = &metav1.LabelSelector{}
			}
			if len(namespaces) == 0 {
				// No virtual namespace matches: a selector nothing matches
				// (every tenant pod has a namespace label).
				p.PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{naming.LabelTenant: t.Name}, MatchExpressions: []metav1.LabelSelectorRequirement{{Key: naming.LabelNamespace, Operator: metav1.LabelSelectorOpDoesNotExist}}}
			} else {
				p.PodSelector = t.labelSelector(sel, namespaces)
			}
			p.NamespaceSelector = nil
		}
	}
	for i := range spec.Ingress {
		peers(spec.Ingress[i].From)
	}
	for i := range spec.Egress {
		peers(spec.Egress[i].To)
	}
	h.Spec = spec
	h.Annotations[naming.AnnotationContentHash] = HashSpec(spec)
	return h
}

// HashSpec hashes a spec (NetworkPolicy, PodDisruptionBudget). Both API
// servers apply the same defaults, so the host's stored spec hashes like
// the translated one until someone changes it.
func HashSpec(spec any) string { return hashData(nil, nil, jsonString(spec)) }

// matchNamespaces lists the virtual namespaces a selector matches, sorted.
func matchNamespaces(sel *metav1.LabelSelector, nsLabels NamespaceLabels) []string {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil
	}
	var out []string
	for ns, l := range nsLabels {
		if s.Matches(labels.Set(l)) {
			out = append(out, ns)
		}
	}
	return sortedKeys(toSet(out))
}

func toSet(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// PodDisruptionBudget returns the host PDB of a virtual one, its selector
// confined to the virtual namespace's pods, so host evictions (drains)
// respect the tenant's budget. Its status is the tenant controller
// manager's to compute (the virtual pods mirror the host's).
func (t Tenant) PodDisruptionBudget(v *policyv1.PodDisruptionBudget) *policyv1.PodDisruptionBudget {
	h := &policyv1.PodDisruptionBudget{ObjectMeta: t.HostMeta(v.ObjectMeta)}
	spec := *v.Spec.DeepCopy()
	spec.Selector = t.labelSelector(spec.Selector, []string{v.Namespace})
	h.Spec = spec
	h.Annotations[naming.AnnotationContentHash] = HashSpec(spec)
	return h
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
