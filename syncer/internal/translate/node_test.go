package translate

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/naming"
)

func hostNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "host-uid", Annotations: map[string]string{"host": "secret"}, Labels: map[string]string{
			"kubernetes.io/hostname":           "node-1",
			"kubernetes.io/os":                 "linux",
			"kubernetes.io/arch":               "amd64",
			"topology.kubernetes.io/zone":      "z1",
			"node.kubernetes.io/instance-type": "m5.large",
			"node-role.kubernetes.io/worker":   "",
			"team":                             "infra",
			naming.LabelManaged:                "false",
			"x.kplex.dev/pool":                 "p1",
		}},
		Spec: corev1.NodeSpec{
			PodCIDR:       "10.244.1.0/24",
			PodCIDRs:      []string{"10.244.1.0/24"},
			ProviderID:    "aws:///i-123",
			Unschedulable: true,
			Taints:        []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}},
		},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3800m"), corev1.ResourceMemory: resource.MustParse("15Gi")},
			Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "172.16.0.4"}},
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse},
			},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64",
				KernelVersion: "6.8.0", OSImage: "Ubuntu", ContainerRuntimeVersion: "containerd://2.0", MachineID: "m",
			},
			Images:          []corev1.ContainerImage{{Names: []string{"nginx"}, SizeBytes: 1}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		},
	}
}

func TestNodeDefault(t *testing.T) {
	h := hostNode()
	n := testTenant().Node(h, false)
	wantLabels := map[string]string{
		"kubernetes.io/hostname":           "node-1",
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               "amd64",
		"topology.kubernetes.io/zone":      "z1",
		"node.kubernetes.io/instance-type": "m5.large",
		naming.LabelManaged:                "true",
	}
	if n.Name != "node-1" || n.UID != "" || n.Annotations != nil {
		t.Errorf("meta = %+v", n.ObjectMeta)
	}
	if !reflect.DeepEqual(n.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", n.Labels, wantLabels)
	}
	if n.Spec.Taints != nil || n.Spec.Unschedulable || n.Spec.ProviderID != "" {
		t.Errorf("spec = %+v, want no taints, schedulable, no provider", n.Spec)
	}
	if n.Spec.PodCIDR != "10.244.1.0/24" {
		t.Errorf("podCIDR = %q", n.Spec.PodCIDR)
	}
	wantConds := []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
	if !reflect.DeepEqual(n.Status.Conditions, wantConds) {
		t.Errorf("conditions = %+v, want only Ready", n.Status.Conditions)
	}
	wantInfo := corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64"}
	if n.Status.NodeInfo != wantInfo {
		t.Errorf("nodeInfo = %+v, want %+v", n.Status.NodeInfo, wantInfo)
	}
	if !reflect.DeepEqual(n.Status.Capacity, h.Status.Capacity) || !reflect.DeepEqual(n.Status.Allocatable, h.Status.Allocatable) ||
		!reflect.DeepEqual(n.Status.Addresses, h.Status.Addresses) {
		t.Errorf("capacity/allocatable/addresses = %+v", n.Status)
	}
	if n.Status.Images != nil || n.Status.DaemonEndpoints.KubeletEndpoint.Port != 0 {
		t.Errorf("images/daemon endpoints leaked: %+v", n.Status)
	}
	if !reflect.DeepEqual(h, hostNode()) {
		t.Error("host node mutated")
	}
}

func TestNodeReal(t *testing.T) {
	h := hostNode()
	n := testTenant().Node(h, true)
	wantLabels := map[string]string{
		"kubernetes.io/hostname":           "node-1",
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               "amd64",
		"topology.kubernetes.io/zone":      "z1",
		"node.kubernetes.io/instance-type": "m5.large",
		"node-role.kubernetes.io/worker":   "",
		"team":                             "infra",
		naming.LabelManaged:                "true",
	}
	if !reflect.DeepEqual(n.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", n.Labels, wantLabels)
	}
	if !reflect.DeepEqual(n.Spec.Taints, h.Spec.Taints) || !n.Spec.Unschedulable {
		t.Errorf("spec = %+v, want the host's taints and unschedulable", n.Spec)
	}
	if !reflect.DeepEqual(n.Status.Conditions, h.Status.Conditions) {
		t.Errorf("conditions = %+v, want all", n.Status.Conditions)
	}
	if n.Status.NodeInfo != h.Status.NodeInfo {
		t.Errorf("nodeInfo = %+v, want all", n.Status.NodeInfo)
	}
	if n.Status.Images != nil {
		t.Error("images leaked")
	}
}

func TestNodeNeedsUpdate(t *testing.T) {
	tests := []struct {
		name         string
		change       func(*corev1.Node)
		spec, status bool
	}{
		{"equal", func(*corev1.Node) {}, false, false},
		{"label", func(n *corev1.Node) { n.Labels["team"] = "other" }, true, false},
		{"label removed", func(n *corev1.Node) { delete(n.Labels, "team") }, true, false},
		{"taint", func(n *corev1.Node) { n.Spec.Taints = nil }, true, false},
		{"unschedulable", func(n *corev1.Node) { n.Spec.Unschedulable = false }, true, false},
		{"capacity", func(n *corev1.Node) { n.Status.Capacity[corev1.ResourceCPU] = resource.MustParse("8") }, false, true},
		{"capacity same quantity other form", func(n *corev1.Node) { n.Status.Capacity[corev1.ResourceCPU] = resource.MustParse("4000m") }, false, false},
		{"allocatable", func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourceMemory] = resource.MustParse("14Gi") }, false, true},
		{"address", func(n *corev1.Node) { n.Status.Addresses[0].Address = "172.16.0.5" }, false, true},
		{"condition", func(n *corev1.Node) { n.Status.Conditions[1].Status = corev1.ConditionFalse }, false, true},
		{"node info", func(n *corev1.Node) { n.Status.NodeInfo.KubeletVersion = "v1.38.0" }, false, true},
		{"both", func(n *corev1.Node) { n.Labels["team"] = "x"; n.Status.NodeInfo.KernelVersion = "7" }, true, true},
		{"images are not compared", func(n *corev1.Node) { n.Status.Images = nil }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := testTenant().Node(hostNode(), true)
			cur.Status.Images = []corev1.ContainerImage{{Names: []string{"x"}}}
			want := cur.DeepCopy()
			tt.change(want)
			spec, status := NodeNeedsUpdate(cur, want)
			if spec != tt.spec || status != tt.status {
				t.Errorf("NodeNeedsUpdate = %v, %v; want %v, %v", spec, status, tt.spec, tt.status)
			}
		})
	}
}
