package translate

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"kplex.dev/api/naming"
	"kplex.dev/api/registry"
)

// AnnotationExportOf names the tenant Service ("<namespace>/<name>") a host
// Service exports.
const AnnotationExportOf = naming.Domain + "/export-of"

// ExportedService is the host Service that exports the tenant Service v as
// e.To: selector-less (its Endpoints are written from the tenant's, see
// ExportedEndpoints), with v's ports, each targeting its own port number
// (the Endpoints carry the pods' real ports under the same names).
func (t Tenant) ExportedService(e registry.ServiceExport, v *corev1.Service) *corev1.Service {
	return &corev1.Service{ObjectMeta: t.exportMeta(e), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: portsByNumber(v.Spec.Ports)}}
}

// ExportedEndpoints are the host Endpoints of an exported Service: the
// tenant's Endpoints (its pods' host addresses), without references to
// virtual pods and nodes.
func (t Tenant) ExportedEndpoints(e registry.ServiceExport, v *corev1.Endpoints) *corev1.Endpoints {
	h := &corev1.Endpoints{ObjectMeta: t.exportMeta(e)}
	if v != nil {
		h.Subsets = withoutRefs(v.Subsets)
	}
	return h
}

func (t Tenant) exportMeta(e registry.ServiceExport) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: e.To.Name, Namespace: e.To.Namespace,
		Labels:      map[string]string{naming.LabelExportedBy: t.Name},
		Annotations: map[string]string{AnnotationExportOf: e.From.Namespace + "/" + e.From.Name},
	}
}

// portsByNumber are a selector-less Service's ports: each targets its own
// port number (its Endpoints carry the pods' ports by name).
func portsByNumber(ports []corev1.ServicePort) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, p := range ports {
		out = append(out, corev1.ServicePort{
			Name: p.Name, Protocol: p.Protocol, AppProtocol: p.AppProtocol, Port: p.Port, TargetPort: intstr.FromInt32(p.Port),
		})
	}
	return out
}
