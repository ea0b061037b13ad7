package backend

import "testing"

func TestPostgresStartKey(t *testing.T) {
	for _, tc := range []struct{ start, want string }{
		{"/kplex/a/registry/pods/ns/p", "/kplex/a/registry/pods/ns/p"},
		{"/kplex/a/registry/pods/ns/p\x00", "/kplex/a/registry/pods/ns/p\x01"}, // kube-apiserver's continue
		{"/kplex/a/k\x00\x00", "/kplex/a/k\x01"},
		{"/kplex/a/k\x00rest", "/kplex/a/k\x01"},
		{"/kplex/a/k\x01", "/kplex/a/k\x01"},
		{"", ""},
	} {
		if got := postgresStartKey(tc.start); got != tc.want {
			t.Errorf("postgresStartKey(%q) = %q, want %q", tc.start, got, tc.want)
		}
	}
}
