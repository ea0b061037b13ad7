package tenantbackend_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// On a store whose watch streams the proxy serves itself, a watch from a
// past revision reads its history only once AdmitCatchUp lets it, and
// gives its admission back when the read is done; a watch from now reads
// no history and asks nothing. A catch-up refused admission ends its
// watch with the reason.
func TestAWatchFromThePastIsAdmittedBeforeItReadsHistory(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tb := tenantOn(t, proxytest.OpenBackend(t, c), "alpha", tenantconfig.Limits{})
		rev, err := tb.Create(ctx, "/registry/a", []byte("v"), 0)
		if err != nil {
			t.Fatal(err)
		}
		asked := make(chan struct{}, 10)
		gate := make(chan error)
		var released atomic.Int32
		tb.AdmitCatchUp = func(ctx context.Context) (func(), error) {
			asked <- struct{}{}
			select {
			case err := <-gate:
				if err != nil {
					return nil, err
				}
				return func() { released.Add(1) }, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ws, err := tb.WatchStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		resps := make(chan *etcdserverpb.WatchResponse, 10)
		go func() {
			for {
				r, err := ws.Recv()
				if err != nil {
					close(resps)
					return
				}
				resps <- r
			}
		}()
		create := func(id, start int64) {
			t.Helper()
			cr := &etcdserverpb.WatchCreateRequest{WatchId: id, StartRevision: start}
			ws.Confine(cr, "/registry/a", "")
			if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: cr}}); err != nil {
				t.Fatal(err)
			}
		}
		next := func(within time.Duration) *etcdserverpb.WatchResponse {
			t.Helper()
			select {
			case r, ok := <-resps:
				if !ok {
					t.Fatal("the watch stream ended")
				}
				return r
			case <-time.After(within):
				return nil
			}
		}

		create(1, 0)
		if r := next(5 * time.Second); r == nil || !r.Created || r.WatchId != 1 {
			t.Fatalf("a watch from now: %v; want it created at once", r)
		}
		if len(asked) != 0 {
			t.Fatal("a watch from now asked for admission; it reads no history")
		}

		create(2, rev)
		select {
		case <-asked:
		case <-time.After(5 * time.Second):
			t.Fatal("a watch from a past revision did not ask for admission")
		}
		if r := next(300 * time.Millisecond); r != nil {
			t.Fatalf("before its admission the watch from the past answered %v", r)
		}
		gate <- nil
		if r := next(5 * time.Second); r == nil || !r.Created || r.WatchId != 2 {
			t.Fatalf("admitted, the watch from the past answered %v; want created", r)
		}
		if r := next(5 * time.Second); r == nil || r.WatchId != 2 || len(r.Events) != 1 || string(r.Events[0].Kv.Key) != "/registry/a" {
			t.Fatalf("admitted, the watch from the past answered %v; want the put of /registry/a", r)
		}
		if got := released.Load(); got != 1 {
			t.Fatalf("admission given back %d times after the catch-up; want once", got)
		}

		create(3, rev)
		<-asked
		gate <- errors.New("no slot")
		r := next(5 * time.Second)
		if r == nil || r.WatchId != 3 || !r.Created {
			t.Fatalf("refused admission, the watch answered %v; want created, then canceled", r)
		}
		if !r.Canceled {
			if r = next(5 * time.Second); r == nil || r.WatchId != 3 || !r.Canceled {
				t.Fatalf("refused admission, the watch answered %v; want canceled", r)
			}
		}
		if !strings.Contains(r.CancelReason, "no slot") {
			t.Fatalf("refused admission, the watch was canceled for %q; want the reason", r.CancelReason)
		}
	})
}
