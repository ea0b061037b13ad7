package keyspace

import (
	"strings"
	"testing"
)

func TestValidTenant(t *testing.T) {
	for _, ok := range []string{"a", "demo", "team-1", strings.Repeat("a", 63)} {
		if err := ValidTenant(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "Demo", "a/b", "a.b", "a\x00", "..", strings.Repeat("a", 64), "ü"} {
		if ValidTenant(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRange(t *testing.T) {
	s, err := ForTenant("demo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key, end   string
		wantKey, wantEnd string
	}{
		{"single key", "/registry/pods/a", "", "/kplex/demo//registry/pods/a", ""},
		{"prefix", "/registry/pods/", "/registry/pods0", "/kplex/demo//registry/pods/", "/kplex/demo//registry/pods0"},
		{"from key to the end", "/registry/", "\x00", "/kplex/demo//registry/", "/kplex/demo0"},
		{"everything", "", "", "/kplex/demo/", "/kplex/demo0"},
		{"empty key to the end", "", "\x00", "/kplex/demo/", "/kplex/demo0"},
		{"end above every byte", "a", "\xff\xff", "/kplex/demo/a", "/kplex/demo/\xff\xff"},
		{"key without slash", "compact_rev_key", "", "/kplex/demo/compact_rev_key", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, e := s.Range(tt.key, tt.end)
			if k != tt.wantKey || e != tt.wantEnd {
				t.Fatalf("Range(%q, %q) = %q, %q; want %q, %q", tt.key, tt.end, k, e, tt.wantKey, tt.wantEnd)
			}
		})
	}
}

func TestStripRejectsNeighbours(t *testing.T) {
	demo, _ := ForTenant("demo")
	for _, foreign := range []string{"/kplex/demo2/x", "/kplex/dem/x", "/kplex/demo", "/kplex/", "/registry/pods/x", "", "/kplex/demo0"} {
		if k, ok := demo.Strip(foreign); ok {
			t.Errorf("Strip(%q) = %q, true: a foreign key passed", foreign, k)
		}
	}
	if k, ok := demo.Strip("/kplex/demo/x"); !ok || k != "x" {
		t.Errorf("Strip of own key = %q, %v", k, ok)
	}
}
