package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/embedetcd"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// On etcd a tenant's watch streams share one etcd stream of the tenant's
// (watchhub), and each still behaves as etcd's own stream: watch IDs of
// its own, events of its own watches only, an answer to its progress
// requests only, a duplicate watch ID refused, and its watches gone with
// it while the others go on.
func TestATenantsWatchStreamsShareOneEtcdStream(t *testing.T) {
	url, stop, err := embedetcd.Start(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	px := proxytest.Start(t, backend.Config{Kind: "etcd", DSN: url})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bctx, bcancel := context.WithCancel(ctx)
	a, b := px.WatchStream(t, ctx, "alpha"), px.WatchStream(t, bctx, "alpha")
	send := func(ws etcdserverpb.Watch_WatchClient, r *etcdserverpb.WatchRequest) {
		t.Helper()
		if err := ws.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(ws etcdserverpb.Watch_WatchClient, what string) *etcdserverpb.WatchResponse {
		t.Helper()
		got := make(chan *etcdserverpb.WatchResponse, 1)
		go func() {
			r, err := ws.Recv()
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
			got <- r
		}()
		select {
		case r := <-got:
			if r == nil {
				t.FailNow()
			}
			return r
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing within 5 s", what)
			return nil
		}
	}
	create := func(ws etcdserverpb.Watch_WatchClient, prefix string, id int64) *etcdserverpb.WatchResponse {
		t.Helper()
		send(ws, &etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
			Key: []byte(prefix), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(prefix)), WatchId: id,
		}}})
		return recv(ws, "create "+prefix)
	}
	for _, ws := range []etcdserverpb.Watch_WatchClient{a, b} {
		if r := create(ws, "/registry/pods/", clientv3.AutoWatchID); !r.Created || r.Canceled || r.WatchId != 0 {
			t.Fatalf("the first watch of a stream: %v; want created with ID 0, as etcd assigns", r)
		}
	}
	if r := create(a, "/registry/secrets/", 7); !r.Created || r.Canceled || r.WatchId != 7 {
		t.Fatalf("a watch with ID 7 asked for: %v", r)
	}
	if r := create(a, "/registry/nodes/", 7); !r.Canceled || r.CancelReason != "mvcc: duplicate watch ID provided on the WatchStream" {
		t.Fatalf("a second watch with ID 7: %v; want refused as etcd refuses it", r)
	}

	put := func(key string) int64 {
		t.Helper()
		r, err := px.Client(t, "alpha").Put(ctx, key, "v")
		if err != nil {
			t.Fatal(err)
		}
		return r.Header.Revision
	}
	put("/registry/secrets/s")
	if r := recv(a, "the secret's event"); r.WatchId != 7 || len(r.Events) != 1 || string(r.Events[0].Kv.Key) != "/registry/secrets/s" {
		t.Fatalf("the secret's event: %v", r)
	}
	rev := put("/registry/pods/p")
	for name, ws := range map[string]etcdserverpb.Watch_WatchClient{"a": a, "b": b} {
		if r := recv(ws, "the pod's event on "+name); r.WatchId != 0 || len(r.Events) != 1 || r.Events[0].Kv.ModRevision != rev {
			t.Fatalf("the pod's event on %s: %v", name, r)
		}
	}

	// A progress request is answered on its own stream.
	send(b, &etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_ProgressRequest{ProgressRequest: &etcdserverpb.WatchProgressRequest{}}})
	if r := recv(b, "progress"); r.WatchId != clientv3.InvalidWatchID || r.Header.Revision < rev || len(r.Events) > 0 {
		t.Fatalf("progress on b: %v; want watch ID -1 at %d or later", r, rev)
	}

	// b's watches end with it; a's go on.
	bcancel()
	rev = put("/registry/pods/q")
	if r := recv(a, "the second pod's event"); r.WatchId != 0 || len(r.Events) != 1 || r.Events[0].Kv.ModRevision != rev {
		t.Fatalf("the second pod's event on a: %v", r)
	}
	// and a's IDs are still its own: its next watch is 1.
	if r := create(a, "/registry/configmaps/", clientv3.AutoWatchID); r.WatchId != 1 {
		t.Fatalf("a's next watch: %v; want ID 1", r)
	}
	// a canceled watch is canceled with its own ID, and events stop.
	send(a, &etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CancelRequest{CancelRequest: &etcdserverpb.WatchCancelRequest{WatchId: 7}}})
	if r := recv(a, "cancel"); !r.Canceled || r.WatchId != 7 {
		t.Fatalf("cancel of watch 7: %v", r)
	}
	put("/registry/secrets/t")
	rev = put(fmt.Sprintf("/registry/configmaps/%d", 1))
	if r := recv(a, "the configmap's event"); r.WatchId != 1 || r.Events[0].Kv.ModRevision != rev {
		t.Fatalf("after watch 7 was canceled, a got %v; want the configmap's event on watch 1", r)
	}
}

// etcd keeps a watch it canceled for compaction until it is asked to
// cancel it, and answers no progress request on its stream meanwhile; the
// hub asks, so the tenant's other watches still get answers. (Without it,
// an apiserver whose watch cache once re-watched from a compacted
// revision would wait 3 s for every consistent list from then on.)
func TestAProgressRequestIsAnsweredAfterACompactedWatch(t *testing.T) {
	url, stop, err := embedetcd.Start(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	direct, err := clientv3.New(clientv3.Config{Endpoints: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	px := proxytest.Start(t, backend.Config{Kind: "etcd", DSN: url})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := px.Client(t, "alpha")
	var rev int64
	for i := range 3 {
		r, err := c.Put(ctx, fmt.Sprintf("/registry/pods/%d", i), "v")
		if err != nil {
			t.Fatal(err)
		}
		rev = r.Header.Revision
	}
	if _, err := direct.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	ws := px.WatchStream(t, ctx, "alpha")
	// A watch that stays (etcd answers no progress request on a stream
	// without watches), then one from a compacted revision.
	for _, cr := range []*etcdserverpb.WatchCreateRequest{
		{Key: []byte("/registry/secrets/"), RangeEnd: []byte("/registry/secrets0")},
		{Key: []byte("/registry/pods/"), RangeEnd: []byte("/registry/pods0"), StartRevision: 1},
	} {
		if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: cr}}); err != nil {
			t.Fatal(err)
		}
	}
	resps := responses(ws)
	var seen []*etcdserverpb.WatchResponse
	compacted := false
	timeout := time.After(5 * time.Second)
	for !compacted {
		select {
		case r := <-resps:
			seen = append(seen, r)
			compacted = r.Canceled && r.CompactRevision > 0
		case <-timeout:
			t.Fatalf("no compacted cancel for a watch from revision 1 within 5 s; got %v", seen)
		}
	}
	askProgress(t, ws, resps, "answer after a watch was canceled for compaction", func(r *etcdserverpb.WatchResponse) bool {
		return r.WatchId == clientv3.InvalidWatchID && !r.Created
	})
}
