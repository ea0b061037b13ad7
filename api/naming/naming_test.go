package naming

import (
	"strings"
	"testing"
)

func TestHostName(t *testing.T) {
	long := strings.Repeat("a", 60)
	tests := []struct {
		name, ns, n string
		want        string
	}{
		{"simple", "default", "web", "web-default-7"},
		{"cluster scoped", "", "node-1", "node-1--0"},
		{"dashes where a separator would be", "b-x-c", "a", "a-b-x-c-5"},
		{"the same dashes the other way round", "c", "a-x-b", "a-x-b-c-1"},
		{"name looks like an encoding", "default", "web-default-7", "web-default-7-default-7"},
		{"dots in a pod name", "ns", "a.b.c", "a.b.c-ns-2"},
		{"exactly 63", strings.Repeat("n", 10), strings.Repeat("p", 49), strings.Repeat("p", 49) + "-" + strings.Repeat("n", 10) + "-10"},
		{"too long: hashed", "default", long, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HostName(tt.ns, tt.n)
			if len(got) > MaxNameLength {
				t.Fatalf("HostName = %q (%d chars)", got, len(got))
			}
			if tt.want != "" && got != tt.want {
				t.Fatalf("HostName(%q, %q) = %q, want %q", tt.ns, tt.n, got, tt.want)
			}
			ns, n, ok := ParseHostName(got)
			if tt.want != "" && (!ok || ns != tt.ns || n != tt.n) {
				t.Fatalf("ParseHostName(%q) = %q, %q, %v", got, ns, n, ok)
			}
			if tt.want == "" {
				if ok {
					t.Fatalf("hash form %q parsed as a short form (%q, %q)", got, ns, n)
				}
				if got != HostName(tt.ns, tt.n) {
					t.Fatal("not deterministic")
				}
				if !strings.HasPrefix(got, "aaaa") {
					t.Fatalf("hash form %q lost its readable prefix", got)
				}
			}
		})
	}
}

func TestParseHostNameRejects(t *testing.T) {
	for _, s := range []string{"", "web", "web-default", "web-default-x", "web-default-07", "web-default-99", "a-h3kf7", "web-default--1"} {
		if ns, n, ok := ParseHostName(s); ok {
			t.Errorf("ParseHostName(%q) = %q, %q, true", s, ns, n)
		}
	}
}

func TestTenantMetadataDropsKplexKeys(t *testing.T) {
	in := map[string]string{
		"app":                     "web",
		"kplex.dev/tenant":        "victim",
		"KPLEX.DEV/name":          "forged",
		"sync.kplex.dev/anything": "x",
		"notkplex.dev/ok":         "kept",
		"kplex.dev.evil.com/ok":   "kept",
		"example.com/kplex.dev":   "kept",
	}
	got := TenantMetadata(in)
	want := map[string]string{"app": "web", "notkplex.dev/ok": "kept", "kplex.dev.evil.com/ok": "kept", "example.com/kplex.dev": "kept"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// TestForgedIdentityIsOverwritten: a tenant's own kplex.dev keys never
// survive into the host object, so it cannot claim another tenant's or
// another object's identity.
func TestForgedIdentityIsOverwritten(t *testing.T) {
	forgedLabels := map[string]string{LabelManaged: "false", LabelTenant: "victim", "app": "x"}
	forgedAnn := map[string]string{AnnotationTenant: "victim", AnnotationName: "their-pod", AnnotationNamespace: "kube-system"}
	id := Identity{Tenant: "attacker", Namespace: "default", Name: "mine"}
	labels, ann := HostLabels(id.Tenant, forgedLabels), HostAnnotations(id, forgedAnn)
	if labels["app"] != "x" {
		t.Fatalf("the tenant's own label was lost: %v", labels)
	}
	got, ok := IdentityOf(labels, ann)
	if !ok || got != id {
		t.Fatalf("IdentityOf = %v, %v; want %v", got, ok, id)
	}
	if _, ok := IdentityOf(map[string]string{LabelTenant: "a"}, map[string]string{AnnotationTenant: "a", AnnotationName: "x"}); ok {
		t.Fatal("an object without kplex's managed label was trusted")
	}
	if _, ok := IdentityOf(map[string]string{LabelManaged: "true", LabelTenant: "b"}, map[string]string{AnnotationTenant: "a", AnnotationName: "x"}); ok {
		t.Fatal("label and annotation tenants disagree, yet trusted")
	}
}

func TestHostNamespace(t *testing.T) {
	if got := HostNamespace("demo"); got != "kplex-demo" {
		t.Fatalf("HostNamespace = %q", got)
	}
	if tn, ok := TenantOfHostNamespace("kplex-demo"); !ok || tn != "demo" {
		t.Fatalf("TenantOfHostNamespace = %q, %v", tn, ok)
	}
	for _, s := range []string{"default", "kplex-", "kube-system"} {
		if _, ok := TenantOfHostNamespace(s); ok {
			t.Errorf("%q taken for a tenant namespace", s)
		}
	}
}
