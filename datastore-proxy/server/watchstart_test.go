package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// etcd lets a watch start at a revision it has not reached yet: the watch
// waits, and sends nothing below its start, not even a progress answer
// (a client resumes from a progress answer's revision + 1, and would get
// the changes it asked to skip). The SQL backends refused it: kine's
// catch-up refuses a read after a revision it has not reached.
func TestAWatchFromAFutureRevisionWaitsForIt(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		put := func(k, v string) int64 {
			t.Helper()
			r, err := c.Put(ctx, k, v)
			if err != nil {
				t.Fatalf("put %s: %v", k, err)
			}
			return r.Header.Revision
		}
		start := put("w/b", "1") + 3
		w := c.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(start), clientv3.WithCreatedNotify())
		if r := next(t, w); !r.Created || r.Err() != nil || len(r.Events) > 0 {
			t.Fatalf("a watch from the future revision %d: %+v, err %v, want it created and waiting", start, r, r.Err())
		}
		// Asked for progress while it waits, the stream answers nothing
		// below the watch's start.
		if err := c.RequestProgress(ctx); err != nil {
			t.Fatalf("request progress: %v", err)
		}
		select {
		case r := <-w:
			if r.Header.Revision < start-1 || len(r.Events) > 0 {
				t.Fatalf("a watch from the future revision %d, asked for progress: %d events at revision %d", start, len(r.Events), r.Header.Revision)
			}
		case <-time.After(time.Second):
		}
		var want []string
		for i := 0; ; i++ {
			k := fmt.Sprintf("w/f%d", i)
			rev := put(k, "1")
			if rev >= start {
				want = append(want, fmt.Sprintf("%s=1@%d", k, rev))
			}
			if rev > start {
				break
			}
		}
		if got := events(t, w, len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("a watch from the future revision %d: %v, want %v", start, got, want)
		}
	})
}

// etcd lets a watch start at exactly the compact revision: compaction
// keeps the revision it compacts at and removes those below. The SQL
// backends refused it: kine's catch-up reads after the revision before the
// start, which is below the compact revision.
//
// And etcd gives an event past the compact revision its previous value,
// however old: it reads the key at the revision before the event's, which
// compaction kept. kine's catch-up dropped a previous value older than the
// compact revision, and kube-apiserver ends a watch on an update without
// one ("etcd event received with PrevKv=nil"), so a watch resumed across
// an update of a key last written before the compact revision failed, and
// its client listed everything again.
func TestAWatchFromTheCompactRevisionStarts(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		const interval, retain = 200 * time.Millisecond, 3
		px := proxytest.StartWith(t, b, func(o *app.Options) {
			o.Backend.CompactInterval, o.Backend.CompactMinRetain = interval, retain
		})
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		revs := map[int64]string{}
		var last int64
		for i := range 8 {
			k := fmt.Sprintf("w/k%d", i)
			r, err := c.Put(ctx, k, "1")
			if err != nil {
				t.Fatalf("put %s: %v", k, err)
			}
			last = r.Header.Revision
			revs[last] = k
		}
		// The store's compact revision, once it has stopped moving: the
		// first event is the first revision it kept.
		compacted := func() int64 {
			wctx, wcancel := context.WithCancel(ctx)
			defer wcancel()
			r := next(t, c.Watch(wctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(1)))
			if !r.Canceled || r.CompactRevision == 0 {
				return 0
			}
			return r.CompactRevision
		}
		var compact int64
		for seen, deadline := 0, time.Now().Add(20*time.Second); seen < 3; time.Sleep(interval) {
			if time.Now().After(deadline) {
				t.Fatalf("the store's compact revision did not settle in 20 s: %d (the puts at %d..%d)", compact, last-7, last)
			}
			if n := compacted(); n > 0 && n == compact {
				seen++
			} else {
				compact, seen = n, 0
			}
		}
		if compact <= last-7 || compact > last {
			t.Fatalf("the store compacted at %d, not within the puts at %d..%d", compact, last-7, last)
		}
		var want []string
		for rev := compact; rev <= last; rev++ {
			if k, ok := revs[rev]; ok {
				want = append(want, fmt.Sprintf("%s=1@%d", k, rev))
			}
		}
		w := c.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(compact), clientv3.WithPrevKV())
		if got := events(t, w, len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("a watch from the compact revision %d: %v, want %v", compact, got, want)
		}

		// w/k0 was last written below the compact revision.
		r, err := c.Put(ctx, "w/k0", "2")
		if err != nil {
			t.Fatalf("put w/k0 again: %v", err)
		}
		rev := r.Header.Revision
		resp := next(t, c.Watch(ctx, "w/k0", clientv3.WithRev(rev), clientv3.WithPrevKV()))
		if err := resp.Err(); err != nil || len(resp.Events) != 1 {
			t.Fatalf("a watch from %d: %d events, err %v", rev, len(resp.Events), err)
		}
		prev := resp.Events[0].PrevKv
		if prev == nil || string(prev.Value) != "1" || prev.ModRevision != last-7 {
			t.Fatalf("the update of w/k0 at %d (compact revision %d): previous value %v, want \"1\" at %d", rev, compact, prev, last-7)
		}
	})
}

// next is the watch's next answer, within 10 s.
func next(t *testing.T, w clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case r, ok := <-w:
		if !ok {
			t.Fatal("the watch ended without an answer")
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no answer from the watch in 10 s")
	}
	return clientv3.WatchResponse{}
}

// events reads n events from w as key=value@revision, failing on an error
// or an end first.
func events(t *testing.T, w clientv3.WatchChan, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		r := next(t, w)
		if err := r.Err(); err != nil {
			t.Fatalf("after %v: %v (compact revision %d)", out, err, r.CompactRevision)
		}
		for _, ev := range r.Events {
			out = append(out, fmt.Sprintf("%s=%s@%d", ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision))
		}
	}
	return out
}
