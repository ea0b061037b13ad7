package ownership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"kplex.dev/syncer/internal/natsbus"
)

func TestOwnerMovesOnlyWhatMust(t *testing.T) {
	tenants := make([]string, 200)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tenant-%d", i)
	}
	three := []string{"a", "b", "c"}
	four := []string{"a", "b", "c", "d"}
	counts := map[string]int{}
	moved := 0
	for _, tn := range tenants {
		before, after := Owner(tn, three), Owner(tn, four)
		if Owner(tn, []string{"c", "a", "b"}) != before {
			t.Fatalf("owner of %s depends on the order of shards", tn)
		}
		if before != after {
			moved++
			if after != "d" {
				t.Fatalf("%s moved from %s to %s when d joined; only moves to d are allowed", tn, before, after)
			}
		}
		counts[after]++
	}
	// About a quarter moves; each shard gets a fair share.
	if moved < 30 || moved > 70 {
		t.Errorf("%d of 200 tenants moved, want about 50", moved)
	}
	for s, n := range counts {
		if n < 30 || n > 70 {
			t.Errorf("shard %s owns %d of 200, want about 50", s, n)
		}
	}
	if Owner("x", nil) != "" {
		t.Error("no live shard must give no owner")
	}
}

// TestLeaseTakeoverAndFence runs two shards on a real (in-process) NATS
// server: a live holder keeps its tenant; once it stops heartbeating the
// other takes over, and the old lease turns invalid and fences writes.
func TestLeaseTakeoverAndFence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := natsbus.Open(ctx, natsbus.Config{StoreDir: t.TempDir(), Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const ttl = 600 * time.Millisecond
	a, err := New(ctx, b.JetStream(), "a", ttl, log)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := New(ctx, b.JetStream(), "b", ttl, log)
	if err != nil {
		t.Fatal(err)
	}
	actx, stopA := context.WithCancel(ctx)
	go func() { _ = a.Run(actx) }()
	go func() { _ = bb.Run(ctx) }()
	waitFor(t, 5*time.Second, "both shards live", func() bool { return len(a.Live()) == 2 && len(bb.Live()) == 2 && a.Settled() && bb.Settled() })

	la, err := a.TryAcquire(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if !la.Valid() {
		t.Fatal("a fresh lease is not valid")
	}
	if _, err := bb.TryAcquire(ctx, "demo"); !errors.Is(err, ErrHeld) {
		t.Fatalf("b acquired a tenant a live shard holds: %v", err)
	}

	// a goes silent (as if frozen: its lease keeper still runs here, the
	// takeover must fence it anyway).
	stopA()
	waitFor(t, 5*time.Second, "b sees a gone", func() bool { return len(bb.Live()) == 1 })
	lb, err := bb.TryAcquire(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if lb.Epoch() <= la.Epoch() {
		t.Fatalf("takeover epoch %d not after %d", lb.Epoch(), la.Epoch())
	}
	waitFor(t, 5*time.Second, "a's lease lost", func() bool {
		select {
		case <-la.Lost():
			return true
		default:
			return false
		}
	})
	if la.Valid() {
		t.Fatal("the old lease is still valid after the takeover")
	}
	sent := 0
	rt := la.Fence(roundTripFunc(func(*http.Request) (*http.Response, error) {
		sent++
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}), nil)
	req, _ := http.NewRequest(http.MethodPost, "http://host/api/v1/namespaces/x/pods", nil)
	if _, err := rt.RoundTrip(req); !errors.Is(err, ErrFenced) || sent != 0 {
		t.Fatalf("a write on the old lease: err %v, sent %d", err, sent)
	}
	get, _ := http.NewRequest(http.MethodGet, "http://host/api/v1/pods", nil)
	if _, err := rt.RoundTrip(get); err != nil || sent != 1 {
		t.Fatalf("reads are not fenced: err %v, sent %d", err, sent)
	}
	if !lb.Valid() {
		t.Fatal("the new lease is not valid")
	}
	// Release frees the tenant at once.
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if lb.Valid() {
		t.Fatal("a released lease is valid")
	}
	if _, err := bb.TryAcquire(ctx, "demo"); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within %s", what, d)
}
