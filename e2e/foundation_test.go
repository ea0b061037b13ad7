package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"kplex.dev/cli/localenv"
	"kplex.dev/cli/supervise"
	"kplex.dev/e2e/framework"
)

// TestFoundation brings up a fresh host cluster with a virtual cluster and
// checks what a user relies on: KWOK pods run with IPs from their node's
// podCIDR, the virtual cluster serves its own API where a Deployment makes
// its ReplicaSet and Pods, RBAC and service-account tokens work, `up` again
// changes nothing, a killed process is restarted, and `down` stops all.
func TestFoundation(t *testing.T) {
	env := framework.Start(t, func(o *localenv.Options) { o.PodCIDR = "10.200.0.0/16" })
	ctx := context.Background()
	host := env.Host(t)
	demo := env.VCluster(t, "demo")

	t.Run("versions", func(t *testing.T) {
		for name, c := range map[string]kubernetes.Interface{"host": host, "demo": demo} {
			v, err := c.Discovery().ServerVersion()
			if err != nil || v.GitVersion != "v1.37.2" {
				t.Errorf("%s /version = %v (%v), want v1.37.2", name, v, err)
			}
		}
	})

	t.Run("host pod runs on a kwok node", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		if _, err := host.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var got *corev1.Pod
		framework.Eventually(t, 60*time.Second, "host pod Running", func(ctx context.Context) error {
			var err error
			if got, err = host.CoreV1().Pods("default").Get(ctx, "probe", metav1.GetOptions{}); err != nil {
				return err
			}
			if got.Status.Phase != corev1.PodRunning || got.Status.PodIP == "" {
				return fmt.Errorf("phase %s, IP %q, node %q", got.Status.Phase, got.Status.PodIP, got.Spec.NodeName)
			}
			return nil
		}, func() string { return describePods(host, "default") })
		node, err := host.CoreV1().Nodes().Get(ctx, got.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cidr := netip.MustParsePrefix(node.Spec.PodCIDR)
		if !strings.HasPrefix(node.Spec.PodCIDR, "10.200.") || !cidr.Contains(netip.MustParseAddr(got.Status.PodIP)) {
			t.Fatalf("pod IP %s not in its node %s podCIDR %s", got.Status.PodIP, node.Name, node.Spec.PodCIDR)
		}
	})

	t.Run("host job completes and deleted pods go away", func(t *testing.T) {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: "default"},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
			}}},
		}
		if _, err := host.BatchV1().Jobs("default").Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 60*time.Second, "job complete", func(ctx context.Context) error {
			j, err := host.BatchV1().Jobs("default").Get(ctx, "once", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if j.Status.Succeeded != 1 {
				return fmt.Errorf("succeeded=%d active=%d failed=%d", j.Status.Succeeded, j.Status.Active, j.Status.Failed)
			}
			return nil
		}, func() string { return describePods(host, "default") })
		if err := host.CoreV1().Pods("default").Delete(ctx, "probe", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, "deleted pod removed", func(ctx context.Context) error {
			_, err := host.CoreV1().Pods("default").Get(ctx, "probe", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("pod still there: %v", err)
		}, func() string { return describePods(host, "default") })
	})

	t.Run("deployment in the virtual cluster creates its pods", func(t *testing.T) {
		labels := map[string]string{"app": "web"}
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](3),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
				},
			},
		}
		if _, err := demo.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 60*time.Second, "3 pods of web in demo", func(ctx context.Context) error {
			pods, err := demo.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return err
			}
			if len(pods.Items) != 3 {
				return fmt.Errorf("%d pods", len(pods.Items))
			}
			for _, p := range pods.Items {
				if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "ReplicaSet" {
					return fmt.Errorf("pod %s owners %v, want its ReplicaSet", p.Name, p.OwnerReferences)
				}
			}
			return nil
		}, func() string { return describePods(demo, "default") })
		// The virtual cluster's objects are its own: the host has no "web".
		if _, err := host.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("host sees the virtual cluster's deployment: %v", err)
		}
		// ...and they are stored through the datastore-proxy, under demo's
		// identity (its client certificate, CN=demo).
		kv := datastoreClient(t, env, "demo")
		resp, err := kv.Get(ctx, "/registry/deployments/default/web")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("demo's deployment through the datastore-proxy: %v (%v)", resp, err)
		}
	})

	t.Run("rbac and service-account tokens in the virtual cluster", func(t *testing.T) {
		testRBACAndTokens(t, env, demo)
	})

	t.Run("up again changes nothing", func(t *testing.T) {
		before := pids(t, env)
		if err := localenv.Up(ctx, env.Opts); err != nil {
			t.Fatal(err)
		}
		if after := pids(t, env); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("second up changed processes: %v -> %v", before, after)
		}
	})

	t.Run("a killed process is restarted by up", func(t *testing.T) {
		victim := "demo-controller-manager"
		pf, err := supervise.ReadPidFile(env.Layout.Pid(victim))
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pf.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 10*time.Second, "killed process seen as stale", func(context.Context) error {
			if st, _, _ := supervise.Inspect(env.Layout.Pid(victim)); st != supervise.Stale {
				return fmt.Errorf("state %v", st)
			}
			return nil
		}, nil)
		if err := localenv.Up(ctx, env.Opts); err != nil {
			t.Fatal(err)
		}
		if st, now, _ := supervise.Inspect(env.Layout.Pid(victim)); st != supervise.Running || now.PID == pf.PID {
			t.Fatalf("%s after up: %v pid %d (was %d)", victim, st, now.PID, pf.PID)
		}
	})

	t.Run("down stops everything", func(t *testing.T) {
		before := pids(t, env)
		if err := localenv.Down(env.Dir, false, nil); err != nil {
			t.Fatal(err)
		}
		for name, pid := range before {
			if syscall.Kill(pid, 0) == nil && processIs(pid) {
				t.Errorf("%s (pid %d) still running after down", name, pid)
			}
		}
	})
}

func testRBACAndTokens(t *testing.T, env *framework.Env, demo kubernetes.Interface) {
	ctx := context.Background()
	ns := "team-a"
	if _, err := demo.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "token"}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-config"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-config"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A bound token from the tenant's TokenRequest API...
	tr, err := demo.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// ...is accepted by the tenant's TokenReview...
	review, err := demo.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: tr.Status.Token}}, metav1.CreateOptions{})
	if err != nil || !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:team-a:reader" {
		t.Fatalf("TokenReview = %+v (%v), want authenticated as system:serviceaccount:team-a:reader", review.Status, err)
	}
	// ...and RBAC lets it read configmaps but not secrets.
	cfg := framework.RESTConfig(t, env.Layout.VClusterKubeconfig("demo"))
	asSA := rest.AnonymousClientConfig(cfg)
	asSA.BearerToken = tr.Status.Token
	sa, err := kubernetes.NewForConfig(asSA)
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, "role binding in effect", func(ctx context.Context) error {
		_, err := sa.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
		return err
	}, nil)
	if _, err := sa.CoreV1().Secrets(ns).Get(ctx, "token", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("service account read a secret it has no role for: err = %v", err)
	}
	// The controller manager published the tenant's root CA and created the
	// namespace's default service account.
	framework.Eventually(t, 30*time.Second, "kube-root-ca.crt and default SA in the new namespace", func(ctx context.Context) error {
		if _, err := demo.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
			return err
		}
		_, err := demo.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	}, nil)
}

func pids(t *testing.T, env *framework.Env) map[string]int {
	t.Helper()
	sts, err := localenv.Status(context.Background(), env.Dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, s := range sts {
		if s.State != "running" || !s.Ready {
			t.Fatalf("%s is %s, ready=%v: %s", s.Name, s.State, s.Ready, s.Reason)
		}
		m[s.Name] = s.PID
	}
	return m
}

// processIs reports whether pid is a live, non-zombie process.
func processIs(pid int) bool {
	st, err := supervise.ReadProcState(pid)
	return err == nil && st != 'Z'
}

func describePods(c kubernetes.Interface, ns string) string {
	pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return "list pods: " + err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: phase=%s node=%q ip=%q conditions=%v\n", p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP, p.Status.Conditions)
	}
	return b.String()
}

// datastoreClient is an etcd client of the datastore-proxy authenticated as
// a virtual cluster (with the cluster's own datastore certificate).
func datastoreClient(t *testing.T, env *framework.Env, vc string) *clientv3.Client {
	t.Helper()
	st, err := localenv.LoadState(env.Layout)
	if err != nil {
		t.Fatal(err)
	}
	pkiDir := env.Layout.VClusterPKI(vc)
	tlsCfg, err := (transport.TLSInfo{
		TrustedCAFile: filepath.Join(env.Layout.HostPKI(), "ca.crt"),
		CertFile:      filepath.Join(pkiDir, "datastore-client.crt"),
		KeyFile:       filepath.Join(pkiDir, "datastore-client.key"),
	}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{fmt.Sprintf("https://127.0.0.1:%d", st.Ports[localenv.PortDatastore])},
		TLS:         tlsCfg,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
