package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/cli/localenv"
	"kplex.dev/cli/pki"
	"kplex.dev/e2e/framework"
)

// kplexctl runs the CLI against the environment and returns its output.
func kplexctl(t *testing.T, env *framework.Env, args ...string) (string, error) {
	t.Helper()
	args = append(args, "--dir", env.Dir, "--kubeconfig", env.Layout.HostKubeconfig())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(framework.BinDir(t), "kplexctl"), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustKplexctl fails the test when the CLI fails.
func mustKplexctl(t *testing.T, env *framework.Env, args ...string) string {
	t.Helper()
	out, err := kplexctl(t, env, args...)
	if err != nil {
		t.Fatalf("kplexctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// operatorClient is an admin client of an operator-made virtual cluster,
// through the kubeconfig `kplexctl connect` writes.
func operatorClient(t *testing.T, env *framework.Env, name string) kubernetes.Interface {
	t.Helper()
	path := filepath.Join(env.Dir, "connect", name+".kubeconfig")
	mustKplexctl(t, env, "connect", name, "-o", path)
	c, err := kubernetes.NewForConfig(framework.RESTConfig(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// vcPhase reads a VirtualCluster's phase.
func vcPhase(ctx context.Context, dyn dynamic.Interface, name string) (string, error) {
	u, err := dyn.Resource(vcGVR).Namespace("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	p, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	return p, nil
}

// tenantKeys counts a tenant's keys in the datastore, as the tenant (a
// certificate with CN = tenant from the datastore CA).
func tenantKeys(t *testing.T, env *framework.Env, tenant string) int64 {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadCA(env.Layout.HostPKI(), "datastore-ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(pki.CertSpec{CommonName: tenant, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.WriteFiles(dir, "c"); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := (transport.TLSInfo{TrustedCAFile: filepath.Join(env.Layout.HostPKI(), "ca.crt"),
		CertFile: filepath.Join(dir, "c.crt"), KeyFile: filepath.Join(dir, "c.key")}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	st, err := localenv.LoadState(env.Layout)
	if err != nil {
		t.Fatal(err)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{fmt.Sprintf("https://127.0.0.1:%d", st.Ports[localenv.PortDatastore])},
		TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// waitVC waits until a VirtualCluster's phase is phase ("": any) and
// `kplexctl describe` shows says ("": anything).
func waitVC(t *testing.T, env *framework.Env, dyn dynamic.Interface, name, phase, says string, timeout time.Duration) {
	t.Helper()
	framework.Eventually(t, timeout, fmt.Sprintf("%s: phase %q, saying %q", name, phase, says), func(ctx context.Context) error {
		p, err := vcPhase(ctx, dyn, name)
		out := ""
		if says != "" || err != nil || (phase != "" && p != phase) {
			out, _ = kplexctl(t, env, "describe", name)
		}
		if err != nil || (phase != "" && p != phase) || !strings.Contains(out, says) {
			return fmt.Errorf("phase %q (%v):\n%s", p, err, out)
		}
		return nil
	}, nil)
}

// describeVC is what a failing lifecycle test prints.
func describeVC(t *testing.T, env *framework.Env, name string) func() string {
	return func() string {
		out, _ := kplexctl(t, env, "describe", name)
		return out
	}
}

func cm(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}
}

// replacedAfterEviction checks that app has want Running pods backed by host
// pods, and that every other pod of it is Failed as Evicted.
func replacedAfterEviction(ctx context.Context, c, host kubernetes.Interface, tenant, app string, want int) error {
	pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return err
	}
	running := 0
	for _, p := range pods.Items {
		switch {
		case p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil:
			running++
		case p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted":
		default:
			return fmt.Errorf("pod %s: phase %s reason %q, want Running or Evicted", p.Name, p.Status.Phase, p.Status.Reason)
		}
	}
	if running != want {
		return fmt.Errorf("%d Running, want %d", running, want)
	}
	hp, err := hostPods(ctx, host, tenant, "default", app)
	if err != nil {
		return err
	}
	if len(hp) != want {
		return fmt.Errorf("%d host pods, want %d", len(hp), want)
	}
	return nil
}

// dedicateNode labels and taints the first host node for tenant.
func dedicateNode(t *testing.T, host kubernetes.Interface, tenant string) string {
	t.Helper()
	ctx := context.Background()
	nodes, err := host.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) < 2 {
		t.Fatalf("want 2 or more host nodes: %v", err)
	}
	n := nodes.Items[0]
	n.Labels["e2e.kplex.dev/pool"] = tenant
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "e2e.kplex.dev/dedicated", Value: tenant, Effect: corev1.TaintEffectNoSchedule})
	if _, err := host.CoreV1().Nodes().Update(ctx, &n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return n.Name
}

// checkDedicated: every host pod of tenant runs on node, tolerating its
// taint, and no other tenant's pod does.
func checkDedicated(t *testing.T, host kubernetes.Interface, node, tenant string) {
	t.Helper()
	pods, err := host.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{LabelSelector: "kplex.dev/managed=true"})
	if err != nil {
		t.Fatal(err)
	}
	mine := 0
	for _, p := range pods.Items {
		own := p.Labels["kplex.dev/tenant"] == tenant
		if own {
			mine++
		}
		switch {
		case own && (p.Spec.NodeName != node || p.Spec.NodeSelector["e2e.kplex.dev/pool"] != tenant || len(p.Spec.Tolerations) == 0):
			t.Errorf("%s's host pod %s on %q, selector %v, tolerations %v: want its dedicated node %s", tenant, p.Name, p.Spec.NodeName, p.Spec.NodeSelector, p.Spec.Tolerations, node)
		case !own && p.Spec.NodeName == node:
			t.Errorf("host pod %s/%s of another tenant is on %s's dedicated node", p.Namespace, p.Name, tenant)
		}
	}
	if mine == 0 {
		t.Errorf("%s has no host pods", tenant)
	}
}

// checkSyncedResources: t4 syncs disruption budgets only
// (spec.sync.resources), t1 every optional resource (the default): a
// NetworkPolicy reaches the host from t1, not from t4.
func checkSyncedResources(t *testing.T, host kubernetes.Interface, clients map[string]kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny-all"}, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	for _, n := range []string{"t1", "t4"} {
		if _, err := clients[n].NetworkingV1().NetworkPolicies("default").Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if _, err := clients[n].PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	hostObjs := func(tenant string) func() string {
		return func() string {
			nps, _ := host.NetworkingV1().NetworkPolicies(naming.HostNamespace(tenant)).List(ctx, metav1.ListOptions{})
			pdbs, _ := host.PolicyV1().PodDisruptionBudgets(naming.HostNamespace(tenant)).List(ctx, metav1.ListOptions{})
			return fmt.Sprintf("%s's host NetworkPolicies %d, PodDisruptionBudgets %d", tenant, len(nps.Items), len(pdbs.Items))
		}
	}
	for _, n := range []string{"t1", "t4"} {
		framework.Eventually(t, 30*time.Second, n+": the PodDisruptionBudget on the host", func(ctx context.Context) error {
			_, err := host.PolicyV1().PodDisruptionBudgets(naming.HostNamespace(n)).Get(ctx, naming.HostName("default", "web"), metav1.GetOptions{})
			return err
		}, hostObjs(n))
	}
	framework.Eventually(t, 30*time.Second, "t1: the NetworkPolicy on the host", func(ctx context.Context) error {
		_, err := host.NetworkingV1().NetworkPolicies(naming.HostNamespace("t1")).Get(ctx, naming.HostName("default", "deny-all"), metav1.GetOptions{})
		return err
	}, hostObjs("t1"))
	// t4 got its budget, created after the policy; give it a moment more.
	time.Sleep(2 * time.Second)
	if nps, err := host.NetworkingV1().NetworkPolicies(naming.HostNamespace("t4")).List(ctx, metav1.ListOptions{}); err != nil || len(nps.Items) != 0 {
		t.Errorf("t4 does not sync NetworkPolicies, yet the host has %d (err %v)", len(nps.Items), err)
	}
}

// checkExport: t3's spec exports its Service web as e2e-exports/t3-web;
// the export carries web's two pods.
func checkExport(t *testing.T, host, t3 kubernetes.Interface) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := t3.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 45*time.Second, "t3's web exported with its 2 pods", func(ctx context.Context) error {
		if _, err := host.CoreV1().Services("e2e-exports").Get(ctx, "t3-web", metav1.GetOptions{}); err != nil {
			return err
		}
		ep, err := host.CoreV1().Endpoints("e2e-exports").Get(ctx, "t3-web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 2 {
			return fmt.Errorf("exported endpoints %+v", ep.Subsets)
		}
		return nil
	}, nil)
}

// checkTenantService: t5's spec imports t3's Service web as t3-web; t5
// sees it with the addresses of t3's web pods.
func checkTenantService(t *testing.T, t3, t5 kubernetes.Interface) {
	t.Helper()
	framework.Eventually(t, 45*time.Second, "t3's web imported into t5", func(ctx context.Context) error {
		src, err := t3.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		got, err := t5.CoreV1().Endpoints("default").Get(ctx, "t3-web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(got.Subsets) != 1 || len(got.Subsets[0].Addresses) != 2 || strings.Join(endpointIPs(src), ",") != strings.Join(endpointIPs(got), ",") {
			return fmt.Errorf("t5's t3-web endpoints %+v, t3's web %+v", got.Subsets, src.Subsets)
		}
		return nil
	}, nil)
}
