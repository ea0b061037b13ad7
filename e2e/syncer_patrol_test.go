package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/e2e/framework"
)

// testDriftPatrol changes kplex's host objects behind its back (a copied
// ConfigMap's data, a Service's ports) and plants an orphan host pod, and
// checks that the patrol repairs all three and reports it.
func testDriftPatrol(t *testing.T, demo, host kubernetes.Interface) {
	ctx := context.Background()
	const ns = "default"
	hostNS := naming.HostNamespace("demo")
	cms := host.CoreV1().ConfigMaps(hostNS)
	cm, err := cms.Get(ctx, naming.HostName(ns, "settings"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["mode"] = "tampered"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	svcs := host.CoreV1().Services(hostNS)
	svc, err := svcs.Get(ctx, naming.HostName(ns, "web"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports[0].Port = 8080
	if _, err := svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: naming.HostName(ns, "ghost"), Namespace: hostNS,
			Labels:      map[string]string{naming.LabelManaged: "true", naming.LabelTenant: "demo", naming.LabelNamespace: ns},
			Annotations: map[string]string{naming.AnnotationTenant: "demo", naming.AnnotationNamespace: ns, naming.AnnotationName: "ghost"},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}},
	}
	if _, err := host.CoreV1().Pods(hostNS).Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// An unmanaged pod in the same namespace is never touched.
	bystander := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bystander", Namespace: hostNS}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
	if _, err := host.CoreV1().Pods(hostNS).Create(ctx, bystander, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 45*time.Second, "the patrol repairs the host", func(ctx context.Context) error {
		cm, err := cms.Get(ctx, naming.HostName(ns, "settings"), metav1.GetOptions{})
		if err != nil || cm.Data["mode"] != "fast" {
			return fmt.Errorf("host configmap: %v %v", cm.Data, err)
		}
		svc, err := svcs.Get(ctx, naming.HostName(ns, "web"), metav1.GetOptions{})
		if err != nil || svc.Spec.Ports[0].Port != 80 {
			return fmt.Errorf("host service port: %v", err)
		}
		if _, err := host.CoreV1().Pods(hostNS).Get(ctx, orphan.Name, metav1.GetOptions{}); err == nil {
			return fmt.Errorf("orphan host pod still there")
		}
		evs, err := demo.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=DriftRepaired,involvedObject.name=settings"})
		if err != nil || len(evs.Items) == 0 {
			return fmt.Errorf("no DriftRepaired event on the configmap (%v)", err)
		}
		return nil
	}, nil)
	if _, err := host.CoreV1().Pods(hostNS).Get(ctx, "bystander", metav1.GetOptions{}); err != nil {
		t.Fatalf("the unmanaged pod was touched: %v", err)
	}
	_ = host.CoreV1().Pods(hostNS).Delete(ctx, "bystander", metav1.DeleteOptions{})
}
