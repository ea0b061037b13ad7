package tenants

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		check             func(*testing.T, *Config)
	}{
		{name: "defaults", in: "tenants:\n- {name: demo, kubeconfig: k}\n", check: func(t *testing.T, c *Config) {
			got := c.Tenants[0]
			if got.Kubeconfig != "/etc/kplex/k" || got.PodSecurity != "baseline" || got.ConfigMaps != SyncUsed || got.Secrets != SyncUsed {
				t.Errorf("got %+v", got)
			}
		}},
		{name: "absolute path kept", in: "tenants:\n- {name: a, kubeconfig: /x/k, podSecurity: restricted, secrets: All}\n", check: func(t *testing.T, c *Config) {
			if c.Tenants[0].Kubeconfig != "/x/k" || c.Tenants[0].PodSecurity != "restricted" || c.Tenants[0].Secrets != SyncAll {
				t.Errorf("got %+v", c.Tenants[0])
			}
		}},
		{name: "private host kubeconfig resolved", in: "tenants:\n- {name: p, kubeconfig: k, hostKubeconfig: p.host.kubeconfig}\n- {name: q, kubeconfig: k, hostKubeconfig: /y/h}\n- {name: r, kubeconfig: k}\n", check: func(t *testing.T, c *Config) {
			if got := []string{c.Tenants[0].HostKubeconfig, c.Tenants[1].HostKubeconfig, c.Tenants[2].HostKubeconfig}; got[0] != "/etc/kplex/p.host.kubeconfig" || got[1] != "/y/h" || got[2] != "" {
				t.Errorf("host kubeconfigs %q", got)
			}
		}},
		{name: "empty file", in: "", check: func(t *testing.T, c *Config) {
			if len(c.Tenants) != 0 {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "bad name", in: "tenants:\n- {name: Demo, kubeconfig: k}\n", wantErr: `tenants[0].name "Demo"`},
		{name: "name too long", in: "tenants:\n- {name: a234567890123456789012345678901234567890x, kubeconfig: k}\n", wantErr: "at most 40"},
		{name: "duplicate", in: "tenants:\n- {name: a, kubeconfig: k}\n- {name: a, kubeconfig: k}\n", wantErr: "listed twice"},
		{name: "no kubeconfig", in: "tenants:\n- {name: a}\n", wantErr: "kubeconfig: required"},
		{name: "bad level", in: "tenants:\n- {name: a, kubeconfig: k, podSecurity: privileged}\n", wantErr: "podSecurity"},
		{name: "bad mode", in: "tenants:\n- {name: a, kubeconfig: k, configMaps: some}\n", wantErr: "configMaps"},
		{name: "bad endpoint", in: "tenants:\n- {name: a, kubeconfig: k, apiServerEndpoint: nohost}\n", wantErr: "apiServerEndpoint"},
		{name: "dedicated nodes", in: "tenants:\n- {name: a, kubeconfig: k, nodeSelector: {pool: a}, tolerations: [{key: dedicated, operator: Exists}]}\n",
			check: func(t *testing.T, c *Config) {
				if c.Tenants[0].NodeSelector["pool"] != "a" || len(c.Tenants[0].Tolerations) != 1 {
					t.Errorf("got %+v", c.Tenants[0])
				}
			}},
		{name: "bad selector key", in: "tenants:\n- {name: a, kubeconfig: k, nodeSelector: {'a b': x}}\n", wantErr: "nodeSelector key"},
		{name: "bad selector value", in: "tenants:\n- {name: a, kubeconfig: k, nodeSelector: {pool: 'a b'}}\n", wantErr: "nodeSelector[pool]"},
		{name: "resources absent: all", in: "tenants:\n- {name: a, kubeconfig: k}\n", check: func(t *testing.T, c *Config) {
			if !c.Tenants[0].Syncs("ingresses") || !c.Tenants[0].Syncs("persistentvolumeclaims") {
				t.Errorf("a registration without resources must sync every optional resource: %+v", c.Tenants[0])
			}
		}},
		{name: "resources empty: none", in: "tenants:\n- {name: a, kubeconfig: k, resources: []}\n", check: func(t *testing.T, c *Config) {
			if c.Tenants[0].Syncs("ingresses") || c.Tenants[0].Syncs("networkpolicies") {
				t.Errorf("resources: [] must sync none: %+v", c.Tenants[0])
			}
		}},
		{name: "resources listed", in: "tenants:\n- {name: a, kubeconfig: k, resources: [ingresses]}\n", check: func(t *testing.T, c *Config) {
			if !c.Tenants[0].Syncs("ingresses") || c.Tenants[0].Syncs("poddisruptionbudgets") {
				t.Errorf("got %+v", c.Tenants[0])
			}
		}},
		{name: "unknown resource", in: "tenants:\n- {name: a, kubeconfig: k, resources: [deployments]}\n", wantErr: `resources: "deployments" is not one of`},
		{name: "export", in: "tenants:\n- {name: a, kubeconfig: k, exportServices: [{from: {namespace: default, name: web}, to: {namespace: shared, name: a-web}}]}\n",
			check: func(t *testing.T, c *Config) {
				if e := c.Tenants[0].ExportServices; len(e) != 1 || e[0].To.Name != "a-web" || e[0].From.Name != "web" {
					t.Errorf("got %+v", c.Tenants[0].ExportServices)
				}
			}},
		{name: "export bad name", in: "tenants:\n- {name: a, kubeconfig: k, exportServices: [{from: {namespace: default, name: Web}, to: {namespace: shared, name: w}}]}\n", wantErr: "exportServices[0].from.name"},
		{name: "export into a tenant namespace", in: "tenants:\n- {name: a, kubeconfig: k, exportServices: [{from: {namespace: default, name: web}, to: {namespace: kplex-b, name: w}}]}\n", wantErr: "cannot receive exports"},
		{name: "export twice", in: "tenants:\n- {name: a, kubeconfig: k, exportServices: [{from: {namespace: default, name: web}, to: {namespace: s, name: w}}, {from: {namespace: default, name: db}, to: {namespace: s, name: w}}]}\n", wantErr: "exported twice"},
		{name: "import", in: "tenants:\n- {name: a, kubeconfig: k, importServices: [{from: {namespace: db, name: pg}, to: {namespace: default, name: pg}}]}\n",
			check: func(t *testing.T, c *Config) {
				if i := c.Tenants[0].ImportServices; len(i) != 1 || i[0].From.Namespace != "db" || i[0].To.Name != "pg" {
					t.Errorf("got %+v", c.Tenants[0].ImportServices)
				}
			}},
		{name: "import bad namespace", in: "tenants:\n- {name: a, kubeconfig: k, importServices: [{from: {namespace: DB, name: pg}, to: {namespace: default, name: pg}}]}\n", wantErr: "importServices[0].from.namespace"},
		{name: "import twice", in: "tenants:\n- {name: a, kubeconfig: k, importServices: [{from: {namespace: db, name: pg}, to: {namespace: default, name: pg}}, {from: {namespace: db, name: my}, to: {namespace: default, name: pg}}]}\n", wantErr: "imported twice"},
		{name: "unknown field", in: "tenants:\n- {name: a, kubeconfig: k, podSecurityLevel: baseline}\n", wantErr: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in), "/etc/kplex")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestSplitEndpoint(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
		bad  bool
	}{
		{"127.0.0.1:27443", "127.0.0.1", 27443, false},
		{"https://10.0.0.1:6443", "10.0.0.1", 6443, false},
		{"https://api.example", "api.example", 443, false},
		{"host", "", 0, true},
		{"host:0", "", 0, true},
		{"host:http", "", 0, true},
	}
	for _, tt := range tests {
		h, p, err := SplitEndpoint(tt.in)
		if (err != nil) != tt.bad || h != tt.host || p != tt.port {
			t.Errorf("SplitEndpoint(%q) = %q, %d, %v", tt.in, h, p, err)
		}
	}
}

func TestLoadAll(t *testing.T) {
	dir := t.TempDir()
	d := dir + "/tenants.d"
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(dir+"/tenants.yaml", "tenants:\n- {name: a, kubeconfig: a.kc}\n")
	write(d+"/b.yaml", "tenants:\n- {name: b, kubeconfig: b.kubeconfig}\n")
	write(d+"/c.yaml", "tenants:\n- {name: Bad, kubeconfig: k}\n")
	write(d+"/dup.yaml", "tenants:\n- {name: a, kubeconfig: k}\n")
	write(d+"/ignored.txt", "not a registry")
	c, err := LoadAll([]string{dir + "/tenants.yaml", d})
	if c == nil {
		t.Fatalf("nothing loaded: %v", err)
	}
	var names []string
	for _, tn := range c.Tenants {
		names = append(names, tn.Name)
	}
	if strings.Join(names, ",") != "a,b" {
		t.Errorf("tenants %v, want a,b", names)
	}
	if c.Tenants[1].Kubeconfig != d+"/b.kubeconfig" {
		t.Errorf("kubeconfig %q not resolved against its file's directory", c.Tenants[1].Kubeconfig)
	}
	if err == nil || !strings.Contains(err.Error(), "c.yaml") || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("err = %v, want the bad file and the duplicate named", err)
	}
	if _, err := LoadAll([]string{dir + "/missing"}); err == nil {
		t.Error("a missing registry path loaded")
	}
}
