package translate

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/naming"
)

// basicNodeLabels are the host node labels every tenant sees.
var basicNodeLabels = []string{
	"kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
	"topology.kubernetes.io/zone", "topology.kubernetes.io/region",
	"node.kubernetes.io/instance-type",
}

// Node returns the virtual Node mirroring host node h. By default a tenant
// sees the node's name, addresses, capacity, a few well-known labels and
// its Ready condition; with real set, every label, taint and condition.
func (t Tenant) Node(h *corev1.Node, real bool) *corev1.Node {
	labels := map[string]string{}
	if real {
		for k, v := range naming.TenantMetadata(h.Labels) {
			labels[k] = v
		}
	} else {
		for _, k := range basicNodeLabels {
			if v, ok := h.Labels[k]; ok {
				labels[k] = v
			}
		}
	}
	labels[naming.LabelManaged] = "true"
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: h.Name, Labels: labels}}
	n.Spec.PodCIDR, n.Spec.PodCIDRs = h.Spec.PodCIDR, h.Spec.PodCIDRs
	if real {
		n.Spec.Taints = h.Spec.Taints
		n.Spec.Unschedulable = h.Spec.Unschedulable
	}
	st := h.Status.DeepCopy()
	n.Status = corev1.NodeStatus{
		Capacity:    st.Capacity,
		Allocatable: st.Allocatable,
		Addresses:   st.Addresses,
		NodeInfo:    st.NodeInfo,
		Phase:       st.Phase,
	}
	for _, c := range st.Conditions {
		if real || c.Type == corev1.NodeReady {
			n.Status.Conditions = append(n.Status.Conditions, c)
		}
	}
	if !real {
		n.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: st.NodeInfo.KubeletVersion, OperatingSystem: st.NodeInfo.OperatingSystem, Architecture: st.NodeInfo.Architecture}
	}
	return n
}

// NodeNeedsUpdate reports whether virtual node cur differs from want in
// metadata/spec (first) or status (second).
func NodeNeedsUpdate(cur, want *corev1.Node) (spec, status bool) {
	spec = !equality.Semantic.DeepEqual(cur.Labels, want.Labels) ||
		!equality.Semantic.DeepEqual(cur.Spec.Taints, want.Spec.Taints) ||
		cur.Spec.Unschedulable != want.Spec.Unschedulable
	status = !equality.Semantic.DeepEqual(cur.Status.Capacity, want.Status.Capacity) ||
		!equality.Semantic.DeepEqual(cur.Status.Allocatable, want.Status.Allocatable) ||
		!equality.Semantic.DeepEqual(cur.Status.Addresses, want.Status.Addresses) ||
		!equality.Semantic.DeepEqual(cur.Status.Conditions, want.Status.Conditions) ||
		!equality.Semantic.DeepEqual(cur.Status.NodeInfo, want.Status.NodeInfo)
	return spec, status
}
