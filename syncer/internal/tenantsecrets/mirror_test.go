package tenantsecrets

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/registry"
)

func TestFiles(t *testing.T) {
	secret := func(name, tenant string, keys ...string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{registry.SecretLabel: tenant}}, Data: map[string][]byte{}}
		for _, k := range keys {
			s.Data[k] = []byte(k)
		}
		return s
	}
	tests := []struct {
		name    string
		s       *corev1.Secret
		want    int
		wantErr string
	}{
		{"registration with both kubeconfigs", secret("kplex-registration-a", "a", "a.yaml", "a.kubeconfig", "a.host.kubeconfig"), 3, ""},
		{"host kubeconfig kept alone (paused)", secret("kplex-registration-a", "a", "a.host.kubeconfig"), 1, ""},
		{"another tenant's file", secret("kplex-registration-a", "a", "a.yaml", "b.kubeconfig"), 0, `unexpected key "b.kubeconfig"`},
		{"a path", secret("kplex-registration-a", "a", "../a.yaml"), 0, "unexpected key"},
		{"name and label disagree", secret("kplex-registration-a", "b", "b.yaml"), 0, "not the registration Secret"},
		{"no label", secret("kplex-registration-a", "", "a.yaml"), 0, "not the registration Secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Files(tt.s)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("Files = %v, %v; want %d files", got, err, tt.want)
			}
		})
	}
}
