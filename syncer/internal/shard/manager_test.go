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
