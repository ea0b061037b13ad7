package translate

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"kplex.dev/api/naming"
	"kplex.dev/api/registry"
)

func TestExportedService(t *testing.T) {
	e := registry.ServiceExport{From: registry.ServiceRef{Namespace: "shop", Name: "web"}, To: registry.ServiceRef{Namespace: "shared", Name: "acme-web"}}
	v := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web"}}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.9", Selector: map[string]string{"app": "web"},
		Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP, NodePort: 30080},
			{Name: "grpc", Port: 9000, TargetPort: intstr.FromInt32(9443), Protocol: corev1.ProtocolTCP, AppProtocol: ptr.To("grpc")},
		},
	}}
	h := testTenant().ExportedService(e, v)
	if h.Namespace != "shared" || h.Name != "acme-web" {
		t.Errorf("exported as %s/%s", h.Namespace, h.Name)
	}
	if h.Labels[naming.LabelExportedBy] != "acme" || h.Labels[naming.LabelManaged] != "" || h.Annotations[AnnotationExportOf] != "shop/web" {
		t.Errorf("labels %v, annotations %v", h.Labels, h.Annotations)
	}
	// Selector-less ClusterIP, no tenant addresses; each port targets its
	// own number (the Endpoints carry the pods' ports by name).
	want := corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{
		{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP},
		{Name: "grpc", Port: 9000, TargetPort: intstr.FromInt32(9000), Protocol: corev1.ProtocolTCP, AppProtocol: ptr.To("grpc")},
	}}
	if !reflect.DeepEqual(h.Spec, want) {
		t.Errorf("spec = %+v\nwant %+v", h.Spec, want)
	}
}

func TestExportedEndpoints(t *testing.T) {
	e := registry.ServiceExport{From: registry.ServiceRef{Namespace: "shop", Name: "web"}, To: registry.ServiceRef{Namespace: "shared", Name: "acme-web"}}
	v := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5", NodeName: ptr.To("n1"), TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-0"}}},
		Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
	}}}
	tests := []struct {
		name string
		v    *corev1.Endpoints
		want []corev1.EndpointSubset
	}{
		{"the tenant's addresses, without virtual references", v, []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
		}}},
		{"no tenant endpoints yet: none", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testTenant().ExportedEndpoints(e, tt.v)
			if h.Namespace != "shared" || h.Name != "acme-web" || h.Labels[naming.LabelExportedBy] != "acme" {
				t.Errorf("meta = %+v", h.ObjectMeta)
			}
			if !reflect.DeepEqual(h.Subsets, tt.want) {
				t.Errorf("subsets = %+v, want %+v", h.Subsets, tt.want)
			}
		})
	}
	if v.Subsets[0].Addresses[0].TargetRef == nil {
		t.Error("virtual endpoints mutated")
	}
}
