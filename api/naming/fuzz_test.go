package naming

import "testing"

// FuzzHostNameInjective: two distinct (tenant, namespace, name) never land
// on the same (host namespace, host name), every host name fits a DNS
// label's length, and short forms decode back to their input.
func FuzzHostNameInjective(f *testing.F) {
	f.Add("a", "b-x-c", "a", "b", "c", "a-x-b")
	f.Add("t", "default", "web", "t", "", "web-default-7")
	f.Add("t", "ns", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "t", "ns", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab")
	f.Fuzz(func(t *testing.T, t1, ns1, n1, t2, ns2, n2 string) {
		for _, s := range []string{t1, ns1, n1, t2, ns2, n2} {
			if len(s) > 253 {
				return
			}
		}
		h1, h2 := HostName(ns1, n1), HostName(ns2, n2)
		for _, h := range []string{h1, h2} {
			if len(h) > MaxNameLength {
				t.Fatalf("host name %q is %d characters", h, len(h))
			}
		}
		if ns, n, ok := ParseHostName(h1); ok && (ns != ns1 || n != n1) {
			t.Fatalf("HostName(%q, %q) = %q parses back as (%q, %q)", ns1, n1, h1, ns, n)
		}
		same := t1 == t2 && ns1 == ns2 && n1 == n2
		if !same && HostNamespace(t1) == HostNamespace(t2) && h1 == h2 {
			t.Fatalf("(%q,%q,%q) and (%q,%q,%q) both map to %s/%s", t1, ns1, n1, t2, ns2, n2, HostNamespace(t1), h1)
		}
	})
}
