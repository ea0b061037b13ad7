package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/e2e/framework"
)

// testServiceKinds checks each Service type on the host: headless stays
// headless, a NodePort keeps the same node port on both sides, an
// ExternalName is copied, and a selector-less Service gets its Endpoints.
func testServiceKinds(t *testing.T, demo, host kubernetes.Interface) {
	ctx := context.Background()
	const ns = "default"
	hostNS := naming.HostNamespace("demo")
	svcs := []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "headless"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "np"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "manual"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}}},
	}
	for _, s := range svcs {
		if _, err := demo.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "manual"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.250.0.7"}}, Ports: []corev1.EndpointPort{{Port: 5432}},
	}}}
	if _, err := demo.CoreV1().Endpoints(ns).Create(ctx, ep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func(ctx context.Context, name string) (*corev1.Service, *corev1.Service, error) {
		v, err := demo.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, err
		}
		h, err := host.CoreV1().Services(hostNS).Get(ctx, naming.HostName(ns, name), metav1.GetOptions{})
		return v, h, err
	}
	framework.Eventually(t, 30*time.Second, "service kinds on the host", func(ctx context.Context) error {
		if _, h, err := get(ctx, "headless"); err != nil || h.Spec.ClusterIP != corev1.ClusterIPNone {
			return fmt.Errorf("headless: %v", err)
		}
		v, h, err := get(ctx, "np")
		if err != nil {
			return fmt.Errorf("np: %v", err)
		}
		if v.Spec.Ports[0].NodePort == 0 || v.Spec.Ports[0].NodePort != h.Spec.Ports[0].NodePort || v.Spec.ClusterIP != h.Spec.ClusterIP {
			return fmt.Errorf("np: virtual %s:%d, host %s:%d", v.Spec.ClusterIP, v.Spec.Ports[0].NodePort, h.Spec.ClusterIP, h.Spec.Ports[0].NodePort)
		}
		if _, h, err := get(ctx, "ext"); err != nil || h.Spec.ExternalName != "db.example.com" {
			return fmt.Errorf("ext: %v", err)
		}
		he, err := host.CoreV1().Endpoints(hostNS).Get(ctx, naming.HostName(ns, "manual"), metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("manual endpoints: %v", err)
		}
		if len(he.Subsets) != 1 || he.Subsets[0].Addresses[0].IP != "10.250.0.7" {
			return fmt.Errorf("manual endpoints: %+v", he.Subsets)
		}
		return nil
	}, nil)
	// Deleting a virtual Service deletes the host one.
	if err := demo.CoreV1().Services(ns).Delete(ctx, "ext", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, "host service deleted", func(ctx context.Context) error {
		if _, err := host.CoreV1().Services(hostNS).Get(ctx, naming.HostName(ns, "ext"), metav1.GetOptions{}); err == nil {
			return fmt.Errorf("host service of ext still exists")
		}
		return nil
	}, nil)
}

// testHostEventsAndImage checks that the host scheduler's events reach the
// virtual pod (naming it, not its host pod) and that an image change of a
// running pod reaches the host pod.
func testHostEventsAndImage(t *testing.T, demo, host kubernetes.Interface, pod string) {
	ctx := context.Background()
	const ns = "default"
	framework.Eventually(t, 30*time.Second, "the host scheduler's event on the virtual pod", func(ctx context.Context) error {
		evs, err := demo.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod + ",reason=Scheduled"})
		if err != nil {
			return err
		}
		if len(evs.Items) == 0 {
			return fmt.Errorf("no Scheduled event on %s", pod)
		}
		if m := evs.Items[0].Message; !strings.Contains(m, ns+"/"+pod) || strings.Contains(m, naming.HostNamespace("demo")) {
			return fmt.Errorf("event message %q does not name the virtual pod", m)
		}
		return nil
	}, nil)
	patch := []byte(`{"spec":{"containers":[{"name":"c","image":"registry.example/app:2"}]}}`)
	if _, err := demo.CoreV1().Pods(ns).Patch(ctx, pod, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, "image change on the host pod", func(ctx context.Context) error {
		h, err := host.CoreV1().Pods(naming.HostNamespace("demo")).Get(ctx, naming.HostName(ns, pod), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if h.Spec.Containers[0].Image != "registry.example/app:2" {
			return fmt.Errorf("host image %s", h.Spec.Containers[0].Image)
		}
		return nil
	}, nil)
	resize := []byte(`{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"150m"},"limits":{"cpu":"300m"}}}]}}`)
	if _, err := demo.CoreV1().Pods(ns).Patch(ctx, pod, types.StrategicMergePatchType, resize, metav1.PatchOptions{}, "resize"); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, "in-place resize on the host pod", func(ctx context.Context) error {
		h, err := host.CoreV1().Pods(naming.HostNamespace("demo")).Get(ctx, naming.HostName(ns, pod), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := h.Spec.Containers[0].Resources.Limits.Cpu().String(); got != "300m" {
			return fmt.Errorf("host cpu limit %s", got)
		}
		return nil
	}, nil)
}
