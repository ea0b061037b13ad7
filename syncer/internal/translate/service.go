package translate

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// Service returns the host Service of virtual Service v. It asks for v's
// ClusterIP(s) and node ports, so the host allocates the same addresses
// when they are free there (the caller retries without them otherwise and
// then moves the virtual Service to the host's address).
func (t Tenant) Service(v *corev1.Service) *corev1.Service {
	h := &corev1.Service{ObjectMeta: t.HostMeta(v.ObjectMeta)}
	spec := *v.Spec.DeepCopy()
	if len(spec.Selector) > 0 {
		spec.Selector = t.Selector(v.Namespace, spec.Selector)
	}
	spec.HealthCheckNodePort = 0
	h.Spec = spec
	return h
}

// WithoutAddresses clears what the host may refuse as already allocated.
func WithoutAddresses(s *corev1.Service) {
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
	}
	for i := range s.Spec.Ports {
		s.Spec.Ports[i].NodePort = 0
	}
}

// ServiceNeedsUpdate reports whether the host Service must be updated to
// match want, and returns the updated copy (the host's allocated addresses
// kept: they are immutable or owned by the host).
func ServiceNeedsUpdate(host, want *corev1.Service) (*corev1.Service, bool) {
	out := host.DeepCopy()
	out.Labels, out.Annotations = want.Labels, want.Annotations
	spec := *want.Spec.DeepCopy()
	spec.ClusterIP, spec.ClusterIPs = host.Spec.ClusterIP, host.Spec.ClusterIPs
	spec.IPFamilies, spec.IPFamilyPolicy = host.Spec.IPFamilies, host.Spec.IPFamilyPolicy
	spec.HealthCheckNodePort = host.Spec.HealthCheckNodePort
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = host.Spec.SessionAffinity
	}
	if spec.InternalTrafficPolicy == nil {
		spec.InternalTrafficPolicy = host.Spec.InternalTrafficPolicy
	}
	for i := range spec.Ports {
		if spec.Ports[i].NodePort == 0 {
			for _, hp := range host.Spec.Ports {
				if hp.Name == spec.Ports[i].Name && hp.Port == spec.Ports[i].Port {
					spec.Ports[i].NodePort = hp.NodePort
				}
			}
		}
	}
	out.Spec = spec
	same := equality.Semantic.DeepEqual(host.Spec, out.Spec) &&
		equality.Semantic.DeepEqual(host.Labels, out.Labels) &&
		equality.Semantic.DeepEqual(host.Annotations, out.Annotations)
	return out, !same
}

// NodePortsDiffer reports whether a virtual Service's node ports differ
// from the host's (the host allocated others), returning the virtual
// ports with the host's node ports.
func NodePortsDiffer(v, host *corev1.Service) ([]corev1.ServicePort, bool) {
	ports := append([]corev1.ServicePort(nil), v.Spec.Ports...)
	differ := false
	for i := range ports {
		for _, hp := range host.Spec.Ports {
			if hp.Name == ports[i].Name && hp.Port == ports[i].Port && hp.NodePort != ports[i].NodePort {
				ports[i].NodePort = hp.NodePort
				differ = true
			}
		}
	}
	return ports, differ
}
