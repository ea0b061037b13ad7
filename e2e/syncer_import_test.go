package e2e

import (
	"context"
	"fmt"
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

// testServiceImports imports into demo (registry importServices, reloaded
// live) a host Service (selector-less, hand-made Endpoints) and other's
// Service web (from its host copy): demo gets both as Services whose
// Endpoints are the host's, its host copies carry them on, a host change
// follows, and taken out of the registry the imports go.
func testServiceImports(t *testing.T, env *framework.Env, demo, other, host kubernetes.Interface) {
	ctx := context.Background()
	const db = "e2e-db"
	if _, err := host.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: db}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pg := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "pg"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}}}
	if _, err := host.CoreV1().Services(db).Create(ctx, pg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pgEndpoints := func(ip string) *corev1.Endpoints {
		return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "pg"}, Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: ip}}, Ports: []corev1.EndpointPort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}}}}}
	}
	if _, err := host.CoreV1().Endpoints(db).Create(ctx, pgEndpoints("10.250.0.9"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := other.CoreV1().Services("default").Create(ctx, web, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	reg := fmt.Sprintf(`tenants:
- name: demo
  kubeconfig: %s
  importServices:
  - {from: {namespace: %s, name: pg}, to: {namespace: default, name: pg}}
  - {from: {namespace: kplex-other, name: %s}, to: {namespace: default, name: other-web}}
- name: other
  kubeconfig: %s
`, syncerKubeconfig(env, "demo"), db, naming.HostName("default", "web"), syncerKubeconfig(env, "other"))
	restore := replaceRegistry(t, env, reg)
	// imported: demo's Service name carries want, and so does its host copy.
	imported := func(ctx context.Context, name, want string) error {
		svc, err := demo.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if svc.Labels[naming.LabelImported] != "true" || len(svc.Spec.Selector) != 0 || svc.Spec.ClusterIP == "" {
			return fmt.Errorf("demo's %s: labels %v selector %v clusterIP %q", name, svc.Labels, svc.Spec.Selector, svc.Spec.ClusterIP)
		}
		ep, err := demo.CoreV1().Endpoints("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := strings.Join(endpointIPs(ep), ","); got != want {
			return fmt.Errorf("demo's %s endpoints %s, want %s", name, got, want)
		}
		hep, err := host.CoreV1().Endpoints(naming.HostNamespace("demo")).Get(ctx, naming.HostName("default", name), metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("host copy of demo's %s endpoints: %w", name, err)
		}
		if got := strings.Join(endpointIPs(hep), ","); got != want {
			return fmt.Errorf("host copy of demo's %s endpoints %s, want %s", name, got, want)
		}
		return nil
	}
	framework.Eventually(t, 45*time.Second, "the host service imported into demo", func(ctx context.Context) error {
		return imported(ctx, "pg", "10.250.0.9")
	}, nil)
	framework.Eventually(t, 45*time.Second, "other's web imported into demo", func(ctx context.Context) error {
		ep, err := other.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(ep.Subsets) == 0 {
			return fmt.Errorf("other's web has no endpoints yet")
		}
		return imported(ctx, "other-web", strings.Join(endpointIPs(ep), ","))
	}, nil)
	if _, err := host.CoreV1().Endpoints(db).Update(ctx, pgEndpoints("10.250.0.10"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, "a host change reaches the import", func(ctx context.Context) error {
		return imported(ctx, "pg", "10.250.0.10")
	}, nil)
	// The host Service made again headless (a ClusterIP cannot change):
	// the import follows.
	if err := host.CoreV1().Services(db).Delete(ctx, "pg", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pg.Spec.ClusterIP = corev1.ClusterIPNone
	if _, err := host.CoreV1().Services(db).Create(ctx, pg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The host's endpoints controller deletes the Endpoints of a deleted
	// Service, and may do so after they are created again (its informer
	// not yet knowing the new Service): the host's owner, this test,
	// puts them back whenever they are gone.
	framework.Eventually(t, 30*time.Second, "the import turned headless", func(ctx context.Context) error {
		if _, err := host.CoreV1().Endpoints(db).Create(ctx, pgEndpoints("10.250.0.10"), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("host endpoints of pg: %w", err)
		}
		svc, err := demo.CoreV1().Services("default").Get(ctx, "pg", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			return fmt.Errorf("demo's pg has clusterIP %q", svc.Spec.ClusterIP)
		}
		hsvc, err := host.CoreV1().Services(naming.HostNamespace("demo")).Get(ctx, naming.HostName("default", "pg"), metav1.GetOptions{})
		if err != nil || hsvc.Spec.ClusterIP != corev1.ClusterIPNone {
			return fmt.Errorf("host copy of demo's pg: %v %v", err, hsvc)
		}
		return imported(ctx, "pg", "10.250.0.10")
	}, nil)

	restore()
	framework.Eventually(t, 45*time.Second, "the imports removed with their registration", func(ctx context.Context) error {
		for _, n := range []string{"pg", "other-web"} {
			if _, err := demo.CoreV1().Services("default").Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("demo's %s still there (%v)", n, err)
			}
		}
		return nil
	}, nil)
	if _, err := host.CoreV1().Services(db).Get(ctx, "pg", metav1.GetOptions{}); err != nil {
		t.Errorf("the imported host service went with the import: %v", err)
	}
}
