package translate

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"kplex.dev/api/naming"
)

func virtualService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", UID: "svc-uid", Labels: map[string]string{"app": "db"}},
		Spec: corev1.ServiceSpec{
			Type:                corev1.ServiceTypeNodePort,
			Selector:            map[string]string{"app": "db", naming.LabelTenant: "evil", "a.kplex.dev/x": "y"},
			ClusterIP:           "10.0.0.5",
			ClusterIPs:          []string{"10.0.0.5"},
			HealthCheckNodePort: 30999,
			SessionAffinity:     corev1.ServiceAffinityNone,
			Ports: []corev1.ServicePort{
				{Name: "pg", Port: 5432, TargetPort: intstr.FromInt32(5432), Protocol: corev1.ProtocolTCP, NodePort: 30432},
				{Name: "metrics", Port: 9187, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

func TestService(t *testing.T) {
	v := virtualService()
	h := testTenant().Service(v)

	if h.Name != "db-shop-4" || h.Namespace != "kplex-acme" || VirtualUID(h) != "svc-uid" {
		t.Errorf("host service = %s/%s uid %q", h.Namespace, h.Name, VirtualUID(h))
	}
	if h.Labels[naming.LabelTenant] != "acme" || h.Labels[naming.LabelManaged] != "true" || h.Labels["app"] != "db" {
		t.Errorf("labels = %v", h.Labels)
	}
	wantSel := map[string]string{"app": "db", naming.LabelTenant: "acme", naming.LabelNamespace: "shop"}
	if !reflect.DeepEqual(h.Spec.Selector, wantSel) {
		t.Errorf("selector = %v, want %v", h.Spec.Selector, wantSel)
	}
	if h.Spec.HealthCheckNodePort != 0 {
		t.Errorf("healthCheckNodePort = %d, want 0", h.Spec.HealthCheckNodePort)
	}
	if h.Spec.ClusterIP != "10.0.0.5" || !reflect.DeepEqual(h.Spec.Ports, v.Spec.Ports) {
		t.Errorf("addresses not requested: %s %+v", h.Spec.ClusterIP, h.Spec.Ports)
	}
	if v.Spec.Selector[naming.LabelTenant] != "evil" || v.Spec.HealthCheckNodePort != 30999 {
		t.Error("virtual service mutated")
	}
}

func TestServiceSelectorlessAndHeadless(t *testing.T) {
	v := virtualService()
	v.Spec.Selector = nil
	if h := testTenant().Service(v); h.Spec.Selector != nil {
		t.Errorf("selector-less service got selector %v", h.Spec.Selector)
	}

	v = virtualService()
	v.Spec.Type = corev1.ServiceTypeClusterIP
	v.Spec.ClusterIP, v.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	h := testTenant().Service(v)
	if h.Spec.ClusterIP != corev1.ClusterIPNone || !reflect.DeepEqual(h.Spec.ClusterIPs, []string{corev1.ClusterIPNone}) {
		t.Errorf("headless: clusterIP %q %v", h.Spec.ClusterIP, h.Spec.ClusterIPs)
	}
	WithoutAddresses(h)
	if h.Spec.ClusterIP != corev1.ClusterIPNone || len(h.Spec.ClusterIPs) != 1 {
		t.Errorf("WithoutAddresses(headless): clusterIP %q %v, want None kept", h.Spec.ClusterIP, h.Spec.ClusterIPs)
	}
}

func TestWithoutAddresses(t *testing.T) {
	s := testTenant().Service(virtualService())
	WithoutAddresses(s)
	if s.Spec.ClusterIP != "" || s.Spec.ClusterIPs != nil {
		t.Errorf("clusterIP %q %v, want cleared", s.Spec.ClusterIP, s.Spec.ClusterIPs)
	}
	for _, p := range s.Spec.Ports {
		if p.NodePort != 0 {
			t.Errorf("port %s nodePort = %d, want 0", p.Name, p.NodePort)
		}
	}
	if s.Spec.Ports[0].Port != 5432 || len(s.Spec.Ports) != 2 {
		t.Errorf("ports = %+v", s.Spec.Ports)
	}
}

// hostService is want as the host API server stores it: addresses and
// defaults of the host's choosing.
func hostService(want *corev1.Service) *corev1.Service {
	h := want.DeepCopy()
	h.ResourceVersion = "42"
	h.Spec.ClusterIP, h.Spec.ClusterIPs = "10.200.0.9", []string{"10.200.0.9"}
	h.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	h.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
	h.Spec.HealthCheckNodePort = 31111
	h.Spec.SessionAffinity = corev1.ServiceAffinityNone
	h.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
	h.Spec.Ports[1].NodePort = 31187
	return h
}

func TestServiceNeedsUpdate(t *testing.T) {
	base := func() *corev1.Service {
		w := testTenant().Service(virtualService())
		w.Spec.SessionAffinity = "" // unset in want: the host default stands
		return w
	}
	tests := []struct {
		name   string
		change func(want *corev1.Service)
		update bool
		check  func(t *testing.T, host, out *corev1.Service)
	}{
		{name: "only host-allocated fields differ", change: func(*corev1.Service) {}, update: false},
		{name: "port added", update: true, change: func(w *corev1.Service) {
			w.Spec.Ports = append(w.Spec.Ports, corev1.ServicePort{Name: "admin", Port: 8080, Protocol: corev1.ProtocolTCP})
		}, check: func(t *testing.T, host, out *corev1.Service) {
			if len(out.Spec.Ports) != 3 || out.Spec.Ports[1].NodePort != 31187 || out.Spec.Ports[2].NodePort != 0 {
				t.Errorf("ports = %+v, want host node port kept for metrics", out.Spec.Ports)
			}
		}},
		{name: "port number changed", update: true, change: func(w *corev1.Service) { w.Spec.Ports[1].Port = 9188 }, check: func(t *testing.T, host, out *corev1.Service) {
			if out.Spec.Ports[1].Port != 9188 || out.Spec.Ports[1].NodePort != 0 {
				t.Errorf("port = %+v, want 9188 without the old node port", out.Spec.Ports[1])
			}
		}},
		{name: "target port changed", update: true, change: func(w *corev1.Service) { w.Spec.Ports[0].TargetPort = intstr.FromInt32(6432) }},
		{name: "selector changed", update: true, change: func(w *corev1.Service) { w.Spec.Selector["app"] = "db2" }, check: func(t *testing.T, host, out *corev1.Service) {
			if out.Spec.Selector["app"] != "db2" || out.Spec.Selector[naming.LabelTenant] != "acme" {
				t.Errorf("selector = %v", out.Spec.Selector)
			}
		}},
		{name: "label changed", update: true, change: func(w *corev1.Service) { w.Labels["tier"] = "data" }},
		{name: "annotation changed", update: true, change: func(w *corev1.Service) { w.Annotations["note"] = "x" }},
		{name: "session affinity set", update: true, change: func(w *corev1.Service) { w.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }},
		{name: "type changed", update: true, change: func(w *corev1.Service) { w.Spec.Type = corev1.ServiceTypeLoadBalancer }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := hostService(base())
			want := base()
			tt.change(want)
			hostBefore := host.DeepCopy()
			out, update := ServiceNeedsUpdate(host, want)
			if update != tt.update {
				t.Fatalf("update = %v, want %v (out %+v)", update, tt.update, out.Spec)
			}
			// Host-allocated fields always survive the update.
			if out.Spec.ClusterIP != "10.200.0.9" || out.Spec.ClusterIPs[0] != "10.200.0.9" || out.Spec.HealthCheckNodePort != 31111 ||
				*out.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack || *out.Spec.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyCluster {
				t.Errorf("host-allocated fields lost: %+v", out.Spec)
			}
			if out.ResourceVersion != "42" || out.Name != "db-shop-4" {
				t.Errorf("out metadata = %s rv %s", out.Name, out.ResourceVersion)
			}
			if !reflect.DeepEqual(host, hostBefore) {
				t.Error("host service mutated")
			}
			if !update && !reflect.DeepEqual(out.Spec, host.Spec) {
				t.Errorf("no update but out.Spec = %+v, want host spec %+v", out.Spec, host.Spec)
			}
			if !reflect.DeepEqual(out.Labels, want.Labels) || !reflect.DeepEqual(out.Annotations, want.Annotations) {
				t.Errorf("out metadata = %v %v, want %v %v", out.Labels, out.Annotations, want.Labels, want.Annotations)
			}
			if tt.check != nil {
				tt.check(t, host, out)
			}
		})
	}
}

func TestNodePortsDiffer(t *testing.T) {
	ports := func(np ...int32) []corev1.ServicePort {
		return []corev1.ServicePort{{Name: "http", Port: 80, NodePort: np[0]}, {Name: "https", Port: 443, NodePort: np[1]}}
	}
	svcWith := func(p []corev1.ServicePort) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Ports: p}}
	}
	tests := []struct {
		name         string
		virtual, hst []corev1.ServicePort
		want         []corev1.ServicePort
		differ       bool
	}{
		{name: "same", virtual: ports(30080, 30443), hst: ports(30080, 30443), want: ports(30080, 30443)},
		{name: "host allocated another", virtual: ports(30080, 30443), hst: ports(31000, 30443), want: ports(31000, 30443), differ: true},
		{name: "virtual had none", virtual: ports(0, 0), hst: ports(31000, 31001), want: ports(31000, 31001), differ: true},
		{name: "port missing on host", virtual: ports(30080, 30443), hst: ports(30080, 30443)[:1], want: ports(30080, 30443)},
		{name: "same name other port", virtual: ports(30080, 30443), hst: []corev1.ServicePort{{Name: "http", Port: 8080, NodePort: 31000}}, want: ports(30080, 30443)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := svcWith(tt.virtual)
			before := append([]corev1.ServicePort(nil), tt.virtual...)
			got, differ := NodePortsDiffer(v, svcWith(tt.hst))
			if differ != tt.differ || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("NodePortsDiffer = %+v, %v; want %+v, %v", got, differ, tt.want, tt.differ)
			}
			if !reflect.DeepEqual(v.Spec.Ports, before) {
				t.Error("virtual ports mutated")
			}
		})
	}
}
