package translate

import (
	"reflect"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"kplex.dev/api/naming"
)

func TestIngress(t *testing.T) {
	tr := NewTenant("demo", "10.0.0.1", 443)
	svc := func(name string) *networkingv1.IngressBackend {
		return &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: 80}}}
	}
	v := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "i1", Labels: map[string]string{naming.LabelTenant: "other"}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("public"),
			DefaultBackend:   svc("fallback"),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"shop.example"}, SecretName: "shop-tls"}, {SecretName: "shop-tls"}},
			Rules: []networkingv1.IngressRule{{Host: "shop.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: *svc("web")}},
			}}}},
		},
	}
	orig := v.DeepCopy()
	h := tr.Ingress(v, map[string]string{"public": "nginx-tenants"})
	if !reflect.DeepEqual(v, orig) {
		t.Fatal("the virtual ingress was changed")
	}
	if h.Namespace != "kplex-demo" || h.Name != naming.HostName("shop", "web") || h.Labels[naming.LabelTenant] != "demo" {
		t.Errorf("meta %s/%s labels %v", h.Namespace, h.Name, h.Labels)
	}
	if *h.Spec.IngressClassName != "nginx-tenants" {
		t.Errorf("class %s, want the mapped nginx-tenants", *h.Spec.IngressClassName)
	}
	if got := h.Spec.DefaultBackend.Service.Name; got != naming.HostName("shop", "fallback") {
		t.Errorf("default backend %s", got)
	}
	if got := h.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name; got != naming.HostName("shop", "web") {
		t.Errorf("rule backend %s", got)
	}
	if got := h.Spec.TLS[0].SecretName; got != naming.HostName("shop", "shop-tls") {
		t.Errorf("tls secret %s", got)
	}
	if got := IngressSecrets(v); !reflect.DeepEqual(got, []string{"shop-tls"}) {
		t.Errorf("IngressSecrets = %v", got)
	}
	// Unmapped classes are kept; no class stays none.
	if h := tr.Ingress(v, nil); *h.Spec.IngressClassName != "public" {
		t.Errorf("unmapped class became %s", *h.Spec.IngressClassName)
	}
	v.Spec.IngressClassName = nil
	if h := tr.Ingress(v, map[string]string{"public": "x"}); h.Spec.IngressClassName != nil {
		t.Errorf("no class became %v", *h.Spec.IngressClassName)
	}
	// The hash follows the spec.
	a := ContentHash(tr.Ingress(orig, nil).Annotations)
	changed := orig.DeepCopy()
	changed.Spec.Rules[0].Host = "other.example"
	if a == ContentHash(tr.Ingress(changed, nil).Annotations) {
		t.Error("hash unchanged after a rule change")
	}
}
