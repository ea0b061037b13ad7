package app

import (
	"io"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	common := []string{"--datastore-endpoints=https://127.0.0.1:2379", "--datastore-ca-cert=ca.crt", "--datastore-ca-key=ca.key",
		"--datastore-server-ca=server.crt", "--datastore-limits-file=limits.yaml", "--syncer-tenants-dir=tenants.d"}
	kube := []string{"--runtime=kubernetes", "--apiserver-image=r/a:1", "--controller-manager-image=r/c:1"}
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"process", []string{"--data-dir=/d"}, nil},
		{"process needs a data dir", nil, []string{"--data-dir is required"}},
		{"kubernetes", kube, nil},
		{"kubernetes needs images", []string{"--runtime=kubernetes"}, []string{"--apiserver-image is required", "--controller-manager-image is required"}},
		{"bad pull policy", append(kube, "--image-pull-policy=Sometimes"), []string{"--image-pull-policy"}},
		{"bad service type", append(kube, "--apiserver-service-type=ExternalName"), []string{"--apiserver-service-type"}},
		{"endpoint template", append(kube, "--apiserver-endpoint=https://{tenant}.vc.example.com"), nil},
		{"plain http endpoint", append(kube, "--apiserver-endpoint=http://{tenant}.vc.example.com"), []string{"--apiserver-endpoint", "https URL"}},
		{"unknown runtime", []string{"--runtime=vm"}, []string{`--runtime "vm"`}},
		{"missing datastore", []string{"--data-dir=/d", "--datastore-endpoints="}, []string{"--datastore-endpoints is required"}},
		{"registry in Secrets, limits in a ConfigMap", append(kube, "--syncer-tenants-dir=", "--syncer-registry-namespace=kplex-system",
			"--datastore-limits-file=", "--datastore-limits-configmap=kplex-system/limits"), nil},
		{"both registries", append(kube, "--syncer-registry-namespace=kplex-system"), []string{"give one of --syncer-tenants-dir and --syncer-registry-namespace"}},
		{"no limits", append(kube, "--datastore-limits-file="), []string{"give one of --datastore-limits-file and --datastore-limits-configmap"}},
		{"unknown consent", append(kube, "--networking-consent=ask"), []string{`--networking-consent "ask"`}},
		{"limits configmap without namespace", append(kube, "--datastore-limits-file=", "--datastore-limits-configmap=limits"), []string{"want NAMESPACE/NAME"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFlags(append(append([]string{}, common...), tt.args...), io.Discard)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
