package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kplex.dev/cli/localenv"
	"kplex.dev/cli/ports"
	"kplex.dev/cli/supervise"
	"kplex.dev/e2e/framework"
)

// TestKubernetesRuntime runs the operator with --runtime=kubernetes:
// a VirtualCluster's control plane becomes Deployments, a Service and
// PodDisruptionBudgets in its host namespace (KWOK "runs" their pods, so
// the images are never pulled), follows spec changes, scales to zero on
// pause and back on resume, and is gone after delete. The apiserver pod's
// spec is also run for real, as a kubelet would, and reached with
// `kplexctl connect --port-forward` through the host API server (KWOK
// forwards the pod's port to that process). As a platform in a cluster
// would, the operator keeps registrations in Secrets and the datastore
// limits in a ConfigMap, and the shard mirrors the Secrets.
func TestKubernetesRuntime(t *testing.T) {
	free, err := ports.Free(1)
	if err != nil {
		t.Fatal(err)
	}
	podPort := free[0]
	env := framework.Start(t, func(o *localenv.Options) {
		o.VClusters = []string{}
		o.RegistryNamespace = "kube-system"
		o.PortForwards = []localenv.PortForward{{Namespace: "kplex-k1", Port: 6443, Target: podPort}}
		o.OperatorArgs = []string{"--runtime=kubernetes", "--image-pull-policy=Never",
			"--apiserver-image=kplex.local/apiserver:e2e", "--controller-manager-image=kplex.local/controller-manager:e2e",
			"--scheduler-image=kplex.local/scheduler:e2e",
			// The default endpoint is the Service's DNS name, which only the
			// host cluster's DNS resolves; this machine's resolver is not
			// ours to query. Nothing listens on loopback port 9: the syncer
			// and the operator's pod count fail fast, locally.
			"--apiserver-endpoint=https://127.0.0.1:9/{tenant}"}
	})
	ctx := context.Background()
	host := env.Host(t)
	dyn := dynamic.NewForConfigOrDie(framework.RESTConfig(t, env.Layout.HostKubeconfig()))
	const name, ns = "k1", "kplex-k1"

	manifest := filepath.Join(t.TempDir(), "k1.yaml")
	if err := os.WriteFile(manifest, []byte(`apiVersion: kplex.dev/v1alpha1
kind: VirtualCluster
metadata:
  name: k1
spec:
  controlPlane:
    apiServer:
      replicas: 2
      resources:
        requests: {cpu: 250m, memory: 256Mi}
    scheduler:
      enabled: true
`), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := mustKplexctl(t, env, "create", name, "-f", manifest, "--wait", "--timeout", "2m")
	t.Logf("created with the kubernetes runtime, Ready in %.1fs:\n%s", time.Since(start).Seconds(), out)
	dump := describeRuntime(t, env, host, name)

	// The objects, as the runtime promises them.
	want := map[string]int32{"kplex-apiserver": 2, "kplex-controller-manager": 1, "kplex-scheduler": 1}
	framework.Eventually(t, 60*time.Second, "control-plane deployments available", func(ctx context.Context) error {
		return deploymentsAre(ctx, host, ns, want)
	}, dump)
	api, err := host.AppsV1().Deployments(ns).Get(ctx, "kplex-apiserver", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctr := api.Spec.Template.Spec.Containers[0]
	args := strings.Join(ctr.Args, " ")
	for _, w := range []string{"--etcd-servers=https://127.0.0.1:", "--bind-address=0.0.0.0", "--advertise-address=$(POD_IP)"} {
		if !strings.Contains(args, w) {
			t.Errorf("apiserver args lack %q: %s", w, args)
		}
	}
	if ctr.Image != "kplex.local/apiserver:e2e" || ctr.ImagePullPolicy != corev1.PullNever || ctr.Resources.Requests.Cpu().String() != "250m" {
		t.Errorf("apiserver container: image %s, pull %s, requests %v", ctr.Image, ctr.ImagePullPolicy, ctr.Resources.Requests)
	}
	if _, managed := api.Labels["kplex.dev/managed"]; managed {
		t.Error("a control-plane Deployment carries the syncer's managed label")
	}
	svc, err := host.CoreV1().Services(ns).Get(ctx, "kplex-apiserver", metav1.GetOptions{})
	if err != nil || svc.Spec.Ports[0].Port != 443 || svc.Spec.ClusterIP == "" {
		t.Fatalf("service: %v %+v", err, svc)
	}
	pdbs, err := host.PolicyV1().PodDisruptionBudgets(ns).List(ctx, metav1.ListOptions{LabelSelector: "kplex.dev/component"})
	if err != nil || len(pdbs.Items) != 3 {
		t.Fatalf("PDBs: %v, %d", err, len(pdbs.Items))
	}
	if _, err := host.CoreV1().Secrets(ns).Get(ctx, "kplex-control-plane", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	// The admin kubeconfig names the endpoint, and the serving certificate
	// carries the Service's names.
	kc, err := host.CoreV1().Secrets("default").Get(ctx, "k1-kubeconfig", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(kc.Data["kubeconfig"])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		if c.Server != "https://127.0.0.1:9/k1" {
			t.Errorf("admin kubeconfig server %s", c.Server)
		}
	}
	pkiSecret, err := host.CoreV1().Secrets(ns).Get(ctx, "kplex-pki", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pkiSecret.Data["apiserver.crt"])
	if block == nil {
		t.Fatal("no apiserver.crt")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"kplex-apiserver", "kplex-apiserver.kplex-k1.svc", "kplex-apiserver.kplex-k1.svc.cluster.local"} {
		if !slices.Contains(cert.DNSNames, n) {
			t.Errorf("serving certificate lacks %s: %v", n, cert.DNSNames)
		}
	}

	// The apiserver pod's spec serves, and connect --port-forward reaches
	// it through the host API server.
	pod := runLikeKubelet(t, env, host, ns, "kplex-apiserver", podPort)
	// A kubelet marks the pod Ready only once it serves: wait for that
	// before connecting (a port-forward ends at its first refused dial).
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pkiSecret.Data["ca.crt"])
	pod.WaitHTTP(t, fmt.Sprintf("https://127.0.0.1:%d/readyz", podPort), &http.Client{Timeout: 2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}, 90*time.Second)
	pfPath := filepath.Join(t.TempDir(), "port-forward.kubeconfig")
	stopConnect := startConnect(t, env, name, pfPath)
	framework.Eventually(t, 90*time.Second, "the tenant API through connect --port-forward", func(ctx context.Context) error {
		if _, err := os.Stat(pfPath); err != nil {
			return err
		}
		c, err := kubernetes.NewForConfig(framework.RESTConfig(t, pfPath))
		if err != nil {
			return err
		}
		_, err = c.CoreV1().ConfigMaps("default").Create(ctx, cm("through-port-forward"), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
		return err
	}, func() string { return supervise.Tail(pod.Spec.LogPath, 10) })
	if out := stopConnect(); !strings.Contains(out, "forwarding 127.0.0.1:") || !strings.Contains(out, "port-forward stopped") {
		t.Errorf("connect --port-forward printed:\n%s", out)
	}
	if n := tenantKeys(t, env, name); n == 0 {
		t.Error("the tenant apiserver stored nothing in its datastore keyspace")
	}
	framework.Eventually(t, 30*time.Second, "k1 registered in a Secret, owned by the shard, limits in a ConfigMap", func(ctx context.Context) error {
		sec, err := host.CoreV1().Secrets("kube-system").Get(ctx, "kplex-registration-k1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(sec.Data["k1.yaml"]) == 0 || len(sec.Data["k1.kubeconfig"]) == 0 {
			return fmt.Errorf("registration secret holds %d keys", len(sec.Data))
		}
		if cm, err := host.CoreV1().ConfigMaps("kube-system").Get(ctx, "kplex-datastore-limits", metav1.GetOptions{}); err != nil || !strings.Contains(cm.Data["limits.yaml"], "k1:") {
			return fmt.Errorf("limits configmap: %v %v", err, cm.Data)
		}
		// The shard read the registration from its mirror: it owns k1.
		u, err := dyn.Resource(vcGVR).Namespace("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if shard, _, _ := unstructured.NestedString(u.Object, "status", "syncerShard"); shard != "shard-0" {
			return fmt.Errorf("owning shard %q", shard)
		}
		return nil
	}, dump)
	pod.Stop(t, 10*time.Second)

	// A lost certificate is reissued and rolls only the component that
	// mounts it.
	inputs := func(d string) string {
		dep, err := host.AppsV1().Deployments(ns).Get(ctx, d, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return dep.Spec.Template.Annotations["kplex.dev/inputs"]
	}
	apiInputs, cmInputs := inputs("kplex-apiserver"), inputs("kplex-controller-manager")
	delete(pkiSecret.Data, "controller-manager-serve.crt")
	if _, err := host.CoreV1().Secrets(ns).Update(ctx, pkiSecret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 60*time.Second, "controller manager rolled with a new certificate", func(ctx context.Context) error {
		if got := inputs("kplex-controller-manager"); got == cmInputs {
			return fmt.Errorf("inputs still %s", got)
		}
		return deploymentsAre(ctx, host, ns, want)
	}, dump)
	if inputs("kplex-apiserver") != apiInputs {
		t.Error("the apiserver rolled for the controller manager's certificate")
	}

	// Spec changes: one apiserver, no scheduler.
	patch := `{"spec":{"controlPlane":{"apiServer":{"replicas":1},"scheduler":{"enabled":false}}}}`
	if _, err := dyn.Resource(vcGVR).Namespace("default").Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 60*time.Second, "one apiserver, no scheduler", func(ctx context.Context) error {
		if err := deploymentsAre(ctx, host, ns, map[string]int32{"kplex-apiserver": 1, "kplex-controller-manager": 1}); err != nil {
			return err
		}
		if _, err := host.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "kplex-scheduler", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("scheduler PDB: %v", err)
		}
		return nil
	}, dump)

	// Pause scales to zero and keeps the objects; resume scales back.
	mustKplexctl(t, env, "pause", name)
	framework.Eventually(t, 60*time.Second, "paused: scaled to zero", func(ctx context.Context) error {
		if p, err := vcPhase(ctx, dyn, name); err != nil || p != "Paused" {
			return fmt.Errorf("phase %q (%v)", p, err)
		}
		return deploymentsAre(ctx, host, ns, map[string]int32{"kplex-apiserver": 0, "kplex-controller-manager": 0})
	}, dump)
	mustKplexctl(t, env, "resume", name)
	framework.Eventually(t, 90*time.Second, "resumed: Ready with its replicas", func(ctx context.Context) error {
		if p, err := vcPhase(ctx, dyn, name); err != nil || p != "Ready" {
			return fmt.Errorf("phase %q (%v)", p, err)
		}
		return deploymentsAre(ctx, host, ns, map[string]int32{"kplex-apiserver": 1, "kplex-controller-manager": 1})
	}, dump)

	// Delete: every object of the runtime, and the namespace, are gone.
	start = time.Now()
	mustKplexctl(t, env, "delete", name, "--wait", "--timeout", "2m")
	t.Logf("deleted in %.1fs", time.Since(start).Seconds())
	if _, err := host.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("host namespace %s: %v", ns, err)
	}
	framework.Eventually(t, 30*time.Second, "admin kubeconfig Secret collected", func(ctx context.Context) error {
		if _, err := host.CoreV1().Secrets("default").Get(ctx, "k1-kubeconfig", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("admin kubeconfig secret: %v", err)
		}
		return nil
	}, dump)
	if n := tenantKeys(t, env, name); n != 0 {
		t.Errorf("%d datastore keys left", n)
	}
	if _, err := host.CoreV1().Secrets("kube-system").Get(ctx, "kplex-registration-k1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("registration secret after delete: %v", err)
	}
	if cm, err := host.CoreV1().ConfigMaps("kube-system").Get(ctx, "kplex-datastore-limits", metav1.GetOptions{}); err != nil || strings.Contains(cm.Data["limits.yaml"], "k1:") {
		t.Errorf("limits configmap after delete: %v %v", err, cm.Data)
	}

	// What the API accepts but the operator cannot do is refused with the
	// field named, not ignored: mapping the services of a tenant with
	// private nodes.
	spec := filepath.Join(t.TempDir(), "private.yaml")
	if err := os.WriteFile(spec, []byte("tenancy:\n  privateNodes: {kubeconfigSecret: other-cluster}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKplexctl(t, env, "create", "k3", "-f", spec)
	spec = filepath.Join(t.TempDir(), "net.yaml")
	if err := os.WriteFile(spec, []byte("networking:\n  tenantServices: [{tenant: k3, from: {namespace: default, name: web}, to: {namespace: default, name: web}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKplexctl(t, env, "create", "k2", "-f", spec)
	waitVC(t, env, dyn, "k2", "Failed", "spec.networking.tenantServices[0]: tenant k3 has private nodes", 30*time.Second)
	for _, n := range []string{"kplex-k2", "kplex-k3"} {
		// k3 waits for its Secret before it gets anything.
		if _, err := host.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a refused or waiting VirtualCluster got host namespace %s: %v", n, err)
		}
	}
	mustKplexctl(t, env, "delete", "k3", "--wait", "--timeout", "1m")
	mustKplexctl(t, env, "delete", "k2", "--wait", "--timeout", "1m")
}

// deploymentsAre checks that exactly these control-plane Deployments
// exist, each with its replicas desired, rolled out and available.
func deploymentsAre(ctx context.Context, host kubernetes.Interface, ns string, want map[string]int32) error {
	list, err := host.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "kplex.dev/component"})
	if err != nil {
		return err
	}
	got := map[string]appsv1.Deployment{}
	for _, d := range list.Items {
		got[d.Name] = d
	}
	for n, r := range want {
		d, ok := got[n]
		switch {
		case !ok:
			return fmt.Errorf("no deployment %s", n)
		case *d.Spec.Replicas != r:
			return fmt.Errorf("%s wants %d replicas, not %d", n, *d.Spec.Replicas, r)
		case d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas != r || d.Status.Replicas != r:
			return fmt.Errorf("%s: %d available, %d total of %d", n, d.Status.AvailableReplicas, d.Status.Replicas, r)
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d deployments, want %d", len(got), len(want))
	}
	return nil
}

// describeRuntime prints the VirtualCluster and its host control-plane
// objects and pods.
func describeRuntime(t *testing.T, env *framework.Env, host kubernetes.Interface, name string) func() string {
	return func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var b strings.Builder
		b.WriteString(describeVC(t, env, name)())
		ns := "kplex-" + name
		if list, err := host.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); err == nil {
			for _, d := range list.Items {
				fmt.Fprintf(&b, "deployment %s: replicas %d, status %+v\n", d.Name, *d.Spec.Replicas, d.Status)
			}
		}
		if pods, err := host.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
			for _, p := range pods.Items {
				fmt.Fprintf(&b, "pod %s on %q: %s\n", p.Name, p.Spec.NodeName, p.Status.Phase)
			}
		}
		return b.String()
	}
}
