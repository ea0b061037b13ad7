package tenantconfig

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		tenant            string
		want              Limits
	}{
		{"defaults inherited", "defaults: {maxKeys: 10, burst: 5}\ntenants:\n  a: {maxBytes: 100}\n", "", "a", Limits{MaxKeys: 10, MaxBytes: 100, Burst: 5}},
		{"override", "defaults: {maxKeys: 10}\ntenants:\n  a: {maxKeys: 3}\n", "", "a", Limits{MaxKeys: 3}},
		{"unknown tenant gets defaults", "defaults: {requestsPerSecond: 50}\n", "", "zzz", Limits{RequestsPerSecond: 50}},
		{"json", `{"defaults":{"maxKeys":7}}`, "", "x", Limits{MaxKeys: 7}},
		{"negative", "defaults: {maxKeys: -1}\n", "defaults.maxKeys -1", "", Limits{}},
		{"negative tenant", "tenants:\n  a: {burst: -2}\n", "tenants.a.burst", "", Limits{}},
		{"watches inherited", "defaults: {maxWatches: 500}\ntenants:\n  a: {maxKeys: 1}\n", "", "a", Limits{MaxKeys: 1, MaxWatches: 500}},
		{"watches override", "defaults: {maxWatches: 500}\ntenants:\n  a: {maxWatches: 20}\n", "", "a", Limits{MaxWatches: 20}},
		{"negative watches", "tenants:\n  a: {maxWatches: -1}\n", "tenants.a.maxWatches -1", "", Limits{}},
		{"bad tenant name", "tenants:\n  Bad_Name: {maxKeys: 1}\n", "tenants.Bad_Name", "", Limits{}},
		{"unknown field", "defaults: {maxKey: 1}\n", "unknown field", "", Limits{}},
		{"not yaml", "defaults: [", "tenant config", "", Limits{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.For(tt.tenant); got != tt.want {
				t.Fatalf("For(%s) = %+v, want %+v", tt.tenant, got, tt.want)
			}
		})
	}
}

func TestWatchReloadsAndKeepsLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tenants:\n  a: {maxKeys: 1}\n")
	var s Store
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloads := make(chan error, 10)
	if err := s.Watch(ctx, path, 20*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)), func(err error) { reloads <- err }); err != nil {
		t.Fatal(err)
	}
	if s.For("a").MaxKeys != 1 {
		t.Fatalf("initial load: %+v", s.For("a"))
	}
	write("tenants:\n  a: {maxKeys: 2}\n")
	if err := <-reloads; err != nil || s.For("a").MaxKeys != 2 {
		t.Fatalf("reload: err %v, limits %+v", err, s.For("a"))
	}
	write("tenants:\n  a: {maxKeys: -5}\n")
	if err := <-reloads; err == nil || s.For("a").MaxKeys != 2 {
		t.Fatalf("bad file: err %v, limits %+v (want the last good config kept)", err, s.For("a"))
	}
}
