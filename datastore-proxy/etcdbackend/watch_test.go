package etcdbackend

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// A watch through kine's backend contract ends at once, saying why; a
// watch stream is etcd's own.
func TestWatchesAreEtcdStreams(t *testing.T) {
	c := startEtcd(t)
	b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := b.Watch(ctx, 0)
	if _, ok := <-w.Eventc; ok {
		t.Fatal("a watch through kine's contract sent events")
	}
	if err := <-w.Errorc; !errors.Is(err, errWatchByStream) {
		t.Fatalf("a watch through kine's contract ended with %v, want %v", err, errWatchByStream)
	}

	es, err := b.WatchStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := es.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{Key: []byte("/k")}}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := es.Recv(); err != nil || !resp.Created {
		t.Fatalf("create: %v, %v", resp, err)
	}
	put, err := c.Put(ctx, "/k", "v")
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := es.Recv(); err != nil || len(resp.Events) != 1 || resp.Events[0].Kv.ModRevision != put.Header.Revision {
		t.Fatalf("the put's event: %v, %v", resp, err)
	}
}
