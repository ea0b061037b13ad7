package tenant

import (
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	good := Config{Name: "demo", Kubeconfig: "kc", SecurePort: 10259}
	tests := []struct {
		name    string
		mutate  func(*Config)
		want    []string
		wantErr string
	}{
		{"defaults", func(*Config) {}, []string{"--bind-address=127.0.0.1", "--leader-elect=false", "--authorization-kubeconfig=kc"}, ""},
		{"in a pod, replicated", func(c *Config) { c.BindAddress, c.LeaderElect = "0.0.0.0", true }, []string{"--bind-address=0.0.0.0", "--leader-elect=true"}, ""},
		{"no name", func(c *Config) { c.Name = "" }, nil, "name is required"},
		{"no kubeconfig", func(c *Config) { c.Kubeconfig = "" }, nil, "kubeconfig"},
		{"bad port", func(c *Config) { c.SecurePort = 70000 }, nil, "out of range"},
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
			for _, w := range tt.want {
				if !strings.Contains(joined, w) {
					t.Errorf("flags %q lack %q", joined, w)
				}
			}
		})
	}
}
