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

func TestImportedService(t *testing.T) {
	i := registry.ServiceImport{From: registry.ServiceRef{Namespace: "db", Name: "pg"}, To: registry.ServiceRef{Namespace: "default", Name: "postgres"}}
	ports := []corev1.ServicePort{{Name: "pg", Port: 5432, TargetPort: intstr.FromString("pg"), Protocol: corev1.ProtocolTCP, NodePort: 31000}}
	tests := []struct {
		name string
		h    corev1.ServiceSpec
		want corev1.ServiceSpec
	}{
		{"cluster IP", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.3.3", Selector: map[string]string{"app": "pg"}, Ports: ports},
			corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432, TargetPort: intstr.FromInt32(5432), Protocol: corev1.ProtocolTCP}}}},
		{"headless stays headless", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone, Ports: ports},
			corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432, TargetPort: intstr.FromInt32(5432), Protocol: corev1.ProtocolTCP}}}},
		{"external name", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "pg.example.com"},
			corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "pg.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := ImportedService(i, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "pg", Namespace: "db"}, Spec: tt.h})
			if v.Namespace != "default" || v.Name != "postgres" || v.Labels[naming.LabelImported] != "true" || v.Annotations[naming.AnnotationImportOf] != "db/pg" {
				t.Errorf("meta = %+v", v.ObjectMeta)
			}
			if !reflect.DeepEqual(v.Spec, tt.want) {
				t.Errorf("spec = %+v\nwant %+v", v.Spec, tt.want)
			}
		})
	}
}

func TestImportedEndpoints(t *testing.T) {
	i := registry.ServiceImport{From: registry.ServiceRef{Namespace: "db", Name: "pg"}, To: registry.ServiceRef{Namespace: "default", Name: "postgres"}}
	h := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "pg", Namespace: "db"}, Subsets: []corev1.EndpointSubset{{
		Addresses:         []corev1.EndpointAddress{{IP: "10.244.0.5", Hostname: "pg-0", NodeName: ptr.To("n1"), TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "pg-0"}}},
		NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.244.0.6", NodeName: ptr.To("n2")}},
		Ports:             []corev1.EndpointPort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}},
	}}}
	v := ImportedEndpoints(i, h)
	want := []corev1.EndpointSubset{{
		Addresses:         []corev1.EndpointAddress{{IP: "10.244.0.5", Hostname: "pg-0"}},
		NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.244.0.6"}},
		Ports:             []corev1.EndpointPort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}},
	}}
	if v.Namespace != "default" || v.Name != "postgres" || !reflect.DeepEqual(v.Subsets, want) {
		t.Errorf("endpoints = %s/%s %+v", v.Namespace, v.Name, v.Subsets)
	}
	if h.Subsets[0].Addresses[0].TargetRef == nil {
		t.Error("host endpoints mutated")
	}
	if got := ImportedEndpoints(i, nil); len(got.Subsets) != 0 {
		t.Errorf("no host endpoints: %+v", got.Subsets)
	}
}
