package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/cli/localenv"
	"kplex.dev/cli/supervise"
	"kplex.dev/e2e/framework"
)

// TestLifecycle drives VirtualClusters through kplexctl and kplex-operator
// (process runtime): concurrent creates, a workload in each, pause and
// resume, delete with full cleanup, an operator killed mid-create, and
// refused specs.
func TestLifecycle(t *testing.T) {
	env := framework.Start(t, func(o *localenv.Options) { o.VClusters = []string{} })
	ctx := context.Background()
	host := env.Host(t)
	dyn := dynamic.NewForConfigOrDie(framework.RESTConfig(t, env.Layout.HostKubeconfig()))
	names := []string{"t1", "t2", "t3", "t4", "t5"}
	// t4 gets a dedicated node: labeled and tainted so nobody else lands
	// on it.
	dedicated := dedicateNode(t, host, "t4")
	manifest := filepath.Join(t.TempDir(), "t4.yaml")
	if err := os.WriteFile(manifest, []byte(`tenancy:  # a spec alone
  dedicatedNodes:
    nodeSelector: {e2e.kplex.dev/pool: t4}
    tolerations: [{key: e2e.kplex.dev/dedicated, operator: Equal, value: t4, effect: NoSchedule}]
sync:
  resources: [poddisruptionbudgets]
controlPlane:
  apiServer: {resources: {limits: {memory: 1Gi, cpu: 1500m}}}
`), 0o644); err != nil {
		t.Fatal(err)
	}

	// t3 exports its Service web into a host namespace (removed with t3),
	// which consents to it.
	if _, err := host.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e-exports",
		Labels: map[string]string{naming.LabelAcceptsExports: "true"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	exportSpec := filepath.Join(t.TempDir(), "t3.yaml")
	if err := os.WriteFile(exportSpec, []byte("networking:\n  exportServices: [{from: {namespace: default, name: web}, to: {namespace: e2e-exports, name: t3-web}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// t5 imports t3's Service web (another tenant's service).
	importSpec := filepath.Join(t.TempDir(), "t5.yaml")
	if err := os.WriteFile(importSpec, []byte("networking:\n  tenantServices: [{tenant: t3, from: {namespace: default, name: web}, to: {namespace: default, name: t3-web}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Five at once, each through `kplexctl create --wait`.
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	outs := make([]string, len(names))
	for i, n := range names {
		args := []string{"create", n, "--wait", "--timeout", "3m"}
		switch n {
		case "t4":
			args = append(args, "-f", manifest)
		case "t3":
			args = append(args, "-f", exportSpec)
		case "t5":
			args = append(args, "-f", importSpec)
		}
		wg.Go(func() { outs[i], errs[i] = kplexctl(t, env, args...) })
	}
	wg.Wait()
	for i, n := range names {
		if errs[i] != nil {
			t.Fatalf("create %s: %v\n%s\n%s", n, errs[i], outs[i], describeVC(t, env, n)())
		}
	}
	t.Logf("5 virtual clusters created concurrently, all Ready in %.1fs; progress of %s:\n%s", time.Since(start).Seconds(), names[0], outs[0])
	if !strings.Contains(outs[0], "ControlPlaneReady=True") || !strings.Contains(outs[0], "is Ready at https://127.0.0.1:") {
		t.Errorf("create --wait printed no progress:\n%s", outs[0])
	}
	list := mustKplexctl(t, env, "list")
	for _, n := range names {
		if !strings.Contains(list, n) {
			t.Errorf("list lacks %s:\n%s", n, list)
		}
	}
	if j := mustKplexctl(t, env, "list", "-o", "json"); !strings.Contains(j, `"phase": "Ready"`) {
		t.Errorf("list -o json:\n%s", j)
	}
	// The process runtime applies t4's apiserver limits to its Go runtime.
	if _, pf, err := supervise.Inspect(env.Layout.Pid("vc-t4-apiserver")); err != nil {
		t.Errorf("t4 apiserver: %v", err)
	} else if environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pf.PID)); err != nil ||
		!strings.Contains(string(environ), "GOMEMLIMIT=966367638\x00") || !strings.Contains(string(environ), "GOMAXPROCS=2\x00") {
		t.Errorf("t4 apiserver environment lacks its limits (%v): %q", err, environ)
	}

	// Each serves its own API and runs a Deployment.
	clients := map[string]kubernetes.Interface{}
	for _, n := range names {
		clients[n] = operatorClient(t, env, n)
		if _, err := clients[n].AppsV1().Deployments("default").Create(ctx, deployment("web", 2), metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	for _, n := range names {
		framework.Eventually(t, 90*time.Second, n+": web Running", func(ctx context.Context) error {
			return converged(ctx, clients[n], host, n, "default", "web", 2)
		}, describeSync(env, t, n))
	}
	checkDedicated(t, host, dedicated, "t4")
	checkSyncedResources(t, host, clients)
	checkExport(t, host, clients["t3"])
	checkTenantService(t, clients["t3"], clients["t5"])
	if _, err := clients["t1"].CoreV1().Namespaces().Get(ctx, "t2-only", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("unexpected: %v", err)
	}
	if _, err := clients["t2"].CoreV1().ConfigMaps("default").Create(ctx, cm("only-in-t2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := clients["t1"].CoreV1().ConfigMaps("default").Get(ctx, "only-in-t2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("t1 sees t2's ConfigMap: %v", err)
	}
	framework.Eventually(t, 30*time.Second, "t1 counts its pods", func(ctx context.Context) error {
		out, _ := kplexctl(t, env, "list")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 5 && f[1] == "t1" && f[5] == "2" {
				return nil
			}
		}
		return fmt.Errorf("list:\n%s", out)
	}, nil)

	t.Run("a killed control plane is restarted", func(t *testing.T) { testControlPlaneRestart(t, env, clients["t1"]) })
	t.Run("pause and resume keep every object", func(t *testing.T) { testPauseResume(t, env, host, dyn, clients) })
	t.Run("delete removes everything of the tenant and nothing else", func(t *testing.T) { testDelete(t, env, host, clients) })
	t.Run("operator killed mid-create converges", func(t *testing.T) { testOperatorCrash(t, env, dyn) })
	t.Run("bad specs refused", func(t *testing.T) { testRefusedSpecs(t, env) })
}

func testPauseResume(t *testing.T, env *framework.Env, host kubernetes.Interface, dyn dynamic.Interface, clients map[string]kubernetes.Interface) {
	mustKplexctl(t, env, "pause", "t2")
	framework.Eventually(t, 60*time.Second, "t2 Paused", func(ctx context.Context) error {
		p, err := vcPhase(ctx, dyn, "t2")
		if err != nil || p != "Paused" {
			return fmt.Errorf("phase %q: %v", p, err)
		}
		pods, err := host.CoreV1().Pods(naming.HostNamespace("t2")).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 0 {
			return fmt.Errorf("host pods left: %d (%v)", len(pods.Items), err)
		}
		return nil
	}, describeVC(t, env, "t2"))
	for _, c := range []string{"apiserver", "controller-manager"} {
		if st, _, _ := supervise.Inspect(env.Layout.Pid("vc-t2-" + c)); st == supervise.Running {
			t.Errorf("paused t2 still runs its %s", c)
		}
	}
	// The others are untouched.
	if err := converged(context.Background(), clients["t1"], host, "t1", "default", "web", 2); err != nil {
		t.Errorf("t1 disturbed by t2's pause: %v", err)
	}
	mustKplexctl(t, env, "resume", "t2")
	framework.Eventually(t, 90*time.Second, "t2 Ready with its workload again", func(ctx context.Context) error {
		if p, err := vcPhase(ctx, dyn, "t2"); err != nil || p != "Ready" {
			return fmt.Errorf("phase %q: %v", p, err)
		}
		if _, err := clients["t2"].CoreV1().ConfigMaps("default").Get(ctx, "only-in-t2", metav1.GetOptions{}); err != nil {
			return err
		}
		// The pods that ran before the pause lost their host pods: they
		// are evicted, as on a lost node, and the Deployment replaces them.
		return replacedAfterEviction(ctx, clients["t2"], host, "t2", "web", 2)
	}, describeVC(t, env, "t2"))
}

func testDelete(t *testing.T, env *framework.Env, host kubernetes.Interface, clients map[string]kubernetes.Interface) {
	ctx := context.Background()
	if n := tenantKeys(t, env, "t3"); n == 0 {
		t.Fatal("t3 has no datastore keys before deletion")
	}
	out := mustKplexctl(t, env, "delete", "t3", "--wait", "--timeout", "2m")
	t.Logf("delete --wait:\n%s", out)
	if _, err := host.CoreV1().Namespaces().Get(ctx, naming.HostNamespace("t3"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("host namespace of t3: %v, want gone", err)
	}
	if n := tenantKeys(t, env, "t3"); n != 0 {
		t.Errorf("t3 still has %d datastore keys", n)
	}
	if _, err := host.CoreV1().Services("e2e-exports").Get(ctx, "t3-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("t3's exported service: %v, want gone", err)
	}
	if _, err := host.CoreV1().Endpoints("e2e-exports").Get(ctx, "t3-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("t3's exported endpoints: %v, want gone", err)
	}
	for _, c := range []string{"apiserver", "controller-manager"} {
		if st, _, _ := supervise.Inspect(env.Layout.Pid("vc-t3-" + c)); st != supervise.Absent {
			t.Errorf("t3's %s: %v, want gone", c, st)
		}
	}
	if _, err := os.Stat(filepath.Join(env.Layout.SyncerTenantsDir(), "t3.yaml")); !os.IsNotExist(err) {
		t.Errorf("t3's syncer registration: %v, want gone", err)
	}
	limits, _ := os.ReadFile(env.Layout.DatastoreLimits())
	if strings.Contains(string(limits), "t3:") {
		t.Errorf("t3 still in the datastore limits:\n%s", limits)
	}
	framework.Eventually(t, 30*time.Second, "t3's admin kubeconfig Secret collected", func(ctx context.Context) error {
		_, err := host.CoreV1().Secrets("default").Get(ctx, "t3-kubeconfig", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	}, nil)
	for _, n := range []string{"t1", "t2", "t4", "t5"} {
		// t2 keeps the pods evicted by its pause.
		if err := replacedAfterEviction(ctx, clients[n], host, n, "web", 2); err != nil {
			t.Errorf("%s disturbed by t3's deletion: %v", n, err)
		}
		if tenantKeys(t, env, n) == 0 {
			t.Errorf("%s lost its datastore keys", n)
		}
	}
}

func testOperatorCrash(t *testing.T, env *framework.Env, dyn dynamic.Interface) {
	mustKplexctl(t, env, "create", "crash")
	// Kill it once it has started on the tenant (its apiserver is being
	// started or the PKI is written), before Ready.
	framework.Eventually(t, 30*time.Second, "operator working on crash", func(ctx context.Context) error {
		if p, _ := vcPhase(ctx, dyn, "crash"); p == "Provisioning" {
			return nil
		}
		return fmt.Errorf("not provisioning yet")
	}, nil)
	_, pf, err := supervise.Inspect(env.Layout.Pid("operator"))
	if err != nil || pf.PID == 0 {
		t.Fatalf("operator pid: %v", err)
	}
	if err := syscall.Kill(pf.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("operator (pid %d) killed while crash was provisioning", pf.PID)
	framework.Eventually(t, 10*time.Second, "killed operator gone", func(context.Context) error {
		if st, _, _ := supervise.Inspect(env.Layout.Pid("operator")); st == supervise.Running {
			return fmt.Errorf("still running")
		}
		return nil
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := localenv.Up(ctx, env.Opts); err != nil { // restarts what died
		t.Fatal(err)
	}
	framework.Eventually(t, 90*time.Second, "crash Ready after the operator's restart", func(ctx context.Context) error {
		if p, err := vcPhase(ctx, dyn, "crash"); err != nil || p != "Ready" {
			return fmt.Errorf("phase %q: %v", p, err)
		}
		return nil
	}, describeVC(t, env, "crash"))
	c := operatorClient(t, env, "crash")
	if _, err := c.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatalf("crash's API: %v", err)
	}
}

func testRefusedSpecs(t *testing.T, env *framework.Env) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	for _, tt := range []struct{ spec, want string }{
		{"version: v1.36\n", "spec.version"},
		{"datastore:\n  quota:\n    maxKeys: -5\n", "spec.datastore.quota.maxKeys"},
		{"tenancy:\n  dedicatedNodes: {nodeSelector: {a: b}}\n  privateNodes: {kubeconfigSecret: x}\n", "not both"},
		{"sync:\n  podSecurityLevel: baseline\n", "unknown field"},
		{"networking:\n  exportServices: [{from: {namespace: default, name: web}, to: {namespace: kplex-other, name: web}}]\n", "spec.networking.exportServices"},
	} {
		if err := os.WriteFile(bad, []byte(tt.spec), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := kplexctl(t, env, "create", "bad", "-f", bad)
		if err == nil || !strings.Contains(out, tt.want) {
			t.Errorf("spec %q: err=%v, output %q; want it refused naming %q", tt.spec, err, out, tt.want)
		}
	}
	if out, err := kplexctl(t, env, "describe", "nope"); err == nil || !strings.Contains(out, "not found") {
		t.Errorf("describe of a missing cluster: %v %s", err, out)
	}

	// An export into a host namespace that has not consented waits,
	// Failed with the field named, until an administrator labels it.
	ctx := context.Background()
	host := env.Host(t)
	dyn := dynamic.NewForConfigOrDie(framework.RESTConfig(t, env.Layout.HostKubeconfig()))
	if _, err := host.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e-closed"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("networking:\n  exportServices: [{from: {namespace: default, name: web}, to: {namespace: e2e-closed, name: web}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKplexctl(t, env, "create", "closed", "-f", bad)
	waitVC(t, env, dyn, "closed", "Failed", "spec.networking.exportServices[0].to.namespace: host namespace e2e-closed does not accept exports", 30*time.Second)
	ns, err := host.CoreV1().Namespaces().Get(ctx, "e2e-closed", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels = map[string]string{naming.LabelAcceptsExports: "true"}
	if _, err := host.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, "closed proceeds once the namespace consents", func(ctx context.Context) error {
		if p, err := vcPhase(ctx, dyn, "closed"); err != nil || p == "Failed" || p == "Pending" {
			return fmt.Errorf("phase %q (%v)", p, err)
		}
		return nil
	}, describeVC(t, env, "closed"))
	mustKplexctl(t, env, "delete", "closed", "--wait", "--timeout", "2m")
}

func testControlPlaneRestart(t *testing.T, env *framework.Env, c kubernetes.Interface) {
	_, pf, err := supervise.Inspect(env.Layout.Pid("vc-t1-apiserver"))
	if err != nil || pf.PID == 0 {
		t.Fatalf("t1 apiserver pid: %v", err)
	}
	if err := syscall.Kill(pf.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The operator hears of the exit and starts it again at once (not at
	// the 10 s resync): well within 10 s of an apiserver's start time.
	framework.Eventually(t, 10*time.Second, "t1 apiserver back", func(ctx context.Context) error {
		st, now, _ := supervise.Inspect(env.Layout.Pid("vc-t1-apiserver"))
		if st != supervise.Running || now.PID == pf.PID {
			return fmt.Errorf("not restarted yet (%v)", st)
		}
		_, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		return err
	}, describeVC(t, env, "t1"))
	t.Logf("t1's apiserver killed (pid %d): serving again after %.1fs", pf.PID, time.Since(start).Seconds())
	if _, err := c.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
}
