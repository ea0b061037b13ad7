package backend

import "testing"

func TestTextBound(t *testing.T) {
	for _, tc := range []struct{ start, want string }{
		{"/kplex/a/registry/pods/ns/p", "/kplex/a/registry/pods/ns/p"},
		{"/kplex/a/registry/pods/ns/p\x00", "/kplex/a/registry/pods/ns/p\x01"}, // kube-apiserver's continue
		{"/kplex/a/k\x00\x00", "/kplex/a/k\x01"},
		{"/kplex/a/k\x00rest", "/kplex/a/k\x01"},
		{"/kplex/a/k\x01", "/kplex/a/k\x01"},
		{"", ""},
		{"\x00", "\x01"},
	} {
		if got := textBound(tc.start); got != tc.want {
			t.Errorf("textBound(%q) = %q, want %q", tc.start, got, tc.want)
		}
	}
}
