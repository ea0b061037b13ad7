package registry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSyncerRegisterUnregister(t *testing.T) {
	ctx := context.Background()
	s := Syncer{Dir: filepath.Join(t.TempDir(), "tenants.d")}
	wrote, err := s.Register(ctx, SyncerTenant{Name: "a", PodSecurity: "restricted"}, []byte("kc"), nil)
	if err != nil || !wrote {
		t.Fatalf("register: wrote=%v err=%v", wrote, err)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: a", "kubeconfig: a.kubeconfig", "podSecurity: restricted"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("registration lacks %q:\n%s", want, b)
		}
	}
	if st, _ := os.Stat(filepath.Join(s.Dir, "a.kubeconfig")); st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", st.Mode().Perm())
	}
	if wrote, err := s.Register(ctx, SyncerTenant{Name: "a", PodSecurity: "restricted"}, []byte("kc"), nil); err != nil || wrote {
		t.Errorf("unchanged registration rewritten: wrote=%v err=%v", wrote, err)
	}
	if err := s.Unregister(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unregister(ctx, "a"); err != nil {
		t.Fatalf("second unregister: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(s.Dir, "*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestSyncerRegisterPrivateHost(t *testing.T) {
	ctx := context.Background()
	s := Syncer{Dir: t.TempDir()}
	if _, err := s.Register(ctx, SyncerTenant{Name: "p"}, []byte("kc"), []byte("other cluster")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(s.Dir, "p.yaml"))
	if !strings.Contains(string(b), "hostKubeconfig: p.host.kubeconfig") {
		t.Errorf("registration lacks the private host:\n%s", b)
	}
	if st, err := os.Stat(filepath.Join(s.Dir, "p.host.kubeconfig")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("host kubeconfig: %v, %v", st, err)
	}
	// Pause unregisters; deletion still needs the private cluster.
	if err := s.Unregister(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if kc, err := s.HostKubeconfig(ctx, "p"); err != nil || string(kc) != "other cluster" {
		t.Errorf("host kubeconfig after unregister: %q, %v", kc, err)
	}
	if err := s.RemoveHostKubeconfig(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveHostKubeconfig(ctx, "p"); err != nil {
		t.Fatalf("second removal: %v", err)
	}
	if _, err := s.HostKubeconfig(ctx, "p"); err == nil {
		t.Error("host kubeconfig still there")
	}
	if left, _ := filepath.Glob(filepath.Join(s.Dir, "*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestQuotas(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "limits.yaml")
	q := &Quotas{Path: path, Defaults: Limits{RequestsPerSecond: 500}}
	if err := q.Set(ctx, "a", Limits{MaxKeys: 10, MaxWatches: 300}); err != nil {
		t.Fatal(err)
	}
	if err := q.Set(ctx, "b", Limits{}); err != nil {
		t.Fatal(err)
	}
	// A new operator process starts from what the file holds.
	q2 := &Quotas{Path: path, Defaults: Limits{RequestsPerSecond: 500}}
	if err := q2.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	if !strings.Contains(got, "maxKeys: 10") || !strings.Contains(got, "maxWatches: 300") || strings.Contains(got, "b:") || !strings.Contains(got, "requestsPerSecond: 500") {
		t.Errorf("limits file:\n%s", got)
	}
	if err := os.WriteFile(path, []byte("tenants: [broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (&Quotas{Path: path}).Set(ctx, "c", Limits{}); err == nil {
		t.Error("a damaged limits file was overwritten")
	}
}

// Limits a failed write did not store are written by the next call, even
// when they did not change since.
func TestQuotasWriteAgainAfterAFailure(t *testing.T) {
	ctx := context.Background()
	blocker := filepath.Join(t.TempDir(), "datastore")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil { // a file where the directory goes
		t.Fatal(err)
	}
	q := &Quotas{Path: filepath.Join(blocker, "limits.yaml")}
	if err := q.Set(ctx, "a", Limits{MaxKeys: 7}); err == nil {
		t.Fatal("a write under a file succeeded")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := q.Set(ctx, "a", Limits{MaxKeys: 7}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(q.Path); err != nil || !strings.Contains(string(b), "maxKeys: 7") {
		t.Fatalf("limits file after the retry: %q, %v", b, err)
	}
}
