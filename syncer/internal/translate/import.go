package translate

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/naming"
	"kplex.dev/api/registry"
)

// ImportedService is the tenant Service that imports the host Service h as
// i.To: selector-less (its Endpoints are the host's, see
// ImportedEndpoints), with h's ports, each targeting its own port number;
// headless if h is, an ExternalName if h is one.
func ImportedService(i registry.ServiceImport, h *corev1.Service) *corev1.Service {
	v := &corev1.Service{ObjectMeta: importMeta(i), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}
	switch {
	case h.Spec.Type == corev1.ServiceTypeExternalName:
		v.Spec.Type, v.Spec.ExternalName = corev1.ServiceTypeExternalName, h.Spec.ExternalName
	case h.Spec.ClusterIP == corev1.ClusterIPNone:
		v.Spec.ClusterIP = corev1.ClusterIPNone
	}
	v.Spec.Ports = portsByNumber(h.Spec.Ports)
	return v
}

// ImportedEndpoints are the tenant Endpoints of an imported Service: the
// host's addresses and ports, without references to host pods and nodes
// (the tenant has neither).
func ImportedEndpoints(i registry.ServiceImport, h *corev1.Endpoints) *corev1.Endpoints {
	v := &corev1.Endpoints{ObjectMeta: importMeta(i)}
	if h == nil {
		return v
	}
	v.Subsets = withoutRefs(h.Subsets)
	return v
}

func importMeta(i registry.ServiceImport) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: i.To.Name, Namespace: i.To.Namespace,
		Labels:      map[string]string{naming.LabelImported: "true"},
		Annotations: map[string]string{naming.AnnotationImportOf: i.From.Namespace + "/" + i.From.Name},
	}
}
