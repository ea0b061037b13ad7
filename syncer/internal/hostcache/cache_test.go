package hostcache

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"kplex.dev/api/bus"
	"kplex.dev/syncer/internal/natsbus"
)

var managed = []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate}}

func upsert(t *testing.T, resource, ns, name string, obj any) natsbus.Delivery {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return natsbus.Delivery{
		Key:     bus.Key{Tenant: "acme", Resource: resource, Namespace: ns, Name: name},
		Message: bus.Message{Type: bus.Upserted, ResourceVersion: "1", Object: raw},
	}
}

func deleted(resource, ns, name string) natsbus.Delivery {
	return natsbus.Delivery{
		Key:     bus.Key{Tenant: "acme", Resource: resource, Namespace: ns, Name: name},
		Message: bus.Message{Type: bus.Deleted, ResourceVersion: "2", Object: json.RawMessage(`{"metadata":{"name":"x"}}`)},
	}
}

func mustApply(t *testing.T, c *Cache, d natsbus.Delivery) {
	t.Helper()
	if err := c.Apply(d); err != nil {
		t.Fatalf("Apply(%s %s/%s): %v", d.Key.Resource, d.Key.Namespace, d.Key.Name, err)
	}
}

func hostPod() *corev1.Pod {
	start := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-0-shop-4", Namespace: "kplex-acme", UID: "host-uid", ResourceVersion: "7",
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"kplex.dev/uid": "v-uid"},
			ManagedFields: managed,
		},
		Spec: corev1.PodSpec{
			NodeName:              "node-1",
			ActiveDeadlineSeconds: ptr.To(int64(60)),
			Tolerations:           []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}},
			ServiceAccountName:    "default",
			Volumes:               []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			InitContainers:        []corev1.Container{{Name: "init", Image: "busybox", Command: []string{"true"}}},
			Containers: []corev1.Container{{
				Name: "app", Image: "nginx:1", Args: []string{"-g"},
				Env:       []corev1.EnvVar{{Name: "A", Value: "1"}},
				Ports:     []corev1.ContainerPort{{ContainerPort: 80}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
			}, {Name: "sidecar", Image: "envoy"}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.1.2.3", HostIP: "172.16.0.4", StartTime: &start,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: start}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 1, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}}},
		},
	}
}

// A pod keeps its identity, status, node, deadline, tolerations and, per
// container, only name, image and resources.
func TestApplyPodTrimmed(t *testing.T) {
	c := New()
	mustApply(t, c, upsert(t, Pods, "shop", "web-0", hostPod()))

	got := c.Pod("shop", "web-0")
	if got == nil {
		t.Fatal("Pod(shop, web-0) = nil")
	}
	want := hostPod()
	want.ManagedFields = nil
	want.Spec = corev1.PodSpec{
		NodeName:              "node-1",
		ActiveDeadlineSeconds: ptr.To(int64(60)),
		Tolerations:           []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}},
		InitContainers:        []corev1.Container{{Name: "init", Image: "busybox"}},
		Containers: []corev1.Container{
			{Name: "app", Image: "nginx:1", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}},
			{Name: "sidecar", Image: "envoy"},
		},
	}
	if !equality.Semantic.DeepEqual(got.ObjectMeta, want.ObjectMeta) {
		t.Errorf("meta = %+v\nwant %+v", got.ObjectMeta, want.ObjectMeta)
	}
	if !equality.Semantic.DeepEqual(got.Spec, want.Spec) {
		t.Errorf("spec = %+v\nwant %+v", got.Spec, want.Spec)
	}
	if !equality.Semantic.DeepEqual(got.Status, want.Status) {
		t.Errorf("status = %+v\nwant %+v", got.Status, want.Status)
	}
	if g, ok := c.Get(Pods, "shop", "web-0").(*corev1.Pod); !ok || g != got {
		t.Errorf("Get = %T, want the same *corev1.Pod", c.Get(Pods, "shop", "web-0"))
	}
	if c.Pod("shop", "web-1") != nil || c.Pod("other", "web-0") != nil || c.Service("shop", "web-0") != nil {
		t.Error("lookup of another key or resource found the pod")
	}
}

func TestApplyKinds(t *testing.T) {
	c := New()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db-shop-4", Namespace: "kplex-acme", ManagedFields: managed},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.200.0.9", Ports: []corev1.ServicePort{{Port: 5432, NodePort: 30432}}},
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"kubernetes.io/os": "linux"}, ManagedFields: managed},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "t", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Images:     []corev1.ContainerImage{{Names: []string{"nginx"}, SizeBytes: 100}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg-shop-4", Namespace: "kplex-acme", Annotations: map[string]string{"kplex.dev/content-hash": "abc"}, ManagedFields: managed},
		Data:       map[string]string{"big": strings.Repeat("x", 100)},
	}
	for _, d := range []natsbus.Delivery{
		upsert(t, Services, "shop", "db", svc),
		upsert(t, Nodes, "", "node-1", node),
		upsert(t, ConfigMaps, "shop", "cfg", cm),
		upsert(t, Secrets, "shop", "creds", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds-shop-4"}, Data: map[string][]byte{"k": []byte("v")}}),
		upsert(t, Endpoints, "shop", "ext", &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "ext-shop-4"}}),
		upsert(t, PodTokens, "shop", "web-0", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-0-shop-4-token"}}),
	} {
		mustApply(t, c, d)
	}

	s := c.Service("shop", "db")
	if s == nil || s.Spec.ClusterIP != "10.200.0.9" || s.Spec.Ports[0].NodePort != 30432 || s.ManagedFields != nil {
		t.Errorf("Service = %+v", s)
	}
	n := c.Node("node-1")
	if n == nil || n.Labels["kubernetes.io/os"] != "linux" || len(n.Spec.Taints) != 1 || len(n.Status.Conditions) != 1 {
		t.Fatalf("Node = %+v", n)
	}
	if n.Status.Images != nil || n.ManagedFields != nil {
		t.Errorf("node images/managedFields kept: %+v %+v", n.Status.Images, n.ManagedFields)
	}
	meta, ok := c.Get(ConfigMaps, "shop", "cfg").(*metav1.PartialObjectMetadata)
	if !ok || meta.Name != "cfg-shop-4" || meta.Annotations["kplex.dev/content-hash"] != "abc" || meta.ManagedFields != nil {
		t.Errorf("configmap = %#v", c.Get(ConfigMaps, "shop", "cfg"))
	}
	for _, r := range []struct{ resource, name, host string }{
		{Secrets, "creds", "creds-shop-4"}, {Endpoints, "ext", "ext-shop-4"}, {PodTokens, "web-0", "web-0-shop-4-token"},
	} {
		m, ok := c.Get(r.resource, "shop", r.name).(*metav1.PartialObjectMetadata)
		if !ok || m.Name != r.host {
			t.Errorf("%s shop/%s = %#v", r.resource, r.name, c.Get(r.resource, "shop", r.name))
		}
	}
	for _, r := range []string{Services, Nodes, ConfigMaps, Secrets, Endpoints, PodTokens} {
		if c.Len(r) != 1 {
			t.Errorf("Len(%s) = %d, want 1", r, c.Len(r))
		}
	}
	if c.Len(Pods) != 0 || c.Names(Pods) == nil || len(c.Names(Pods)) != 0 {
		t.Errorf("pods: Len %d Names %#v, want 0 and empty", c.Len(Pods), c.Names(Pods))
	}
}

func TestApplyUpdateDeleteNames(t *testing.T) {
	c := New()
	pod := func(node string) *corev1.Pod {
		p := hostPod()
		p.Spec.NodeName = node
		return p
	}
	mustApply(t, c, upsert(t, Pods, "shop", "web-0", pod("node-1")))
	mustApply(t, c, upsert(t, Pods, "shop", "web-1", pod("node-1")))
	mustApply(t, c, upsert(t, Pods, "dev", "web-0", pod("node-1")))
	mustApply(t, c, upsert(t, Pods, "shop", "web-0", pod("node-2"))) // update

	names := c.Names(Pods)
	sort.Strings(names)
	if want := []string{"dev/web-0", "shop/web-0", "shop/web-1"}; !reflect.DeepEqual(names, want) || c.Len(Pods) != 3 {
		t.Errorf("Names = %v (Len %d), want %v", names, c.Len(Pods), want)
	}
	if got := c.Pod("shop", "web-0").Spec.NodeName; got != "node-2" {
		t.Errorf("after update nodeName = %q, want node-2", got)
	}

	mustApply(t, c, deleted(Pods, "shop", "web-0"))
	if c.Pod("shop", "web-0") != nil || c.Len(Pods) != 2 {
		t.Errorf("after delete: pod %v, Len %d", c.Pod("shop", "web-0"), c.Len(Pods))
	}
	if c.Pod("dev", "web-0") == nil || c.Pod("shop", "web-1") == nil {
		t.Error("delete removed another pod")
	}
	// Deleting what is not there (or of another resource) is not an error.
	mustApply(t, c, deleted(Pods, "shop", "web-0"))
	mustApply(t, c, deleted(Services, "shop", "web-1"))
	if c.Len(Pods) != 2 {
		t.Errorf("Len = %d, want 2", c.Len(Pods))
	}
	// A node is keyed by name alone.
	mustApply(t, c, upsert(t, Nodes, "", "node-1", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}))
	mustApply(t, c, deleted(Nodes, "", "node-1"))
	if c.Node("node-1") != nil || c.Len(Nodes) != 0 {
		t.Error("node not deleted")
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name, resource, raw, wantErr string
	}{
		{name: "unknown resource", resource: "widgets", raw: `{"metadata":{"name":"w"}}`, wantErr: `unknown resource "widgets"`},
		{name: "bad pod JSON", resource: Pods, raw: `{"metadata":`},
		{name: "pod of the wrong shape", resource: Pods, raw: `{"spec":{"containers":"nginx"}}`},
		{name: "bad service JSON", resource: Services, raw: `[1,2]`},
		{name: "bad node JSON", resource: Nodes, raw: `not json`},
		{name: "bad configmap JSON", resource: ConfigMaps, raw: `{"metadata":{"name":5}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New()
			// What was there before stays when a delivery does not decode.
			mustApply(t, c, upsert(t, Pods, "shop", "web-0", hostPod()))
			before := c.Pod("shop", "web-0")
			d := natsbus.Delivery{
				Key:     bus.Key{Tenant: "acme", Resource: tt.resource, Namespace: "shop", Name: "web-0"},
				Message: bus.Message{Type: bus.Upserted, Object: json.RawMessage(tt.raw)},
			}
			err := c.Apply(d)
			if err == nil {
				t.Fatal("Apply: no error")
			}
			if !strings.Contains(err.Error(), tt.resource+" shop/web-0") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to name the object and contain %q", err, tt.wantErr)
			}
			if c.Len(tt.resource) != 0 && tt.resource != Pods {
				t.Errorf("Len(%s) = %d after a bad delivery", tt.resource, c.Len(tt.resource))
			}
			if c.Pod("shop", "web-0") != before {
				t.Error("a bad delivery replaced the pod")
			}
		})
	}
}

func TestApplyIgnoresAnOlderStateOfTheSameObject(t *testing.T) {
	c := New()
	put := func(uid, rv, phase string) {
		t.Helper()
		raw, _ := json.Marshal(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "h", UID: types.UID(uid), ResourceVersion: rv}, Status: corev1.PodStatus{Phase: corev1.PodPhase(phase)}})
		if err := c.Apply(natsbus.Delivery{Key: bus.Key{Tenant: "t", Resource: Pods, Namespace: "ns", Name: "p"}, Message: bus.Message{Type: bus.Upserted, ResourceVersion: rv, Object: raw}}); err != nil {
			t.Fatal(err)
		}
	}
	put("u1", "20", "Running")
	put("u1", "15", "Pending") // a stale relay's late publish
	if got := c.Pod("ns", "p").Status.Phase; got != corev1.PodRunning {
		t.Fatalf("phase %s after an older state, want Running", got)
	}
	put("u2", "5", "Pending") // a new object of the same name
	if got := c.Pod("ns", "p"); got.UID != "u2" {
		t.Fatalf("uid %s, want the new object u2", got.UID)
	}
}
