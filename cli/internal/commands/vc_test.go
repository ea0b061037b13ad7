package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kplex.dev/api/v1alpha1"
)

func TestReadManifest(t *testing.T) {
	dir := t.TempDir()
	file := func(body string) string {
		p := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, stdin, wantErr string
		check                      func(*v1alpha1.VirtualCluster) bool
	}{
		{name: "spec alone from stdin", path: "-", stdin: "tenancy: {privateNodes: {kubeconfigSecret: other}}",
			check: func(vc *v1alpha1.VirtualCluster) bool {
				return vc.Spec.Tenancy != nil && vc.Spec.Tenancy.PrivateNodes.KubeconfigSecret == "other"
			}},
		{name: "manifest", path: "apiVersion: kplex.dev/v1alpha1\nkind: VirtualCluster\nmetadata: {name: a}\nspec: {paused: true}\n",
			check: func(vc *v1alpha1.VirtualCluster) bool { return vc.Spec.Paused }},
		{name: "another kind", path: "kind: Pod\n", wantErr: `kind "Pod": want VirtualCluster`},
		{name: "unknown spec field", path: "tenancy: {privateNode: {}}\n", wantErr: "read as a VirtualCluster spec"},
		{name: "missing file", path: "", wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			switch {
			case path == "":
				path = filepath.Join(dir, "absent.yaml")
			case path != "-":
				path = file(path)
			}
			var vc v1alpha1.VirtualCluster
			err := readManifest(strings.NewReader(tt.stdin), path, &vc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(&vc) {
				t.Fatalf("err = %v, got %+v", err, vc.Spec)
			}
		})
	}
}
