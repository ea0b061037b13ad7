package shard

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// A changed registry applies only when read twice: a file caught
// half-written never stops the tenants it lacks.
func TestReloadNeedsTwoReadsOfAChange(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tenants.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &Manager{TenantsFiles: []string{file}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	names := func() []string {
		var out []string
		for n := range m.registry {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	const both = "tenants:\n- {name: a, kubeconfig: k}\n- {name: b, kubeconfig: k}\n"
	steps := []struct {
		file string // "" keeps the file as it is
		want []string
	}{
		{both, []string{"a", "b"}},                                     // the first read applies at once
		{"tenants:\n- {name: a, kubeconfig: k}\n", []string{"a", "b"}}, // caught half-written: not yet
		{both, []string{"a", "b"}},                                     // the writer finished: nothing changed
		{"tenants:\n- {name: b, kubeconfig: k}\n", []string{"a", "b"}}, // a real change, read once
		{"", []string{"b"}},                                            // read again: applied
		{"", []string{"b"}},
	}
	for i, st := range steps {
		if st.file != "" {
			write(st.file)
		}
		m.reload()
		if got := names(); !slices.Equal(got, st.want) {
			t.Fatalf("step %d: tenants %v, want %v", i, got, st.want)
		}
	}
}

// A rotated kubeconfig (same registration, new file content) changes the
// tenant's credentials fingerprint, which restarts it.
func TestReloadNoticesRotatedCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("tenants.yaml", "tenants:\n- {name: a, kubeconfig: a.kubeconfig, hostKubeconfig: a.host.kubeconfig}\n- {name: b, kubeconfig: b.kubeconfig}\n")
	write("a.kubeconfig", "cert 1")
	write("a.host.kubeconfig", "host 1")
	write("b.kubeconfig", "cert 1")
	m := &Manager{TenantsFiles: []string{filepath.Join(dir, "tenants.yaml")}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	m.reload()
	a, b := m.credsOf("a"), m.credsOf("b")
	if a == "" || b == "" {
		t.Fatal("no fingerprint")
	}
	for i, st := range []struct {
		file, body string
		aChanges   bool
	}{
		{"a.kubeconfig", "cert 1", false},
		{"a.kubeconfig", "cert 2", true},
		{"a.host.kubeconfig", "host 2", true},
	} {
		write(st.file, st.body)
		m.reload()
		if got := m.credsOf("a"); (got != a) != st.aChanges {
			t.Errorf("step %d: fingerprint changed = %v, want %v", i, got != a, st.aChanges)
		}
		a = m.credsOf("a")
		if m.credsOf("b") != b {
			t.Errorf("step %d: b's fingerprint changed", i)
		}
	}
}
