package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"kplex.dev/api/naming"
	"kplex.dev/e2e/framework"
)

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
}

func scale(t *testing.T, c kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := c.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = replicas
		_, err = c.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runningPods lists a virtual namespace's pods with label app=name and
// fails unless exactly want are Running with pod and host IPs.
func runningPods(ctx context.Context, c kubernetes.Interface, ns, app string, want int) ([]corev1.Pod, error) {
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, err
	}
	running := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.Status.HostIP != "" && p.Spec.NodeName != "" {
			running++
		}
	}
	if running != want || len(pods.Items) != want {
		return nil, fmt.Errorf("%d pods, %d running with IPs and a node; want %d", len(pods.Items), running, want)
	}
	return pods.Items, nil
}

// hostPods lists the host pods of a tenant made from virtual pods with
// label app=name, keyed by virtual name.
func hostPods(ctx context.Context, host kubernetes.Interface, tenant, ns, app string) (map[string]corev1.Pod, error) {
	pods, err := host.CoreV1().Pods(naming.HostNamespace(tenant)).List(ctx, metav1.ListOptions{
		LabelSelector: naming.LabelTenant + "=" + tenant + "," + naming.LabelNamespace + "=" + ns + ",app=" + app,
	})
	if err != nil {
		return nil, err
	}
	out := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		id, ok := naming.IdentityOf(p.Labels, p.Annotations)
		if !ok || id.Tenant != tenant || id.Namespace != ns {
			return nil, fmt.Errorf("host pod %s has identity %v", p.Name, id)
		}
		if _, dup := out[id.Name]; dup {
			return nil, fmt.Errorf("two host pods for virtual pod %s", id.Name)
		}
		if p.Name != naming.HostName(ns, id.Name) {
			return nil, fmt.Errorf("host pod %s is not named after %s/%s", p.Name, ns, id.Name)
		}
		out[id.Name] = p
	}
	return out, nil
}

// converged checks that the virtual pods of app and the tenant's host pods
// are the same set (no duplicate, no orphan), all running.
func converged(ctx context.Context, c, host kubernetes.Interface, tenant, ns, app string, want int) error {
	vpods, err := runningPods(ctx, c, ns, app, want)
	if err != nil {
		return err
	}
	hpods, err := hostPods(ctx, host, tenant, ns, app)
	if err != nil {
		return err
	}
	if len(hpods) != want {
		return fmt.Errorf("%d host pods, want %d", len(hpods), want)
	}
	for _, v := range vpods {
		h, ok := hpods[v.Name]
		if !ok {
			return fmt.Errorf("virtual pod %s has no host pod", v.Name)
		}
		if h.Annotations[naming.AnnotationUID] != string(v.UID) {
			return fmt.Errorf("host pod %s was made from another pod (uid %s, virtual %s)", h.Name, h.Annotations[naming.AnnotationUID], v.UID)
		}
		if h.Status.PodIP != v.Status.PodIP || h.Spec.NodeName != v.Spec.NodeName {
			return fmt.Errorf("virtual pod %s shows %s on %s, host pod %s on %s", v.Name, v.Status.PodIP, v.Spec.NodeName, h.Status.PodIP, h.Spec.NodeName)
		}
	}
	return nil
}

// describeSync prints both sides of a tenant for a failure message.
func describeSync(env *framework.Env, t *testing.T, tenant string) func() string {
	return func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var b strings.Builder
		list := func(side string, c kubernetes.Interface, ns string) {
			pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				fmt.Fprintf(&b, "%s pods: %v\n", side, err)
				return
			}
			lines := []string{}
			for _, p := range pods.Items {
				lines = append(lines, fmt.Sprintf("  %s/%s phase=%s node=%s ip=%s deleting=%v", p.Namespace, p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP, p.DeletionTimestamp != nil))
			}
			sort.Strings(lines)
			fmt.Fprintf(&b, "%s pods (%d):\n%s\n", side, len(lines), strings.Join(lines, "\n"))
		}
		list("virtual", env.VCluster(t, tenant), "")
		list("host", env.Host(t), naming.HostNamespace(tenant))
		return b.String()
	}
}

// syncerKubeconfig is the absolute path of the shard's kubeconfig for a
// virtual cluster, for registry files the tests write.
func syncerKubeconfig(env *framework.Env, vc string) string {
	p, err := filepath.Abs(env.Layout.VClusterComponentKubeconfig(vc, "syncer"))
	if err != nil {
		panic(err)
	}
	return p
}

// replaceRegistry writes the shards' registry file (reloaded live) and
// returns what puts the previous one back.
func replaceRegistry(t *testing.T, env *framework.Env, body string) (restore func()) {
	t.Helper()
	before, err := os.ReadFile(env.Layout.SyncerTenants())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.Layout.SyncerTenants(), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.WriteFile(env.Layout.SyncerTenants(), before, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// endpointIPs are the ready addresses of ep, sorted.
func endpointIPs(ep *corev1.Endpoints) []string {
	var out []string
	for _, s := range ep.Subsets {
		for _, a := range s.Addresses {
			out = append(out, a.IP)
		}
	}
	sort.Strings(out)
	return out
}
