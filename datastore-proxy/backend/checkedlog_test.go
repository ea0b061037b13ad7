package backend

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The proxy's own reads of kine's log (the read over a deletion in
// Create) go through the checked log as kine's do, and a read whose
// context ends part way is its context's error, with its status, not a
// database that cut its answer short: a list its client canceled was
// counted Unavailable, and a catch-up the watch itself ended was not
// taken for canceled.
func TestTheCheckedLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	b, _, err := Open(ctx, &wg, Config{Kind: "sqlite", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sb := b.(*sqlBackend)
	if _, ok := sb.log.(*checkedLog); !ok {
		t.Fatalf("the proxy reads kine's log through a %T, not the checked log", sb.log)
	}
	for _, k := range []string{"/t/a", "/t/b", "/t/c"} {
		if _, err := b.Create(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	rctx, stop := context.WithCancel(ctx)
	rows, err := sb.dialect.ListCurrent(rctx, "/t/", "/t0", 0, false, false)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	time.Sleep(50 * time.Millisecond) // database/sql closes rows when their context ends
	_, _, err = rowsToEvents(rows, true, false)
	if !errors.Is(err, context.Canceled) || status.Code(err) != codes.Canceled {
		t.Fatalf("a read whose context ended: err %v (code %v), want context.Canceled with code Canceled", err, status.Code(err))
	}
}
