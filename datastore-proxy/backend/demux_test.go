package backend

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"
)

// TestDemuxPrefixWatches runs the shared watch over a real SQLite kine:
// a prefix watch sees only its prefix's events, from now or from a recent
// revision (caught up from memory), and one from before the ring is still
// served (by kine's own history).
func TestDemuxPrefixWatches(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	b, _, err := Open(ctx, &wg, Config{Kind: "sqlite", DataDir: t.TempDir(), CompactInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := b.(*demux)
	if !ok {
		t.Fatalf("Open returned %T, want the demux", b)
	}
	put := func(key string) int64 {
		t.Helper()
		rev, err := d.Create(ctx, key, []byte("v"), 0)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	early := put("/kplex/a/early") // before the shared watch starts: older than the ring

	live := d.WatchPrefix(ctx, "/kplex/a/", 0)
	first := put("/kplex/a/1")
	put("/kplex/b/1")
	put("/kplex/a/2")
	if got := keys(t, live.Eventc, 2); fmt.Sprint(got) != "[/kplex/a/1 /kplex/a/2]" {
		t.Errorf("live watch of a: %v", got)
	}

	recent := d.WatchPrefix(ctx, "/kplex/a/", first)
	if got := keys(t, recent.Eventc, 2); fmt.Sprint(got) != "[/kplex/a/1 /kplex/a/2]" {
		t.Errorf("watch of a from revision %d: %v", first, got)
	}
	other := d.WatchPrefix(ctx, "/kplex/b/", first)
	if got := keys(t, other.Eventc, 1); fmt.Sprint(got) != "[/kplex/b/1]" {
		t.Errorf("watch of b from revision %d: %v", first, got)
	}

	// From before the ring: kine's history, every key (the tenant layer
	// filters), the early key first.
	old := d.WatchPrefix(ctx, "/kplex/a/", early)
	if got := keys(t, old.Eventc, 1); got[0] != "/kplex/a/early" {
		t.Errorf("watch from revision %d: %v", early, got)
	}

	// A cancelled watch is closed and gets nothing more.
	wctx, wcancel := context.WithCancel(ctx)
	gone := d.WatchPrefix(wctx, "/kplex/a/", 0)
	<-gone.Eventc // the initial batch
	wcancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, open := <-gone.Eventc:
			if !open {
				return
			}
		case <-deadline:
			t.Fatal("a cancelled watch was not closed")
		}
	}
}

// keys reads batches until n events arrived and returns their keys.
func keys(t *testing.T, c <-chan server.EventBatch, n int) []string {
	t.Helper()
	var out []string
	timeout := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case b, ok := <-c:
			if !ok {
				t.Fatalf("watch closed after %v", out)
			}
			for _, ev := range b.Events {
				out = append(out, ev.KV.Key)
			}
		case <-timeout:
			t.Fatalf("after 15 s only %v", out)
		}
	}
	return out
}
