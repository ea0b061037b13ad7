package backend

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSQLitePath(t *testing.T) {
	tests := []struct{ endpoint, want string }{
		{"sqlite:///data/state.db?" + sqliteParams, "/data/state.db"},
		{"sqlite://state.db", "state.db"},
		{"sqlite://./db/state.db?_journal=WAL", "./db/state.db"},
	}
	for _, tt := range tests {
		if got := sqlitePath(tt.endpoint); got != tt.want {
			t.Errorf("sqlitePath(%q) = %q, want %q", tt.endpoint, got, tt.want)
		}
	}
}

// The proxy copies SQLite's log into the database itself, in the
// background (checkpoint.go): after a burst of writes its checkpoints
// have copied pages.
func TestSQLiteCheckpointsInTheBackground(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	reg := prometheus.NewRegistry()
	b, _, err := Open(ctx, &wg, Config{Kind: "sqlite", DataDir: t.TempDir(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1024)
	for i := range 500 {
		if _, err := b.Create(ctx, fmt.Sprintf("/registry/k/%d", i), value, 0); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := checkpoints(reg)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no background checkpoint copied pages within 5s of 500 writes")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkpoints(reg *prometheus.Registry) (uint64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == "kplex_datastore_proxy_sqlite_checkpoint_duration_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount(), nil
		}
	}
	return 0, fmt.Errorf("metric kplex_datastore_proxy_sqlite_checkpoint_duration_seconds is not registered")
}
