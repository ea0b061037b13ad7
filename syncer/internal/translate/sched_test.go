package translate

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/naming"
)

func nsIn(namespaces ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: naming.LabelNamespace, Operator: metav1.LabelSelectorOpIn, Values: namespaces}
}

func TestPodAffinityTerms(t *testing.T) {
	tier := metav1.LabelSelectorRequirement{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"be"}}
	tests := []struct {
		name string
		in   corev1.PodAffinityTerm
		want *metav1.LabelSelector
	}{
		{
			name: "own namespace by default",
			in:   corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}, MatchExpressions: []metav1.LabelSelectorRequirement{tier}}},
			want: &metav1.LabelSelector{
				MatchLabels:      map[string]string{"app": "db", naming.LabelTenant: "acme"},
				MatchExpressions: []metav1.LabelSelectorRequirement{tier, nsIn("shop")},
			},
		},
		{
			name: "listed namespaces",
			in:   corev1.PodAffinityTerm{Namespaces: []string{"a", "b"}, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
			want: &metav1.LabelSelector{
				MatchLabels:      map[string]string{"app": "db", naming.LabelTenant: "acme"},
				MatchExpressions: []metav1.LabelSelectorRequirement{nsIn("a", "b")},
			},
		},
		{
			name: "namespace selector widens to the tenant only",
			in: corev1.PodAffinityTerm{
				Namespaces:        []string{"a"},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}},
				LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			},
			want: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db", naming.LabelTenant: "acme"}},
		},
		{
			name: "tenant kplex keys dropped",
			in: corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"app": "db", naming.LabelTenant: "other", naming.LabelNamespace: "kube-system", "x.kplex.dev/foo": "y"},
				MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: naming.LabelTenant, Operator: metav1.LabelSelectorOpExists},
					{Key: "sub.kplex.dev/bar", Operator: metav1.LabelSelectorOpDoesNotExist},
					nsIn("other"),
					tier,
				},
			}},
			want: &metav1.LabelSelector{
				MatchLabels:      map[string]string{"app": "db", naming.LabelTenant: "acme"},
				MatchExpressions: []metav1.LabelSelectorRequirement{tier, nsIn("shop")},
			},
		},
		{
			name: "empty selector still confined",
			in:   corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{}, MatchLabelKeys: []string{"pod-template-hash"}, MismatchLabelKeys: []string{"x"}},
			want: &metav1.LabelSelector{MatchLabels: map[string]string{naming.LabelTenant: "acme"}, MatchExpressions: []metav1.LabelSelectorRequirement{nsIn("shop")}},
		},
		{
			name: "nil selector stays nil",
			in:   corev1.PodAffinityTerm{},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term := func() corev1.PodAffinityTerm {
				c := *tt.in.DeepCopy()
				c.TopologyKey = "topology.kubernetes.io/zone"
				return c
			}
			v := testPod()
			v.Spec.Affinity = &corev1.Affinity{
				PodAffinity: &corev1.PodAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution:  []corev1.PodAffinityTerm{term()},
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 10, PodAffinityTerm: term()}},
				},
				PodAntiAffinity: &corev1.PodAntiAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution:  []corev1.PodAffinityTerm{term()},
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 20, PodAffinityTerm: term()}},
				},
			}
			h := testTenant().Pod(v, nil)
			a := h.Spec.Affinity
			got := map[string]corev1.PodAffinityTerm{
				"affinity required":      a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0],
				"affinity preferred":     a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm,
				"antiaffinity required":  a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0],
				"antiaffinity preferred": a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm,
			}
			want := corev1.PodAffinityTerm{
				LabelSelector: tt.want,
				Namespaces:    []string{"kplex-acme"},
				TopologyKey:   "topology.kubernetes.io/zone",
			}
			for where, g := range got {
				if !reflect.DeepEqual(g, want) {
					t.Errorf("%s = %+v, want %+v", where, g, want)
				}
			}
			if w := a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight; w != 20 {
				t.Errorf("weight = %d, want 20", w)
			}
			if !reflect.DeepEqual(v.Spec.Affinity.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0], term()) {
				t.Error("virtual affinity mutated")
			}
		})
	}
}

func TestPodAffinityNodeAffinityKept(t *testing.T) {
	v := testPod()
	na := &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "disk", Operator: corev1.NodeSelectorOpIn, Values: []string{"ssd"}}},
	}}}}
	v.Spec.Affinity = &corev1.Affinity{NodeAffinity: na.DeepCopy()}
	h := testTenant().Pod(v, nil)
	if !reflect.DeepEqual(h.Spec.Affinity, &corev1.Affinity{NodeAffinity: na}) {
		t.Errorf("affinity = %+v, want node affinity unchanged", h.Spec.Affinity)
	}
}

func TestPodTopologySpread(t *testing.T) {
	v := testPod()
	v.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{
		{MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{
			MatchLabels:      map[string]string{"app": "web", naming.LabelNamespace: "other"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x.kplex.dev/y", Operator: metav1.LabelSelectorOpExists}},
		}},
		{MaxSkew: 2, TopologyKey: "host", WhenUnsatisfiable: corev1.ScheduleAnyway},
	}
	h := testTenant().Pod(v, nil)
	c := h.Spec.TopologySpreadConstraints
	want := &metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "web", naming.LabelTenant: "acme"},
		MatchExpressions: []metav1.LabelSelectorRequirement{nsIn("shop")},
	}
	if !reflect.DeepEqual(c[0].LabelSelector, want) {
		t.Errorf("constraint 0 selector = %+v, want %+v", c[0].LabelSelector, want)
	}
	if c[0].MaxSkew != 1 || c[0].TopologyKey != "zone" || c[0].WhenUnsatisfiable != corev1.DoNotSchedule {
		t.Errorf("constraint 0 = %+v", c[0])
	}
	if c[1].LabelSelector != nil || c[1].MaxSkew != 2 {
		t.Errorf("constraint 1 = %+v, want nil selector kept", c[1])
	}
	if v.Spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels[naming.LabelNamespace] != "other" {
		t.Error("virtual constraint mutated")
	}
}
