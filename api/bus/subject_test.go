package bus

import (
	"strings"
	"testing"
)

func TestSubject(t *testing.T) {
	tests := []struct {
		key  Key
		want string
	}{
		{Key{"demo", "pods", "default", "web-1"}, "kplex.host.demo.pods.default.web-1"},
		{Key{"demo", "nodes", "", "kwok-node-0"}, "kplex.host.demo.nodes._.kwok-node-0"},
		{Key{"demo", "pods", "ns", "a.b"}, "kplex.host.demo.pods.ns.a%2Eb"},
		{Key{"demo", "pods", "ns", "50%*>x y"}, "kplex.host.demo.pods.ns.50%25%2A%3Ex%20y"},
		{Key{"demo", "pods", "ns", "_"}, "kplex.host.demo.pods.ns.%5F"},
		{Key{"demo", "pods", "ns", ""}, "kplex.host.demo.pods.ns.%"},
	}
	for _, tt := range tests {
		got := tt.key.Subject()
		if got != tt.want {
			t.Errorf("%+v.Subject() = %q, want %q", tt.key, got, tt.want)
		}
		back, err := ParseSubject(got)
		if err != nil || back != tt.key {
			t.Errorf("ParseSubject(%q) = %+v, %v; want %+v", got, back, err, tt.key)
		}
	}
	if f := TenantFilter("demo"); f != "kplex.host.demo.>" {
		t.Errorf("TenantFilter = %q", f)
	}
}

func TestParseSubjectRejects(t *testing.T) {
	for _, s := range []string{"", "kplex.host", "other.demo.pods.ns.n", "kplex.host.demo.pods.ns", "kplex.host.demo.pods.ns.n.extra", "kplex.host.demo.pods.ns.a%2", "kplex.host.demo.pods.ns.a%zz", "kplex.host.demo.pods.ns.a%2e", "kplex.host.demo.pods.ns.a*b"} {
		if k, err := ParseSubject(s); err == nil {
			t.Errorf("ParseSubject(%q) = %+v, want an error", s, k)
		}
	}
}

// FuzzSubject: every key makes a subject of exactly six NATS tokens with
// no wildcard or separator inside a token, and parses back to itself.
func FuzzSubject(f *testing.F) {
	f.Add("demo", "pods", "default", "web-1")
	f.Add("t", "nodes", "", "a.b.c")
	f.Add("t", "r", "_", "%2E")
	f.Fuzz(func(t *testing.T, tenant, resource, ns, name string) {
		k := Key{tenant, resource, ns, name}
		s := k.Subject()
		toks := strings.Split(s, ".")
		if len(toks) != 6 {
			t.Fatalf("%q has %d tokens", s, len(toks))
		}
		for _, tok := range toks {
			if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
				t.Fatalf("bad token %q in %q", tok, s)
			}
		}
		back, err := ParseSubject(s)
		if err != nil || back != k {
			t.Fatalf("ParseSubject(%q) = %+v, %v; want %+v", s, back, err, k)
		}
	})
}
