package backend_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A list at the latest revision holds a write that took a lower id and
// commits after a higher one: it waits for the id to settle, then reads at
// the highest id. (It answered at once without that write, at a revision
// above it, so a watch from the list's revision never saw it either: a
// reflector lost the change until its next relist.)
func TestAListHoldsARowCommittedIntoAGap(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, c backend.Config) {
		skipInIDOrder(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b := proxytest.OpenBackend(t, c)
		if _, err := b.Create(ctx, "/l/0", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		tx := proxytest.HoldRow(t, ctx, c, "/l/1") // takes the next id, commits later
		after, err := b.Create(ctx, "/l/2", []byte("v"), 0)
		if err != nil {
			t.Fatal(err)
		}

		type listed struct {
			rev  int64
			keys []string
			err  error
		}
		done := make(chan listed, 1)
		go func() {
			rev, kvs, err := b.List(ctx, "/l/", "/l0", 0, 0, false)
			var keys []string
			for _, kv := range kvs {
				keys = append(keys, kv.Key)
			}
			done <- listed{rev, keys, err}
		}()
		time.Sleep(200 * time.Millisecond)
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit the held row: %v", err)
		}
		got := <-done
		if got.err != nil {
			t.Fatal(got.err)
		}
		if want := []string{"/l/0", "/l/1", "/l/2"}; !slices.Equal(got.keys, want) || got.rev < after {
			t.Fatalf("list at revision %d: %v; want %v at revision %d or later (the held row committed into the gap below %d)", got.rev, got.keys, want, after, after)
		}
	})
}
