package translate

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func mustPolicy(t *testing.T, level string) *Policy {
	t.Helper()
	p, err := NewPolicy(level)
	if err != nil {
		t.Fatalf("NewPolicy(%q): %v", level, err)
	}
	return p
}

// hardened is a pod that meets the restricted standard.
func hardened() *corev1.Pod {
	p := testPod()
	p.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	return p
}

func TestPolicy(t *testing.T) {
	tests := []struct {
		name, level string
		pod         func(*corev1.Pod)
		want        []string // substrings of the refusal; none: allowed
	}{
		{name: "baseline plain pod", level: "baseline", pod: func(*corev1.Pod) {}},
		{name: "baseline hardened pod", level: "baseline", pod: func(p *corev1.Pod) { *p = *hardened() }},
		{name: "baseline hostNetwork", level: "baseline", pod: func(p *corev1.Pod) { p.Spec.HostNetwork = true },
			want: []string{`violates PodSecurity "baseline" on the host`, "hostNetwork"}},
		{name: "baseline hostPID", level: "baseline", pod: func(p *corev1.Pod) { p.Spec.HostPID = true },
			want: []string{"hostPID"}},
		{name: "baseline hostPath", level: "baseline", pod: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		}, want: []string{"hostPath", `"root"`}},
		{name: "baseline privileged", level: "baseline", pod: func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}, want: []string{"privileged", `"app"`}},
		{name: "baseline NET_ADMIN", level: "baseline", pod: func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}
		}, want: []string{"NET_ADMIN"}},
		{name: "baseline NET_ADMIN in an init container", level: "baseline", pod: func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "x", SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}}}
		}, want: []string{"NET_ADMIN", `"setup"`}},
		{name: "restricted plain pod", level: "restricted", pod: func(*corev1.Pod) {},
			want: []string{`violates PodSecurity "restricted" on the host`, "runAsNonRoot", "seccompProfile", "allowPrivilegeEscalation"}},
		{name: "restricted hardened pod", level: "restricted", pod: func(p *corev1.Pod) { *p = *hardened() }},
		{name: "restricted hardened pod running as root", level: "restricted", pod: func(p *corev1.Pod) {
			*p = *hardened()
			p.Spec.Containers[0].SecurityContext.RunAsUser = ptr.To(int64(0))
		}, want: []string{"runAsUser=0"}},
		{name: "restricted hardened pod without seccomp", level: "restricted", pod: func(p *corev1.Pod) {
			*p = *hardened()
			p.Spec.SecurityContext.SeccompProfile = nil
		}, want: []string{"seccompProfile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPod()
			tt.pod(p)
			got := mustPolicy(t, tt.level).Check(p)
			if len(tt.want) == 0 {
				if got != "" {
					t.Errorf("Check = %q, want allowed", got)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Check = %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

// The host pod made from a hardened virtual pod (token projection turned
// into a Secret projection, env added) still meets the restricted level.
func TestPolicyTranslatedPod(t *testing.T) {
	v := hardened()
	v.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
	}}}}}
	h := testTenant().Pod(v, nil)
	if got := mustPolicy(t, "restricted").Check(h); got != "" {
		t.Errorf("host pod refused: %s", got)
	}
}

func TestNewPolicyLevels(t *testing.T) {
	for _, level := range []string{"privileged", "x", "", "Baseline"} {
		if p, err := NewPolicy(level); err == nil || p != nil {
			t.Errorf("NewPolicy(%q) = %v, %v; want an error", level, p, err)
		} else if !strings.Contains(err.Error(), "want baseline or restricted") {
			t.Errorf("NewPolicy(%q) error = %v", level, err)
		}
	}
	for _, level := range []string{"baseline", "restricted"} {
		mustPolicy(t, level)
	}
}
