package process

import (
	"context"
	"testing"
	"time"
)

func TestPortsReservedOnceAndDistinct(t *testing.T) {
	r := &Runtime{Dir: t.TempDir()}
	ctx := context.Background()
	a1, err := r.Endpoint(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := r.Endpoint(ctx, "a")
	if a1 != a2 {
		t.Fatalf("endpoint moved: %s then %s", a1, a2)
	}
	// A new runtime (an operator restart) finds the same reservation.
	again, _ := (&Runtime{Dir: r.Dir}).Endpoint(ctx, "a")
	if again != a1 {
		t.Fatalf("after restart %s, want %s", again, a1)
	}
	pa, _ := r.ports("a")
	pb, err := r.ports("b")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range []int{pa.APIServer, pa.Controller, pa.Scheduler, pb.APIServer, pb.Controller, pb.Scheduler} {
		if seen[p] {
			t.Fatalf("port %d reserved twice: %+v %+v", p, pa, pb)
		}
		seen[p] = true
	}
}

func TestAdmit(t *testing.T) {
	r := &Runtime{MaxStarting: 2}
	steps := []struct {
		op     string // "admit" or "done"
		tenant string
		want   bool
	}{
		{"admit", "a", true},
		{"admit", "b", true},
		{"admit", "c", false}, // two are starting
		{"admit", "a", true},  // a holds its slot
		{"done", "a", true},
		{"admit", "c", true},
		{"admit", "d", false},
	}
	for i, s := range steps {
		switch s.op {
		case "admit":
			if got := r.admit(s.tenant); got != s.want {
				t.Fatalf("step %d: admit(%s) = %v, want %v", i, s.tenant, got, s.want)
			}
		case "done":
			r.done(s.tenant)
		}
	}
	// A slot held past the start timeout is taken back.
	r.starting["b"] = time.Now().Add(-2 * startTimeout)
	if !r.admit("d") {
		t.Fatal("a stale start slot was not reclaimed")
	}
	if (&Runtime{}).admit("x") != true {
		t.Fatal("no bound must admit everyone")
	}
}
