package server_test

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A tenant's watch stream numbers its watches itself, 0, 1, 2..., on every
// backend, whatever other tenants open meanwhile: kine numbered every
// watch of the proxy from one counter, so a tenant could count the
// watches other tenants opened. Events and the cancel answer carry the
// stream's ID, and a cancel by that ID cancels the watch.
func TestWatchIDsAreTheStreams(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		alpha, beta := px.WatchStream(t, ctx, "alpha"), px.WatchStream(t, ctx, "beta")
		create := func(ws etcdserverpb.Watch_WatchClient, key string) int64 {
			t.Helper()
			if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
				Key: []byte(key),
			}}}); err != nil {
				t.Fatal(err)
			}
			resp, err := ws.Recv()
			if err != nil || !resp.Created || resp.Canceled {
				t.Fatalf("create a watch on %s: %v, %v", key, resp, err)
			}
			return resp.WatchId
		}

		if id := create(alpha, "/registry/a"); id != 0 {
			t.Errorf("alpha's first watch has ID %d, want 0", id)
		}
		for range 5 {
			create(beta, "/registry/b")
		}
		if id := create(alpha, "/registry/c"); id != 1 {
			t.Errorf("alpha's second watch, after beta opened 5, has ID %d, want 1", id)
		}

		// An event of watch 0, and the cancel of watch 1, by their IDs.
		if _, err := px.Client(t, "alpha").Put(ctx, "/registry/a", "v"); err != nil {
			t.Fatal(err)
		}
		if resp, err := alpha.Recv(); err != nil || resp.WatchId != 0 || len(resp.Events) != 1 {
			t.Fatalf("alpha's event: %v, %v; want one event of watch 0", resp, err)
		}
		if err := alpha.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CancelRequest{CancelRequest: &etcdserverpb.WatchCancelRequest{WatchId: 1}}}); err != nil {
			t.Fatal(err)
		}
		for {
			resp, err := alpha.Recv()
			if err != nil {
				t.Fatalf("alpha's cancel of watch 1: %v", err)
			}
			if resp.Canceled {
				if resp.WatchId != 1 {
					t.Fatalf("alpha's cancel of watch 1 answered for watch %d", resp.WatchId)
				}
				break
			}
		}
	})
}

// A canceled watch with progress notifications says nothing more: kine's
// goroutine of such a watch sends empty responses until it ends, and each
// got a new ID of the stream, a watch its client never made (clientv3
// cancels it, in vain), so the stream's IDs ran on past its watches.
func TestACanceledWatchSaysNothingMore(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ws := px.WatchStream(t, ctx, "alpha")
		const watches = 8
		for i := range int64(watches) {
			if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
				Key: []byte("/registry/a"), ProgressNotify: true,
			}}}); err != nil {
				t.Fatal(err)
			}
			if resp, err := ws.Recv(); err != nil || !resp.Created || resp.WatchId != i {
				t.Fatalf("create watch %d: %v, %v", i, resp, err)
			}
			if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CancelRequest{CancelRequest: &etcdserverpb.WatchCancelRequest{WatchId: i}}}); err != nil {
				t.Fatal(err)
			}
			for {
				resp, err := ws.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if resp.WatchId != i {
					t.Fatalf("after watch %d was canceled, a response for watch %d: %v", i, resp.WatchId, resp)
				}
				if resp.Canceled {
					break
				}
			}
		}
		// Whatever kine's goroutines still had to say has been said by
		// now; the next watch is the stream's next.
		time.Sleep(200 * time.Millisecond)
		if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
			Key: []byte("/registry/b"),
		}}}); err != nil {
			t.Fatal(err)
		}
		resp, err := ws.Recv()
		if err != nil || !resp.Created || resp.WatchId != watches {
			t.Fatalf("the watch after %d canceled ones: %v, %v; want created with ID %d", watches, resp, err, watches)
		}
	})
}

// A create that etcd refuses before it gives the watch an ID (a negative
// start revision, a range end not past its key) is refused with no watch
// ID on every backend, and the stream's next watch gets the ID it would
// have had: the hub numbered the refused one, and kine started a watch on
// the empty range.
func TestRefusedCreatesTakeNoID(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ws := px.WatchStream(t, ctx, "alpha")
		for i, cr := range []*etcdserverpb.WatchCreateRequest{
			{Key: []byte("/registry/a"), StartRevision: -1},
			{Key: []byte("/registry/b"), RangeEnd: []byte("/registry/a")},
			{Key: []byte("/registry/b"), RangeEnd: []byte("/registry/b")},
			{Key: []byte("/registry/a")},
		} {
			if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: cr}}); err != nil {
				t.Fatal(err)
			}
			resp, err := ws.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if i < 3 {
				if !resp.Created || !resp.Canceled || resp.WatchId != -1 || resp.CancelReason == "" {
					t.Errorf("create %v: %v; want it refused with watch ID -1 and a reason", cr, resp)
				}
			} else if !resp.Created || resp.Canceled || resp.WatchId != 0 {
				t.Errorf("the create after the refused ones: %v; want watch 0 created", resp)
			}
		}
	})
}
