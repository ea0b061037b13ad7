package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// kube-apiserver's watch cache serves a consistent list once it has seen
// the store's current revision, and asks its watch stream for progress to
// learn it, every 100 ms for up to 3 s. The answer (watch ID -1, at a
// revision every watch of the stream has sent every event up to) is due
// even when one of the watches has seen nothing for a while and other
// tenants have written since. On etcd it never came: every consistent list
// of an apiserver with its watch cache waited 3 s and then read the store.
// (etcd answers the first request once its watches have caught up; kine's
// bridge, on SQL, answers one that comes when they have.)
func TestAProgressRequestIsAnsweredWhileAWatchIsIdle(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ws := px.WatchStream(t, ctx, "alpha")
		recv := func(what string) *etcdserverpb.WatchResponse {
			t.Helper()
			resp, err := ws.Recv()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			return resp
		}
		// Two watches, as an apiserver has one per resource: pods get a
		// write, secrets stay idle.
		for _, prefix := range []string{"/registry/pods/", "/registry/secrets/"} {
			if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
				Key: []byte(prefix), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(prefix)), PrevKv: true, ProgressNotify: true,
			}}}); err != nil {
				t.Fatal(err)
			}
			if resp := recv("create " + prefix); !resp.Created || resp.Canceled {
				t.Fatalf("create %s: %v", prefix, resp)
			}
		}
		if _, err := px.Client(t, "alpha").Put(ctx, "/registry/pods/a", "1"); err != nil {
			t.Fatal(err)
		}
		// The watches asked for progress notifications, which may come
		// first (on SQL every NotifyInterval, 1 s here; kine's poller can
		// take as long to pass on the first write after the proxy starts).
		resp := recv("the pod's event")
		for len(resp.Events) == 0 && !resp.Created && !resp.Canceled {
			resp = recv("the pod's event, after a progress notification")
		}
		if len(resp.Events) != 1 {
			t.Fatalf("the pod's event: %v", resp)
		}
		// Another tenant's write moves the store's revision on.
		other, err := px.Client(t, "beta").Put(ctx, "/registry/pods/b", "1")
		if err != nil {
			t.Fatal(err)
		}
		askProgress(t, ws, responses(ws), fmt.Sprintf("answer at revision %d or later", other.Header.Revision), func(resp *etcdserverpb.WatchResponse) bool {
			if len(resp.Events) > 0 {
				t.Fatalf("an event of another tenant's key or an idle range: %v", resp)
			}
			return resp.WatchId == clientv3.InvalidWatchID && resp.Header.Revision >= other.Header.Revision
		})
	})
}

// responses passes on what ws receives until it ends.
func responses(ws etcdserverpb.Watch_WatchClient) <-chan *etcdserverpb.WatchResponse {
	c := make(chan *etcdserverpb.WatchResponse)
	go func() {
		defer close(c)
		for {
			resp, err := ws.Recv()
			if err != nil {
				return
			}
			c <- resp
		}
	}()
	return c
}

// askProgress asks ws for progress every 100 ms, as kube-apiserver does
// while a consistent list waits for its watch cache, until answered takes
// one of resps (ws's responses) for the answer; after 3 s, as long as the
// apiserver waits, the test fails with what came.
func askProgress(t *testing.T, ws etcdserverpb.Watch_WatchClient, resps <-chan *etcdserverpb.WatchResponse, what string, answered func(*etcdserverpb.WatchResponse) bool) {
	t.Helper()
	ask := func() {
		if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_ProgressRequest{ProgressRequest: &etcdserverpb.WatchProgressRequest{}}}); err != nil {
			t.Fatal(err)
		}
	}
	ask()
	again := time.NewTicker(100 * time.Millisecond)
	defer again.Stop()
	var seen []*etcdserverpb.WatchResponse
	timeout := time.After(3 * time.Second)
	for {
		select {
		case <-again.C:
			ask()
		case resp := <-resps:
			seen = append(seen, resp)
			if answered(resp) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s to progress requests every 100 ms within 3 s; got %v", what, seen)
		}
	}
}
