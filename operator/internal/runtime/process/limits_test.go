package process

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"kplex.dev/operator/internal/runtime"
)

func TestLimitsEnv(t *testing.T) {
	size := func(limits, requests corev1.ResourceList) runtime.Size {
		return runtime.Size{Resources: corev1.ResourceRequirements{Limits: limits, Requests: requests}}
	}
	q := resource.MustParse
	tests := []struct {
		name string
		size runtime.Size
		want []string
	}{
		{"none", runtime.Size{}, nil},
		{"requests only", size(nil, corev1.ResourceList{corev1.ResourceMemory: q("256Mi")}), nil},
		{"memory", size(corev1.ResourceList{corev1.ResourceMemory: q("1000")}, nil), []string{"GOMEMLIMIT=900"}},
		{"both", size(corev1.ResourceList{corev1.ResourceMemory: q("512Mi"), corev1.ResourceCPU: q("1500m")}, nil),
			[]string{"GOMEMLIMIT=483183819", "GOMAXPROCS=2"}},
		{"a sliver of a core is one", size(corev1.ResourceList{corev1.ResourceCPU: q("100m")}, nil), []string{"GOMAXPROCS=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LimitsEnv(tt.size); !slices.Equal(got, tt.want) {
				t.Errorf("LimitsEnv = %v, want %v", got, tt.want)
			}
		})
	}
}
