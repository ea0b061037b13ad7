package tenant

import (
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	good := Config{Name: "demo", Kubeconfig: "kc", SecurePort: 10357, RootCAFile: "ca.crt", ServiceAccountPrivateKeyFile: "sa.key"}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"no name", func(c *Config) { c.Name = "" }, "name is required"},
		{"no kubeconfig", func(c *Config) { c.Kubeconfig = "" }, "kubeconfig"},
		{"bad port", func(c *Config) { c.SecurePort = 0 }, "out of range"},
		{"no sa key", func(c *Config) { c.ServiceAccountPrivateKeyFile = "" }, "service-account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			f, err := Flags(c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(f, " ")
			for _, want := range []string{"--cluster-name=demo", "-node-lifecycle-controller", "--leader-elect=false", "--use-service-account-credentials=true"} {
				if !strings.Contains(joined, want) {
					t.Errorf("flags lack %q", want)
				}
			}
		})
	}
}
