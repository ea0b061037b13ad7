package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A watch gets what its create request asked for, on every backend as on
// etcd: no puts with NOPUT, no deletes with NODELETE, previous values only
// with prev_kv. kine sent every watch every event with its previous value.
func TestWatchFiltersAndPrevKV(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ws := px.WatchStream(t, ctx, "alpha")
		creates := []*etcdserverpb.WatchCreateRequest{
			{Filters: []etcdserverpb.WatchCreateRequest_FilterType{etcdserverpb.WatchCreateRequest_NOPUT}, PrevKv: true},
			{Filters: []etcdserverpb.WatchCreateRequest_FilterType{etcdserverpb.WatchCreateRequest_NODELETE}},
			{},
			{PrevKv: true},
		}
		watch := map[int64]int{} // watch ID -> its create's index
		for i, cr := range creates {
			cr.Key = []byte("/registry/k")
			if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: cr}}); err != nil {
				t.Fatal(err)
			}
			resp, err := ws.Recv()
			if err != nil || !resp.Created || resp.Canceled || resp.WatchId != int64(i) {
				t.Fatalf("create watch %d: %v, %v", i, resp, err)
			}
			watch[resp.WatchId] = i
			if i == 0 {
				// A create refused at once, among the others: the next
				// watch still gets its own options.
				refused := &etcdserverpb.WatchCreateRequest{Key: []byte("/registry/k"), StartRevision: -1, PrevKv: true}
				if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: refused}}); err != nil {
					t.Fatal(err)
				}
				if resp, err := ws.Recv(); err != nil || !resp.Created || !resp.Canceled {
					t.Fatalf("a create from revision -1: %v, %v; want it refused", resp, err)
				}
			}
		}
		c := px.Client(t, "alpha")
		for _, v := range []string{"1", "2"} {
			if _, err := c.Put(ctx, "/registry/k", v); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Delete(ctx, "/registry/k"); err != nil {
			t.Fatal(err)
		}

		// Each event as "PUT 1", "PUT 2 prev 1", "DELETE prev 2".
		want := [][]string{
			{"DELETE prev 2"},
			{"PUT 1", "PUT 2"},
			{"PUT 1", "PUT 2", "DELETE"},
			{"PUT 1", "PUT 2 prev 1", "DELETE prev 2"},
		}
		got := make([][]string, len(creates))
		done := func() bool {
			for i := range want {
				if len(got[i]) < len(want[i]) {
					return false
				}
			}
			return true
		}
		for !done() {
			resp, err := ws.Recv()
			if err != nil {
				t.Fatalf("events so far %q: %v", got, err)
			}
			i, ok := watch[resp.WatchId]
			if !ok {
				t.Fatalf("a response for watch %d: %v", resp.WatchId, resp)
			}
			if len(resp.Events) == 0 && !resp.Canceled {
				t.Errorf("watch %d got a response without events: %v", resp.WatchId, resp)
			}
			for _, ev := range resp.Events {
				got[i] = append(got[i], eventString(ev))
			}
		}
		for i := range want {
			if strings.Join(got[i], ", ") != strings.Join(want[i], ", ") {
				t.Errorf("watch %d (%v): events %q, want %q", i, creates[i], got[i], want[i])
			}
		}
	})
}

func eventString(ev *mvccpb.Event) string {
	s := ev.Type.String()
	if ev.Type == mvccpb.PUT {
		s += " " + string(ev.Kv.Value)
	}
	if ev.PrevKv != nil {
		s += fmt.Sprintf(" prev %s", ev.PrevKv.Value)
	}
	return s
}
