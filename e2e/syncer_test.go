package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/cli/localenv"
	"kplex.dev/cli/supervise"
	"kplex.dev/e2e/framework"
)

// TestSyncer runs tenant workloads on the local host cluster through the
// relay, NATS and a shard: two tenants with the same names side by side.
func TestSyncer(t *testing.T) {
	env := framework.Start(t, func(o *localenv.Options) { o.VClusters = []string{"demo", "other"} })
	ctx := context.Background()
	host := env.Host(t)
	demo := env.VCluster(t, "demo")
	other := env.VCluster(t, "other")
	const ns = "default"

	t.Run("deployment runs on the host and reports back", func(t *testing.T) {
		if _, err := demo.AppsV1().Deployments(ns).Create(ctx, deployment("web", 20), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 90*time.Second, "20 pods running on both sides", func(ctx context.Context) error {
			return converged(ctx, demo, host, "demo", ns, "web", 20)
		}, describeSync(env, t, "demo"))
		vpods, _ := runningPods(ctx, demo, ns, "web", 20)
		used := map[string]bool{}
		for _, p := range vpods {
			used[p.Spec.NodeName] = true
		}
		framework.Eventually(t, 30*time.Second, "a virtual node per host node in use", func(ctx context.Context) error {
			nodes, err := demo.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			if len(nodes.Items) != len(used) {
				return fmt.Errorf("%d virtual nodes, want %d (%v)", len(nodes.Items), len(used), used)
			}
			for _, n := range nodes.Items {
				hn, err := host.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
				if err != nil || !used[n.Name] {
					return fmt.Errorf("virtual node %s: not a host node in use (%v)", n.Name, err)
				}
				if !ready(n.Status.Conditions) || len(n.Status.Addresses) == 0 || n.Status.Capacity.Cpu().Cmp(*hn.Status.Capacity.Cpu()) != 0 {
					return fmt.Errorf("virtual node %s: ready=%v addresses=%v capacity=%v", n.Name, ready(n.Status.Conditions), n.Status.Addresses, n.Status.Capacity)
				}
			}
			return nil
		}, nil)
	})

	t.Run("scale down deletes host pods", func(t *testing.T) {
		scale(t, demo, ns, "web", 5)
		framework.Eventually(t, 60*time.Second, "5 pods on both sides", func(ctx context.Context) error {
			return converged(ctx, demo, host, "demo", ns, "web", 5)
		}, describeSync(env, t, "demo"))
	})

	t.Run("service has the host ClusterIP", func(t *testing.T) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}},
		}}
		created, err := demo.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, "host service with the same ClusterIP", func(ctx context.Context) error {
			v, err := demo.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			h, err := host.CoreV1().Services("kplex-demo").Get(ctx, naming.HostName(ns, "web"), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if v.Spec.ClusterIP != h.Spec.ClusterIP {
				return fmt.Errorf("virtual ClusterIP %s, host %s (created with %s)", v.Spec.ClusterIP, h.Spec.ClusterIP, created.Spec.ClusterIP)
			}
			if h.Spec.Selector[naming.LabelNamespace] != ns || h.Spec.Selector["app"] != "web" || h.Spec.Selector[naming.LabelTenant] != "demo" {
				return fmt.Errorf("host selector %v", h.Spec.Selector)
			}
			return nil
		}, nil)
		framework.Eventually(t, 30*time.Second, "host endpoints select the tenant's pods", func(ctx context.Context) error {
			ep, err := host.DiscoveryV1().EndpointSlices("kplex-demo").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + naming.HostName(ns, "web")})
			if err != nil {
				return err
			}
			n := 0
			for _, s := range ep.Items {
				n += len(s.Endpoints)
			}
			if n != 5 {
				return fmt.Errorf("%d host endpoints, want 5", n)
			}
			return nil
		}, nil)
	})

	t.Run("service exported into a host namespace", func(t *testing.T) { testServiceExport(t, env, demo, host) })
	t.Run("service kinds", func(t *testing.T) { testServiceKinds(t, demo, host) })

	t.Run("configmap, secret and service-account token", func(t *testing.T) {
		testConfigAndToken(t, env, demo, host)
	})

	t.Run("drift patrol repairs the host", func(t *testing.T) { testDriftPatrol(t, demo, host) })

	t.Run("same names in two tenants do not collide", func(t *testing.T) {
		if _, err := other.AppsV1().Deployments(ns).Create(ctx, deployment("web", 3), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 60*time.Second, "other's 3 pods", func(ctx context.Context) error {
			return converged(ctx, other, host, "other", ns, "web", 3)
		}, describeSync(env, t, "other"))
		if err := converged(ctx, demo, host, "demo", ns, "web", 5); err != nil {
			t.Fatalf("demo disturbed by other: %v", err)
		}
	})

	both := map[string]kubernetes.Interface{"demo": demo, "other": other}
	t.Run("host and tenant services imported", func(t *testing.T) { testServiceImports(t, env, demo, other, host) })
	t.Run("network policies in two tenants", func(t *testing.T) {
		testNetworkPolicy(t, "demo", "other", demo, host)
		testNetworkPolicy(t, "other", "demo", other, host)
	})
	t.Run("disruption budgets", func(t *testing.T) { testPDB(t, demo, host) })
	t.Run("ingresses in two tenants", func(t *testing.T) { testIngresses(t, both, host) })
	t.Run("persistent volumes in two tenants", func(t *testing.T) { testVolumes(t, both, host) })
	t.Run("imported host classes", func(t *testing.T) { testImportedClasses(t, env, demo, other, host) })
	t.Run("optional resources turned off and on", func(t *testing.T) { testResourcesTurnedOff(t, env, demo, host) })

	t.Run("forged kplex labels cannot take over another tenant's host pod", func(t *testing.T) {
		before, err := hostPods(ctx, host, "demo", ns, "web")
		if err != nil {
			t.Fatal(err)
		}
		var victim string
		for name := range before {
			victim = name
			break
		}
		forged := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name:        victim, // the same virtual name as demo's pod
			Labels:      map[string]string{"app": "forged", naming.LabelTenant: "demo", naming.LabelManaged: "true", naming.LabelNamespace: ns},
			Annotations: map[string]string{naming.AnnotationTenant: "demo", naming.AnnotationName: victim, naming.AnnotationUID: string(before[victim].Annotations[naming.AnnotationUID]), "x." + naming.Domain + "/y": "z"},
		}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
		if _, err := other.CoreV1().Pods(ns).Create(ctx, forged, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, "forged pod runs as other's", func(ctx context.Context) error {
			h, err := host.CoreV1().Pods("kplex-other").Get(ctx, naming.HostName(ns, victim), metav1.GetOptions{})
			if err != nil {
				return err
			}
			for k := range h.Labels {
				if naming.IsKplexKey(k) && h.Labels[k] != map[string]string{naming.LabelTenant: "other", naming.LabelManaged: "true", naming.LabelNamespace: ns}[k] {
					return fmt.Errorf("host pod label %s=%s", k, h.Labels[k])
				}
			}
			if h.Annotations[naming.AnnotationTenant] != "other" || h.Annotations["x."+naming.Domain+"/y"] != "" {
				return fmt.Errorf("host pod annotations %v", h.Annotations)
			}
			return nil
		}, describeSync(env, t, "other"))
		after, err := host.CoreV1().Pods("kplex-demo").Get(ctx, naming.HostName(ns, victim), metav1.GetOptions{})
		if err != nil || after.UID != before[victim].UID || after.Labels["app"] != "web" {
			t.Fatalf("demo's host pod changed: %v %v", after, err)
		}
	})

	t.Run("hostPath pod is refused with an event", func(t *testing.T) {
		bad := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hostpath"}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "x"}},
			Volumes:    []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}},
		}}
		if _, err := demo.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, "refusal event and status", func(ctx context.Context) error {
			p, err := demo.CoreV1().Pods(ns).Get(ctx, "hostpath", metav1.GetOptions{})
			if err != nil {
				return err
			}
			cond := condition(p.Status.Conditions, corev1.PodScheduled)
			if cond == nil || cond.Reason != "KplexPolicyDenied" || !strings.Contains(cond.Message, "hostPath") {
				return fmt.Errorf("status %+v", p.Status)
			}
			evs, err := demo.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=hostpath,reason=PolicyDenied"})
			if err != nil || len(evs.Items) == 0 || evs.Items[0].Type != corev1.EventTypeWarning {
				return fmt.Errorf("no PolicyDenied warning event (%v)", err)
			}
			return nil
		}, nil)
		if _, err := host.CoreV1().Pods("kplex-demo").Get(ctx, naming.HostName(ns, "hostpath"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("a host pod exists for the refused pod: %v", err)
		}
	})

	t.Run("host pod deleted under a running pod evicts it", func(t *testing.T) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "solo"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}, Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}},
		}}}}
		if _, err := demo.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, "solo running", func(ctx context.Context) error {
			v, err := demo.CoreV1().Pods(ns).Get(ctx, "solo", metav1.GetOptions{})
			if err == nil && v.Status.Phase != corev1.PodRunning {
				err = fmt.Errorf("phase %s", v.Status.Phase)
			}
			return err
		}, nil)
		testHostEventsAndImage(t, demo, host, "solo")
		if err := host.CoreV1().Pods("kplex-demo").Delete(ctx, naming.HostName(ns, "solo"), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, "solo evicted", func(ctx context.Context) error {
			v, err := demo.CoreV1().Pods(ns).Get(ctx, "solo", metav1.GetOptions{})
			if err == nil && (v.Status.Phase != corev1.PodFailed || v.Status.Reason != "Evicted") {
				err = fmt.Errorf("phase %s reason %q", v.Status.Phase, v.Status.Reason)
			}
			return err
		}, nil)
	})

	t.Run("virtual nodes go when no pod runs there", func(t *testing.T) {
		if err := other.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := other.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 60*time.Second, "other has no pods, host pods or nodes", func(ctx context.Context) error {
			pods, err := other.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil || len(pods.Items) > 0 {
				return fmt.Errorf("%d virtual pods left (%v)", len(pods.Items), err)
			}
			hpods, err := host.CoreV1().Pods("kplex-other").List(ctx, metav1.ListOptions{})
			if err != nil || len(hpods.Items) > 0 {
				return fmt.Errorf("%d host pods left (%v)", len(hpods.Items), err)
			}
			nodes, err := other.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil || len(nodes.Items) > 0 {
				return fmt.Errorf("%d virtual nodes left (%v)", len(nodes.Items), err)
			}
			return nil
		}, describeSync(env, t, "other"))
	})

	t.Run("relay and shard restarted mid-rollout converge", func(t *testing.T) {
		scale(t, demo, ns, "web", 30)
		time.Sleep(500 * time.Millisecond)
		for _, name := range []string{"syncer-relay", "syncer-shard-0"} {
			if err := supervise.Stop(env.Layout.Pid(name), 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		scale(t, demo, ns, "web", 25) // a change while both are down
		upCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := localenv.Up(upCtx, env.Opts); err != nil {
			t.Fatalf("up after stopping the syncer: %v", err)
		}
		framework.Eventually(t, 90*time.Second, "25 pods, no duplicates or orphans", func(ctx context.Context) error {
			return converged(ctx, demo, host, "demo", ns, "web", 25)
		}, describeSync(env, t, "demo"))
	})

	t.Run("NATS restarted mid-rollout converges", func(t *testing.T) {
		scale(t, demo, ns, "web", 30)
		if err := supervise.Stop(env.Layout.Pid("nats"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		scale(t, demo, ns, "web", 28) // while the bus is down
		time.Sleep(2 * time.Second)
		upCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := localenv.Up(upCtx, env.Opts); err != nil {
			t.Fatalf("up after stopping NATS: %v", err)
		}
		framework.Eventually(t, 90*time.Second, "28 pods after NATS came back", func(ctx context.Context) error {
			return converged(ctx, demo, host, "demo", ns, "web", 28)
		}, describeSync(env, t, "demo"))
	})
}

func ready(conds []corev1.NodeCondition) bool {
	for _, c := range conds {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func condition(conds []corev1.PodCondition, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// testConfigAndToken runs a pod that mounts a ConfigMap and a Secret and
// reads both through env refs, and checks its service-account token is
// accepted by the TENANT API.
func testConfigAndToken(t *testing.T, env *framework.Env, demo, host kubernetes.Interface) {
	ctx := context.Background()
	const ns = "default"
	if _, err := demo.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "fast"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"password": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "x",
			Env: []corev1.EnvVar{
				{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "mode"}}},
				{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "settings", MountPath: "/etc/settings"}, {Name: "creds", MountPath: "/etc/creds"}},
		}},
		Volumes: []corev1.Volume{
			{Name: "settings", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
			{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		},
	}}
	if _, err := demo.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hostNS := naming.HostNamespace("demo")
	var hp *corev1.Pod
	framework.Eventually(t, 60*time.Second, "reader runs with its config on the host", func(ctx context.Context) error {
		v, err := demo.CoreV1().Pods(ns).Get(ctx, "reader", metav1.GetOptions{})
		if err != nil || v.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("virtual pod: %v %v", err, v.Status.Phase)
		}
		cm, err := host.CoreV1().ConfigMaps(hostNS).Get(ctx, naming.HostName(ns, "settings"), metav1.GetOptions{})
		if err != nil || cm.Data["mode"] != "fast" {
			return fmt.Errorf("host configmap: %v %v", err, cm.Data)
		}
		s, err := host.CoreV1().Secrets(hostNS).Get(ctx, naming.HostName(ns, "creds"), metav1.GetOptions{})
		if err != nil || string(s.Data["password"]) != "s3cret" {
			return fmt.Errorf("host secret: %v", err)
		}
		hp, err = host.CoreV1().Pods(hostNS).Get(ctx, naming.HostName(ns, "reader"), metav1.GetOptions{})
		return err
	}, describeSync(env, t, "demo"))
	c := hp.Spec.Containers[0]
	envs := map[string]*corev1.EnvVarSource{}
	for _, e := range c.Env {
		envs[e.Name] = e.ValueFrom
	}
	if envs["MODE"] == nil || envs["MODE"].ConfigMapKeyRef.Name != naming.HostName(ns, "settings") ||
		envs["PASSWORD"] == nil || envs["PASSWORD"].SecretKeyRef.Name != naming.HostName(ns, "creds") {
		t.Errorf("host env refs not translated: %+v", c.Env)
	}
	// An unused ConfigMap is not copied (configMaps: Used).
	if _, err := demo.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unused"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The token the host pod mounts is the tenant's.
	var token string
	framework.Eventually(t, 30*time.Second, "pod token secret", func(ctx context.Context) error {
		s, err := host.CoreV1().Secrets(hostNS).Get(ctx, hp.Name+"-token", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, v := range s.Data {
			token = string(v)
		}
		if token == "" {
			return fmt.Errorf("empty token secret")
		}
		return nil
	}, nil)
	review, err := demo.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:default:default" {
		t.Fatalf("tenant TokenReview of the host pod's token: %+v", review.Status)
	}
	if _, err := host.CoreV1().ConfigMaps(hostNS).Get(ctx, naming.HostName(ns, "unused"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("unused configmap was copied to the host: %v", err)
	}
}
