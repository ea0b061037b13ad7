package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/e2e/framework"
)

// testServiceExport exports demo's Service web (5 pods) into the host
// namespace e2e-shared (registry exportServices, reloaded live): the host
// gets a Service there whose endpoints are exactly the addresses of demo's
// host pods of web, and follow a scale-up; an export onto a host Service
// that is not demo's is refused and that Service left alone; taken out of
// the registry, the export goes.
func testServiceExport(t *testing.T, env *framework.Env, demo, host kubernetes.Interface) {
	ctx := context.Background()
	const shared = "e2e-shared"
	if _, err := host.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shared}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	taken := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "taken"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 81}}}}
	if _, err := host.CoreV1().Services(shared).Create(ctx, taken, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	reg := fmt.Sprintf(`tenants:
- name: demo
  kubeconfig: %s
  exportServices:
  - {from: {namespace: default, name: web}, to: {namespace: %s, name: demo-web}}
  - {from: {namespace: default, name: web}, to: {namespace: %s, name: taken}}
- name: other
  kubeconfig: %s
`, syncerKubeconfig(env, "demo"), shared, shared, syncerKubeconfig(env, "other"))
	restore := replaceRegistry(t, env, reg)
	// The addresses the export must carry: demo's host pods of web.
	hostIPs := func(ctx context.Context) ([]string, error) {
		pods, err := host.CoreV1().Pods(naming.HostNamespace("demo")).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return nil, err
		}
		var ips []string
		for _, p := range pods.Items {
			if p.Status.PodIP != "" && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				ips = append(ips, p.Status.PodIP)
			}
		}
		sort.Strings(ips)
		return ips, nil
	}
	exported := func(ctx context.Context, want int) error {
		svc, err := host.CoreV1().Services(shared).Get(ctx, "demo-web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if svc.Labels[naming.LabelExportedBy] != "demo" || len(svc.Spec.Selector) != 0 || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.ClusterIP == "" {
			return fmt.Errorf("exported service: labels %v, selector %v, ports %+v, clusterIP %q", svc.Labels, svc.Spec.Selector, svc.Spec.Ports, svc.Spec.ClusterIP)
		}
		ep, err := host.CoreV1().Endpoints(shared).Get(ctx, "demo-web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		got := endpointIPs(ep)
		wantIPs, err := hostIPs(ctx)
		if err != nil {
			return err
		}
		if len(got) != want || strings.Join(got, ",") != strings.Join(wantIPs, ",") {
			return fmt.Errorf("exported endpoints %v, demo's host pods of web %v, want %d", got, wantIPs, want)
		}
		return nil
	}
	framework.Eventually(t, 45*time.Second, "web exported with its 5 pods' host addresses", func(ctx context.Context) error { return exported(ctx, 5) }, nil)
	scale(t, demo, "default", "web", 6)
	framework.Eventually(t, 60*time.Second, "the export follows a scale-up", func(ctx context.Context) error { return exported(ctx, 6) }, nil)
	got, err := host.CoreV1().Services(shared).Get(ctx, "taken", metav1.GetOptions{})
	if err != nil || got.Labels[naming.LabelExportedBy] != "" || got.Spec.Ports[0].Port != 81 {
		t.Errorf("a host service that is not demo's export was changed: %+v (%v)", got, err)
	}
	framework.Eventually(t, 30*time.Second, "the refused export reported on demo's service", func(ctx context.Context) error {
		evs, err := demo.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web,reason=ExportConflict"})
		if err != nil || len(evs.Items) == 0 {
			return fmt.Errorf("no ExportConflict event (%v)", err)
		}
		return nil
	}, nil)

	restore()
	framework.Eventually(t, 45*time.Second, "the export removed with its registration", func(ctx context.Context) error {
		if _, err := host.CoreV1().Services(shared).Get(ctx, "demo-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("service still there (%v)", err)
		}
		if _, err := host.CoreV1().Endpoints(shared).Get(ctx, "demo-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("endpoints still there (%v)", err)
		}
		return nil
	}, nil)
	if _, err := host.CoreV1().Services(shared).Get(ctx, "taken", metav1.GetOptions{}); err != nil {
		t.Errorf("the other host service went with the export: %v", err)
	}
	scale(t, demo, "default", "web", 5)
	framework.Eventually(t, 60*time.Second, "back to 5 pods", func(ctx context.Context) error {
		return converged(ctx, demo, host, "demo", "default", "web", 5)
	}, describeSync(env, t, "demo"))
}
