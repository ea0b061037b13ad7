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
			if strings.HasSuffix(k, ".yaml") {
				s.Data[k] = []byte("tenants:\n- {name: " + tenant + ", kubeconfig: " + tenant + ".kubeconfig}\n")
			}
		}
		return s
	}
	withRegistration := func(s *corev1.Secret, reg string) *corev1.Secret {
		s.Data[s.Labels[registry.SecretLabel]+".yaml"] = []byte(reg)
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
		{"a dotted tenant taking another's host kubeconfig", secret("kplex-registration-a.host", "a.host", "a.host.kubeconfig"), 0, "not the registration Secret"},
		{"registering another tenant", withRegistration(secret("kplex-registration-a", "a", "a.yaml"), "tenants:\n- {name: b, kubeconfig: a.kubeconfig}\n"), 0, "must be tenant a's alone"},
		{"two tenants", withRegistration(secret("kplex-registration-a", "a", "a.yaml"), "tenants:\n- {name: a, kubeconfig: a.kubeconfig}\n- {name: b, kubeconfig: a.kubeconfig}\n"), 0, "must be tenant a's alone"},
		{"a kubeconfig elsewhere", withRegistration(secret("kplex-registration-a", "a", "a.yaml"), "tenants:\n- {name: a, kubeconfig: a.kubeconfig, hostKubeconfig: /etc/kplex/other}\n"), 0, "must be tenant a's alone"},
		{"a registration that does not parse", withRegistration(secret("kplex-registration-a", "a", "a.yaml"), "tenants: ["), 0, "tenants file"},
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
