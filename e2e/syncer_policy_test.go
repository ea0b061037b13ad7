package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/e2e/framework"
)

// testNetworkPolicy checks a NetworkPolicy on the host: selectors
// confined to the tenant's pods of the right virtual namespaces, namespace
// selectors evaluated against virtual namespaces (and re-evaluated when
// their labels change), and a peer forging the other tenant's label still
// confined to this tenant. Run in both tenants with the same names.
func testNetworkPolicy(t *testing.T, tenant, other string, demo, host kubernetes.Interface) {
	ctx := context.Background()
	const ns = "default"
	hostNS := naming.HostNamespace(tenant)
	for _, n := range []string{"front", "back"} {
		labels := map[string]string{}
		if n == "front" {
			labels["team"] = "a"
		}
		if _, err := demo.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web-in"}, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
			{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}, PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}},
			{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{naming.LabelTenant: other, "app": "web"}}},
		}}},
	}}
	if _, err := demo.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	peerNamespaces := func(ctx context.Context) ([]string, *networkingv1.NetworkPolicy, error) {
		h, err := host.NetworkingV1().NetworkPolicies(hostNS).Get(ctx, naming.HostName(ns, "web-in"), metav1.GetOptions{})
		if err != nil {
			return nil, nil, err
		}
		for _, r := range h.Spec.Ingress[0].From[0].PodSelector.MatchExpressions {
			if r.Key == naming.LabelNamespace {
				return r.Values, h, nil
			}
		}
		return nil, h, fmt.Errorf("peer selector not confined to namespaces: %+v", h.Spec.Ingress[0].From[0].PodSelector)
	}
	framework.Eventually(t, 30*time.Second, tenant+": host network policy confined to the tenant", func(ctx context.Context) error {
		got, h, err := peerNamespaces(ctx)
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{"front"}) {
			return fmt.Errorf("peer namespaces %v, want [front]", got)
		}
		sel := h.Spec.PodSelector
		if sel.MatchLabels[naming.LabelTenant] != tenant || sel.MatchLabels["app"] != "web" {
			return fmt.Errorf("pod selector %+v", sel)
		}
		for _, peer := range h.Spec.Ingress[0].From {
			if peer.NamespaceSelector != nil || peer.PodSelector.MatchLabels[naming.LabelTenant] != tenant {
				return fmt.Errorf("peer can reach beyond the tenant: %+v", peer)
			}
		}
		return nil
	}, nil)
	back, err := demo.CoreV1().Namespaces().Get(ctx, "back", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	back.Labels = map[string]string{"team": "a"}
	if _, err := demo.CoreV1().Namespaces().Update(ctx, back, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, tenant+": a relabelled namespace joins the peer", func(ctx context.Context) error {
		got, _, err := peerNamespaces(ctx)
		if err == nil && !slices.Equal(got, []string{"back", "front"}) {
			err = fmt.Errorf("peer namespaces %v, want [back front]", got)
		}
		return err
	}, nil)
}

// testPDB checks a PodDisruptionBudget the host counts only the tenant's
// pods for, although another tenant has pods with the same labels in the
// same virtual namespace.
func testPDB(t *testing.T, demo, host kubernetes.Interface) {
	ctx := context.Background()
	const ns = "default"
	hostNS := naming.HostNamespace("demo")

	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: policyv1.PodDisruptionBudgetSpec{
		MinAvailable: &intstr.IntOrString{Type: intstr.Int, IntVal: 2},
		Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
	}}
	if _, err := demo.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 45*time.Second, "the host counts only the tenant's pods for its PDB", func(ctx context.Context) error {
		h, err := host.PolicyV1().PodDisruptionBudgets(hostNS).Get(ctx, naming.HostName(ns, "web"), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if h.Status.ExpectedPods != 5 || h.Status.DisruptionsAllowed != 3 {
			return fmt.Errorf("host PDB status expected=%d allowed=%d, want 5 and 3", h.Status.ExpectedPods, h.Status.DisruptionsAllowed)
		}
		return nil
	}, nil)
}

// testIngresses runs testIngress in each tenant with the same names, then
// checks each tenant still shows its own load balancer.
func testIngresses(t *testing.T, tenants map[string]kubernetes.Interface, host kubernetes.Interface) {
	ips := map[string]string{}
	i := 9
	for tn, c := range tenants {
		ips[tn] = fmt.Sprintf("10.200.0.%d", i)
		i++
		testIngress(t, tn, ips[tn], c, host)
	}
	for tn, c := range tenants {
		v, err := c.NetworkingV1().Ingresses("default").Get(context.Background(), "shop", metav1.GetOptions{})
		if err != nil || len(v.Status.LoadBalancer.Ingress) != 1 || v.Status.LoadBalancer.Ingress[0].IP != ips[tn] {
			t.Errorf("%s's ingress status %+v (%v), want its own %s", tn, v.Status.LoadBalancer, err, ips[tn])
		}
	}
}

// testIngress checks an Ingress on the host: backends and TLS Secret
// translated, the Secret copied (used by the Ingress, no pod needs it),
// and the host's load-balancer status (ip) mirrored back.
func testIngress(t *testing.T, tenant, ip string, demo, host kubernetes.Interface) {
	ctx := context.Background()
	const ns = "default"
	hostNS := naming.HostNamespace(tenant)
	tlsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-tls"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}}
	if _, err := demo.CoreV1().Secrets(ns).Create(ctx, tlsSecret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: networkingv1.IngressSpec{
		TLS: []networkingv1.IngressTLS{{Hosts: []string{"shop.example"}, SecretName: "shop-tls"}},
		Rules: []networkingv1.IngressRule{{Host: "shop.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
		}}}},
	}}
	if _, err := demo.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var h *networkingv1.Ingress
	framework.Eventually(t, 30*time.Second, tenant+": host ingress and its TLS secret", func(ctx context.Context) error {
		var err error
		if h, err = host.NetworkingV1().Ingresses(hostNS).Get(ctx, naming.HostName(ns, "shop"), metav1.GetOptions{}); err != nil {
			return err
		}
		if got := h.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name; got != naming.HostName(ns, "web") {
			return fmt.Errorf("host backend %s", got)
		}
		if got := h.Spec.TLS[0].SecretName; got != naming.HostName(ns, "shop-tls") {
			return fmt.Errorf("host tls secret name %s", got)
		}
		s, err := host.CoreV1().Secrets(hostNS).Get(ctx, naming.HostName(ns, "shop-tls"), metav1.GetOptions{})
		if err != nil || string(s.Data["tls.key"]) != "k" {
			return fmt.Errorf("host tls secret: %v", err)
		}
		return nil
	}, nil)
	h.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: ip}}
	if _, err := host.NetworkingV1().Ingresses(hostNS).UpdateStatus(ctx, h, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, tenant+": load-balancer status mirrored", func(ctx context.Context) error {
		v, err := demo.NetworkingV1().Ingresses(ns).Get(ctx, "shop", metav1.GetOptions{})
		if err == nil && (len(v.Status.LoadBalancer.Ingress) != 1 || v.Status.LoadBalancer.Ingress[0].IP != ip) {
			err = fmt.Errorf("virtual status %+v", v.Status.LoadBalancer)
		}
		return err
	}, nil)
}
