package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A list on PostgreSQL or MySQL whose answer is cut part way (the
// connection dropped mid-read) fails; a list after it has every key. It
// answered with the rows read before the cut, as a whole list: kine reads
// rows until Next says no more and never asks why, so a reflector took the
// keys after the cut for deleted.
func TestAListCutShortOnSQLFails(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, b backend.Config) {
		relay, px := throughRelay(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const keys = 40 // 4 MiB
		putLarge(t, ctx, c, keys)
		list := func() (int, error) {
			resp, err := c.Get(ctx, "/registry/configmaps/", clientv3.WithPrefix())
			if err != nil {
				return 0, err
			}
			return len(resp.Kvs), nil
		}
		cuts := relay.CutAnswerAfter(1 << 20)
		n, err := list()
		if cuts() == 0 {
			t.Fatalf("the relay cut nothing (the list read %d keys, err %v)", n, err)
		}
		if err == nil && n != keys {
			t.Fatalf("a list cut short after 1 MiB answered %d keys and no error; want an error, or all %d keys read again", n, keys)
		}
		t.Logf("the list cut short: %d keys, %v", n, err)
		relay.CutAnswerAfter(0)
		if n, err := list(); err != nil || n != keys {
			t.Fatalf("a list after the cut: %d keys, %v; want %d", n, err, keys)
		}
	})
}

// A watch whose catch-up is cut part way never passes on a later event
// after the rows read before the cut: it lost the events between for good
// (its client, told of a later revision, would watch again from there).
func TestAWatchCatchUpCutShortOnSQLLosesNothing(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, b backend.Config) {
		relay, px := throughRelay(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const keys = 40 // 8 MiB of events with their previous values
		revs := putLarge(t, ctx, c, keys)
		cuts := relay.CutAnswerAfter(1 << 20)
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		// As kube-apiserver does: a watch that ends is watched again from
		// the revision after the last event it passed on.
		watch := func(from int64) clientv3.WatchChan {
			return c.Watch(wctx, "/registry/configmaps/", clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithPrevKV())
		}
		wc := watch(revs[0])
		var got []int64
		deadline, disarm := time.After(30*time.Second), time.After(3*time.Second)
		ended := 0
		for len(got) < keys+1 {
			select {
			case resp, ok := <-wc:
				if !ok {
					ended++
					from := revs[0]
					if len(got) > 0 {
						from = got[len(got)-1] + 1
					}
					wc = watch(from)
					continue
				}
				for _, ev := range resp.Events {
					if i := len(got); i >= len(revs) || ev.Kv.ModRevision != revs[i] {
						t.Fatalf("after %v, an event at revision %d: the events between were lost (%d cuts)", got, ev.Kv.ModRevision, cuts())
					}
					got = append(got, ev.Kv.ModRevision)
				}
			case <-disarm: // the catch-up is over, one way or the other
				if cuts() == 0 {
					t.Fatal("the relay cut nothing")
				}
				relay.CutAnswerAfter(0)
				r, err := c.Put(ctx, "/registry/configmaps/ns/later", "v")
				if err != nil {
					t.Fatal(err)
				}
				revs = append(revs, r.Header.Revision)
			case <-deadline:
				t.Fatalf("%d of %d events in 30 s (the watch ended %d times): %v", len(got), keys+1, ended, got)
			}
		}
		t.Logf("%d cuts; the watch ended %d times", cuts(), ended)
	})
}

// putLarge puts n keys of 100 KiB under /registry/configmaps/ns/ and
// returns their revisions.
func putLarge(t *testing.T, ctx context.Context, c *clientv3.Client, n int) []int64 {
	t.Helper()
	value := strings.Repeat("v", 100<<10)
	var revs []int64
	for i := range n {
		r, err := c.Put(ctx, fmt.Sprintf("/registry/configmaps/ns/c%02d", i), value)
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, r.Header.Revision)
	}
	return revs
}
