package tenantbackend_test

import (
	"context"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// A usage count on PostgreSQL or MySQL holds a write that took a lower id
// and commits after a higher one: its first page reads at a settled
// revision (backend/settle.go). It read at the highest id, without that
// write, and then dropped the write's own count as one at or below its
// revision: the tenant was a key short until the next recount.
func TestAUsageCountHoldsARowCommittedIntoAGap(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, cfg backend.Config) {
		if cfg.Kind != "postgres" && cfg.Kind != "mysql" {
			t.Skipf("SKIPPED: %s shows rows in id order", cfg.Kind)
		}
		inner := proxytest.OpenBackend(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		alpha := tenantOn(t, inner, "gapcount", tenantconfig.Limits{})
		if _, err := alpha.Create(ctx, "/registry/a", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		tx := proxytest.HoldRow(t, ctx, cfg, "/kplex/gapcount//registry/held")
		if _, err := alpha.Create(ctx, "/registry/b", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		type counted struct {
			keys int64
			err  error
		}
		done := make(chan counted, 1)
		go func() {
			keys, _, _, err := alpha.Scan(ctx, func(context.Context, int64, int) error { return nil })
			done <- counted{keys, err}
		}()
		time.Sleep(200 * time.Millisecond)
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit the held row: %v", err)
		}
		got := <-done
		if got.err != nil || got.keys != 3 {
			t.Fatalf("usage count: %d keys, %v; want 3 (a, the held row, b)", got.keys, got.err)
		}
	})
}
