package translate

import (
	networkingv1 "k8s.io/api/networking/v1"

	"kplex.dev/api/naming"
)

// Ingress returns the host Ingress of a virtual one: backend Services and
// TLS Secrets translated to their host names (so a rule can only reach the
// tenant's own Services), the ingress class mapped through classes (a
// virtual class name -> host class name; unmapped names are kept).
func (t Tenant) Ingress(v *networkingv1.Ingress, classes map[string]string) *networkingv1.Ingress {
	h := &networkingv1.Ingress{ObjectMeta: t.HostMeta(v.ObjectMeta)}
	spec := *v.Spec.DeepCopy()
	if spec.IngressClassName != nil {
		if host, ok := classes[*spec.IngressClassName]; ok {
			spec.IngressClassName = &host
		}
	}
	backend := func(b *networkingv1.IngressBackend) {
		if b != nil && b.Service != nil {
			b.Service.Name = t.HostName(v.Namespace, b.Service.Name)
		}
	}
	backend(spec.DefaultBackend)
	for i := range spec.Rules {
		if spec.Rules[i].HTTP == nil {
			continue
		}
		for j := range spec.Rules[i].HTTP.Paths {
			backend(&spec.Rules[i].HTTP.Paths[j].Backend)
		}
	}
	for i := range spec.TLS {
		if spec.TLS[i].SecretName != "" {
			spec.TLS[i].SecretName = t.HostName(v.Namespace, spec.TLS[i].SecretName)
		}
	}
	h.Spec = spec
	h.Annotations[naming.AnnotationContentHash] = HashSpec(spec)
	return h
}

// IngressSecrets lists the Secrets (virtual names) an Ingress uses for TLS:
// they are synced like Secrets pods use.
func IngressSecrets(v *networkingv1.Ingress) []string {
	set := map[string]bool{}
	for _, t := range v.Spec.TLS {
		set[t.SecretName] = true
	}
	return sortedKeys(set)
}
