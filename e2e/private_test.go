package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/cli/localenv"
	"kplex.dev/e2e/framework"
)

// TestPrivateNodes runs a VirtualCluster whose workloads live in another
// cluster (spec.tenancy.privateNodes): a second local host cluster made by
// `up --host-only`. The tenant waits, saying why, until the Secret with
// that cluster's kubeconfig exists; then its control plane runs on the
// host and its pods, Services and host namespace in the other cluster,
// pause removes its pods there, and delete removes its namespace there.
func TestPrivateNodes(t *testing.T) {
	const podCIDR = "10.245.0.0/16"
	other := framework.Start(t, func(o *localenv.Options) {
		o.HostOnly, o.VClusters, o.Nodes, o.PodCIDR = true, []string{}, 2, podCIDR
	})
	env := framework.Start(t, func(o *localenv.Options) { o.VClusters = []string{} })
	ctx := context.Background()
	host, otherHost := env.Host(t), other.Host(t)
	dyn := dynamic.NewForConfigOrDie(framework.RESTConfig(t, env.Layout.HostKubeconfig()))
	hostNS := naming.HostNamespace("p1")

	spec := filepath.Join(t.TempDir(), "p1.yaml")
	if err := os.WriteFile(spec, []byte("tenancy:\n  privateNodes: {kubeconfigSecret: other-cluster}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKplexctl(t, env, "create", "p1", "-f", spec)
	waitVC(t, env, dyn, "p1", "Pending", "Secret default/other-cluster not found", 30*time.Second)
	if _, err := host.CoreV1().Namespaces().Get(ctx, hostNS, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a tenant without its private cluster got a host namespace: %v", err)
	}

	kc, err := os.ReadFile(other.Layout.HostKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other-cluster", Namespace: "default"}, Data: map[string][]byte{"kubeconfig": kc}}
	if _, err := host.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitVC(t, env, dyn, "p1", "Ready", "", 2*time.Minute)

	tc := operatorClient(t, env, "p1")
	if _, err := tc.AppsV1().Deployments("default").Create(ctx, deployment("web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
	}}
	if _, err := tc.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	describe := func() string {
		out := describeVC(t, env, "p1")()
		for name, c := range map[string]kubernetes.Interface{"tenant": tc, "other cluster": otherHost} {
			ns := "default"
			if c == otherHost {
				ns = hostNS
			}
			pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
			out += fmt.Sprintf("\n%s pods in %s (%v):", name, ns, err)
			if pods != nil {
				for _, p := range pods.Items {
					out += fmt.Sprintf("\n  %s %s %s on %q", p.Name, p.Status.Phase, p.Status.PodIP, p.Spec.NodeName)
				}
			}
		}
		return out
	}
	framework.Eventually(t, 90*time.Second, "p1's pods and Service in the other cluster", func(ctx context.Context) error {
		if err := converged(ctx, tc, otherHost, "p1", "default", "web", 2); err != nil {
			return err
		}
		return inPrivateCluster(ctx, tc, host, otherHost, podCIDR)
	}, describe)

	// The Secret edited to name another cluster: refused, the workloads
	// stay where they are, until it is put back.
	moved := strings.Replace(string(kc), "server: https://127.0.0.1:", "server: https://127.0.0.2:", 1)
	if moved == string(kc) {
		t.Fatalf("the other cluster's kubeconfig has no loopback server:\n%s", kc)
	}
	setSecret := func(data []byte) {
		t.Helper()
		s, err := host.CoreV1().Secrets("default").Get(ctx, "other-cluster", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Data["kubeconfig"] = data
		if _, err := host.CoreV1().Secrets("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setSecret([]byte(moved))
	waitVC(t, env, dyn, "p1", "", "cannot move between clusters", 30*time.Second)
	setSecret(kc)
	framework.Eventually(t, 30*time.Second, "p1 settled again on its cluster", func(ctx context.Context) error {
		if out, _ := kplexctl(t, env, "describe", "p1"); strings.Contains(out, "cannot move between clusters") {
			return fmt.Errorf("still refused:\n%s", out)
		}
		return inPrivateCluster(ctx, tc, host, otherHost, podCIDR)
	}, describe)

	mustKplexctl(t, env, "pause", "p1")
	framework.Eventually(t, 60*time.Second, "p1 Paused, its pods gone from the other cluster", func(ctx context.Context) error {
		if p, err := vcPhase(ctx, dyn, "p1"); err != nil || p != "Paused" {
			return fmt.Errorf("phase %q: %v", p, err)
		}
		pods, err := otherHost.CoreV1().Pods(hostNS).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 0 {
			return fmt.Errorf("pods left in the other cluster: %d (%v)", len(pods.Items), err)
		}
		return nil
	}, describe)
	mustKplexctl(t, env, "resume", "p1")
	framework.Eventually(t, 90*time.Second, "p1 back in the other cluster", func(ctx context.Context) error {
		if p, err := vcPhase(ctx, dyn, "p1"); err != nil || p != "Ready" {
			return fmt.Errorf("phase %q: %v", p, err)
		}
		if err := replacedAfterEviction(ctx, tc, otherHost, "p1", "web", 2); err != nil {
			return err
		}
		return inPrivateCluster(ctx, tc, host, otherHost, podCIDR)
	}, describe)

	mustKplexctl(t, env, "delete", "p1", "--wait", "--timeout", "2m")
	for name, c := range map[string]kubernetes.Interface{"host": host, "other cluster": otherHost} {
		if _, err := c.CoreV1().Namespaces().Get(ctx, hostNS, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: namespace %s after delete: %v", name, hostNS, err)
		}
	}
	if n := tenantKeys(t, env, "p1"); n != 0 {
		t.Errorf("%d datastore keys left", n)
	}
	if left, _ := filepath.Glob(filepath.Join(env.Layout.SyncerTenantsDir(), "p1*")); len(left) != 0 {
		t.Errorf("registry files left: %v", left)
	}
	if _, err := host.CoreV1().Secrets("default").Get(ctx, "other-cluster", metav1.GetOptions{}); err != nil {
		t.Errorf("the user's Secret is not kplex's to delete: %v", err)
	}

	// In one step: `create --private-nodes FILE` stores the kubeconfig in
	// a Secret the VirtualCluster owns, and names it in the spec.
	mustKplexctl(t, env, "create", "p2", "--private-nodes", other.Layout.HostKubeconfig(), "--wait", "--timeout", "2m")
	sec, err := host.CoreV1().Secrets("default").Get(ctx, "p2-private-nodes", metav1.GetOptions{})
	if err != nil || len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].Kind != "VirtualCluster" || sec.OwnerReferences[0].Name != "p2" {
		t.Fatalf("p2's private-nodes secret: %v %+v", err, sec)
	}
	framework.Eventually(t, 30*time.Second, "p2's host namespace in the other cluster", func(ctx context.Context) error {
		_, err := otherHost.CoreV1().Namespaces().Get(ctx, naming.HostNamespace("p2"), metav1.GetOptions{})
		return err
	}, describeVC(t, env, "p2"))
	if out, err := kplexctl(t, env, "create", "p2", "--private-nodes", other.Layout.HostKubeconfig()); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("a second create of p2: %v %s", err, out)
	}
	mustKplexctl(t, env, "delete", "p2", "--wait", "--timeout", "2m")
	framework.Eventually(t, 90*time.Second, "p2's private-nodes Secret collected with it", func(ctx context.Context) error {
		if _, err := host.CoreV1().Secrets("default").Get(ctx, "p2-private-nodes", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	}, nil)
}

// inPrivateCluster checks that the tenant's running web pods run in the
// other cluster (addresses from its pod range, virtual nodes named after
// its nodes), its Service is copied there, and the host has none of them.
func inPrivateCluster(ctx context.Context, tc, host, other kubernetes.Interface, podCIDR string) error {
	pods, err := tc.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return err
	}
	cidr := netip.MustParsePrefix(podCIDR)
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		if a, err := netip.ParseAddr(p.Status.PodIP); err != nil || !cidr.Contains(a) {
			return fmt.Errorf("pod %s has IP %s, outside the other cluster's %s", p.Name, p.Status.PodIP, podCIDR)
		}
		if _, err := other.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("pod %s on node %s: not the other cluster's: %w", p.Name, p.Spec.NodeName, err)
		}
		if _, err := tc.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("virtual node %s: %w", p.Spec.NodeName, err)
		}
	}
	hostNS := naming.HostNamespace("p1")
	if _, err := other.CoreV1().Services(hostNS).Get(ctx, naming.HostName("default", "web"), metav1.GetOptions{}); err != nil {
		return fmt.Errorf("service web in the other cluster: %w", err)
	}
	hp, err := host.CoreV1().Pods(hostNS).List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err == nil && len(hp.Items) > 0 {
		return fmt.Errorf("%d of the tenant's pods on the host", len(hp.Items))
	}
	return nil
}
