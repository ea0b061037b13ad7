package keyspace

import "testing"

// FuzzRange: whatever key and end a tenant sends, the stored range lies
// inside its own space, so it cannot touch any key of another tenant, and
// a key of another tenant never strips to a key of this one.
func FuzzRange(f *testing.F) {
	for _, seed := range [][2]string{{"", ""}, {"", "\x00"}, {"\x00", "\x00"}, {"a", "\xff"}, {"/", "0"}, {"z", "a"}, {"/registry/", "/registry0"}} {
		f.Add(seed[0], seed[1], "other")
	}
	demo, err := ForTenant("demo")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key, end, otherTenant string) {
		k, e := demo.Range(key, end)
		if !demo.Contains(k) {
			t.Fatalf("Range(%q, %q) start %q outside %q", key, end, k, demo.Prefix())
		}
		if e != "" && (e > demo.End() || !(demo.Contains(e) || e == demo.End())) {
			t.Fatalf("Range(%q, %q) end %q beyond %q", key, end, e, demo.End())
		}
		other, err := ForTenant(otherTenant)
		if err != nil || other.Tenant() == demo.Tenant() {
			return
		}
		// Any key of the other tenant sorts outside demo's range...
		ok := other.Key(key)
		if ok >= k && (e == "" && ok == k || e != "" && ok < e) {
			t.Fatalf("tenant %q key %q inside demo's range [%q, %q)", otherTenant, ok, k, e)
		}
		// ...and is never taken for one of demo's keys.
		if _, in := demo.Strip(ok); in {
			t.Fatalf("tenant %q key %q strips as demo's", otherTenant, ok)
		}
	})
}
