package tenant

import (
	"strings"
	"testing"
)

func valid() Config {
	return Config{
		Name: "demo", SecurePort: 7443, EtcdServers: []string{"https://127.0.0.1:2379"},
		EtcdCAFile: "ca", EtcdCertFile: "c", EtcdKeyFile: "k", EtcdPrefix: "/kplex/demo",
		TLSCertFile: "s.crt", TLSKeyFile: "s.key", ClientCAFile: "ca.crt",
		ServiceAccountSigningKeyFile: "sa.key", ServiceAccountKeyFile: "sa.pub",
		ServiceClusterIPRange: "10.96.0.0/16",
	}
}

func TestFlagsValidation(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"no name", func(c *Config) { c.Name = "" }, "name is required"},
		{"bad port", func(c *Config) { c.SecurePort = 70000 }, "out of range"},
		{"no etcd", func(c *Config) { c.EtcdServers = nil }, "no etcd servers"},
		{"no client CA", func(c *Config) { c.ClientCAFile = "" }, "client CA"},
		{"no SA key", func(c *Config) { c.ServiceAccountKeyFile = "" }, "service-account"},
		{"no service range", func(c *Config) { c.ServiceClusterIPRange = "" }, "service cluster IP range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			_, err := Flags(c)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestFlagsContent(t *testing.T) {
	f, err := Flags(valid())
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(f, " ")
	for _, want := range []string{
		"--etcd-prefix=/kplex/demo", "--secure-port=7443", "--bind-address=127.0.0.1",
		"--service-account-issuer=https://kubernetes.default.svc/kplex/demo",
		"--watch-cache=false", "--authorization-mode=RBAC", "--etcd-cafile=ca",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("flags lack %q: %s", want, joined)
		}
	}
	seen := map[string]bool{}
	for _, a := range f {
		name := strings.SplitN(a, "=", 2)[0]
		if seen[name] {
			t.Errorf("flag %s given twice", name)
		}
		seen[name] = true
	}
}

func TestRuntimeConfig(t *testing.T) {
	rc := RuntimeConfig()
	if !strings.HasPrefix(rc, "api/all=false,") {
		t.Fatalf("runtime config must start by disabling everything: %s", rc)
	}
	for _, gv := range []string{"api/v1=true", "apps/v1=true", "rbac.authorization.k8s.io/v1=true", "coordination.k8s.io/v1=true"} {
		if !strings.Contains(rc, gv) {
			t.Errorf("runtime config lacks %s", gv)
		}
	}
	if strings.Contains(rc, "flowcontrol") || strings.Contains(rc, "resource.k8s.io") {
		t.Errorf("runtime config enables a trimmed group: %s", rc)
	}
}
