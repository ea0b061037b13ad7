package localwatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/localwatch"
	"kplex.dev/datastore-proxy/tenantbackend"
)

// forEachSQL runs f with a stream on each SQL backend, the ones the
// stream serves (etcd has watch streams of its own), and the backend to
// write to.
func forEachSQL(t *testing.T, interval time.Duration, f func(t *testing.T, s *localwatch.Stream, b server.Backend)) {
	forEachSQLSource(t, interval, nil, f)
}

// forEachSQLSource is forEachSQL with the stream's source wrapped by wrap.
func forEachSQLSource(t *testing.T, interval time.Duration, wrap func(localwatch.Source) localwatch.Source, f func(t *testing.T, s *localwatch.Stream, b server.Backend)) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b := proxytest.OpenBackend(t, c)
		src := tenantbackend.LocalSource(b)
		if wrap != nil {
			src = wrap(src)
		}
		f(t, localwatch.New(ctx, src, interval), b)
	})
}

// reader reads a stream's responses in the background, so that a test
// can wait for the ones it expects and print all it got when they do not
// come.
type reader struct {
	t    *testing.T
	c    chan *etcdserverpb.WatchResponse
	seen []*etcdserverpb.WatchResponse
}

func read(t *testing.T, s *localwatch.Stream) *reader {
	r := &reader{t: t, c: make(chan *etcdserverpb.WatchResponse, 1024)}
	go func() {
		defer close(r.c)
		for {
			resp, err := s.Recv()
			if err != nil {
				return
			}
			r.c <- resp
		}
	}()
	return r
}

// until returns the responses up to and including the first that ok takes.
func (r *reader) until(what string, ok func(*etcdserverpb.WatchResponse) bool) []*etcdserverpb.WatchResponse {
	r.t.Helper()
	from := len(r.seen)
	timeout := time.After(10 * time.Second)
	for {
		select {
		case resp, open := <-r.c:
			if !open {
				r.t.Fatalf("the stream ended before %s; got %s", what, describe(r.seen))
			}
			r.seen = append(r.seen, resp)
			if ok(resp) {
				return r.seen[from:]
			}
		case <-timeout:
			r.t.Fatalf("no %s within 10 s; got %s", what, describe(r.seen))
		}
	}
}

func describe(rs []*etcdserverpb.WatchResponse) string {
	s := ""
	for _, r := range rs {
		s += fmt.Sprintf("\n  id=%d rev=%d created=%v canceled=%v reason=%q compact=%d events=%d", r.WatchId, r.Header.GetRevision(),
			r.Created, r.Canceled, r.CancelReason, r.CompactRevision, len(r.Events))
	}
	if s == "" {
		return "nothing"
	}
	return s
}

func isProgressAnswer(r *etcdserverpb.WatchResponse) bool {
	return r.WatchId == clientv3.InvalidWatchID && !r.Created && !r.Canceled
}

func create(id int64, key, end string, rev int64) *etcdserverpb.WatchRequest {
	return &etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
		WatchId: id, Key: []byte(key), RangeEnd: []byte(end), StartRevision: rev, ProgressNotify: true, PrevKv: true}}}
}

var progress = &etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_ProgressRequest{ProgressRequest: &etcdserverpb.WatchProgressRequest{}}}

// answered asks for progress every 20 ms until the reader has an answer,
// as kube-apiserver asks again (a stream drops the requests it cannot
// answer, as etcd does), and returns the responses up to the answer.
func (r *reader) answered(s *localwatch.Stream, what string) []*etcdserverpb.WatchResponse {
	r.t.Helper()
	stop, stopped := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-stopped }() // no request of it after it returns
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if s.Send(progress) != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return r.until(what, isProgressAnswer)
}

func send(t *testing.T, s *localwatch.Stream, r *etcdserverpb.WatchRequest) {
	t.Helper()
	if err := s.Send(r); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, b server.Backend, key string) int64 {
	t.Helper()
	rev, err := b.Create(context.Background(), key, []byte("v"), 0)
	if err != nil {
		t.Fatalf("create %s: %v", key, err)
	}
	return rev
}

// A progress answer is the promise that every watch of the stream has
// been sent every event up to its revision. kine's bridge made it for the
// watches it had when it checked, and sent it later: a watch created in
// between from a past revision was recorded as having been sent the
// answer's revision, and its older events then made kine exit the
// process. Here an answer sent before a watch's create leaves the watch
// alone, and one asked after it waits for the watch's catch-up.
func TestAProgressAnswerNeverGetsAheadOfAWatchCatchingUp(t *testing.T) {
	forEachSQL(t, 0, func(t *testing.T, s *localwatch.Stream, b server.Backend) {
		first := put(t, b, "/t/000")
		var last int64
		for i := 1; i < 300; i++ {
			last = put(t, b, fmt.Sprintf("/t/%03d", i))
		}
		r := read(t, s)
		got := r.answered(s, "an answer to the progress request with no watch")
		if rev := got[len(got)-1].Header.Revision; rev < last {
			t.Fatalf("progress answered at %d, before the last write (%d)", rev, last)
		}

		// A watch from the first write, then progress requests at once.
		send(t, s, create(0, "/t/", "/t0", first))
		r.until("the created answer", func(resp *etcdserverpb.WatchResponse) bool { return resp.Created })
		got = r.answered(s, "an answer to the progress requests after the watch's create")
		events := 0
		for _, resp := range got {
			if resp.WatchId == 0 && !resp.Created {
				for _, ev := range resp.Events {
					if ev.Kv.ModRevision > got[len(got)-1].Header.Revision {
						t.Fatalf("an event at %d before a progress answer at %d", ev.Kv.ModRevision, got[len(got)-1].Header.Revision)
					}
				}
				events += len(resp.Events)
			}
		}
		if events != 300 {
			t.Fatalf("want the 300 events of the catch-up, then the progress answer; got %s", describe(got))
		}

		// A later event comes after it, never at or below it.
		answer := got[len(got)-1].Header.Revision
		rev := put(t, b, "/t/300")
		got = r.until("the watch's event of /t/300", func(resp *etcdserverpb.WatchResponse) bool { return len(resp.Events) > 0 })
		if ev := got[len(got)-1].Events[0]; ev.Kv.ModRevision != rev || rev <= answer {
			t.Fatalf("event %s at %d after a progress answer at %d; want /t/300 at %d", ev.Kv.Key, ev.Kv.ModRevision, answer, rev)
		}
	})
}

// A watch of a range nobody writes to does not hold progress answers back
// while others write: its feed carries the store's revision.
func TestAnIdleWatchDoesNotHoldProgressBack(t *testing.T) {
	forEachSQL(t, 0, func(t *testing.T, s *localwatch.Stream, b server.Backend) {
		r := read(t, s)
		send(t, s, create(7, "/idle/", "/idle0", 0))
		send(t, s, create(8, "/busy/", "/busy0", 0))
		r.until("two created answers", func(resp *etcdserverpb.WatchResponse) bool { return resp.Created && resp.WatchId == 8 })
		var last int64
		for i := range 20 {
			put(t, b, fmt.Sprintf("/busy/%d", i))
			last = put(t, b, fmt.Sprintf("/elsewhere/%d", i))
		}
		got := r.answered(s, "a progress answer")
		if rev := got[len(got)-1].Header.Revision; rev < last {
			t.Fatalf("progress answered at %d, before the last write (%d): %s", rev, last, describe(got))
		}
		for _, resp := range got {
			if resp.WatchId == 7 && len(resp.Events) > 0 {
				t.Fatalf("the idle watch got events of another range: %s", describe(got))
			}
		}
	})
}

// A canceled watch gets a canceled answer and nothing after it; a create
// with a watch ID in use is refused as etcd refuses it; a watch that
// asked for progress notifications and stays idle gets them.
func TestCancelDuplicateIDsAndNotifications(t *testing.T) {
	forEachSQL(t, 100*time.Millisecond, func(t *testing.T, s *localwatch.Stream, b server.Backend) {
		r := read(t, s)
		send(t, s, create(1, "/a/", "/a0", 0))
		send(t, s, create(1, "/b/", "/b0", 0))
		got := r.until("the duplicate's refusal", func(resp *etcdserverpb.WatchResponse) bool { return resp.Canceled })
		if last := got[len(got)-1]; !last.Created || last.WatchId != clientv3.InvalidWatchID || last.CancelReason == "" {
			t.Fatalf("want a created and canceled answer with no watch ID and a reason; got %s", describe(got))
		}
		r.until("a progress notification of the idle watch", func(resp *etcdserverpb.WatchResponse) bool {
			return resp.WatchId == 1 && !resp.Created && !resp.Canceled && len(resp.Events) == 0
		})
		send(t, s, &etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CancelRequest{CancelRequest: &etcdserverpb.WatchCancelRequest{WatchId: 1}}})
		r.until("the canceled answer", func(resp *etcdserverpb.WatchResponse) bool { return resp.WatchId == 1 && resp.Canceled })
		put(t, b, "/a/after")
		got = r.answered(s, "a progress answer")
		for _, resp := range got {
			if resp.WatchId == 1 {
				t.Fatalf("a response of the canceled watch: %s", describe(got))
			}
		}
	})
}

// A client that reads nothing and keeps asking for progress does not grow
// what the stream holds for it: requests past its queue are dropped, as
// etcd drops what it cannot answer.
func TestProgressRequestsOfAClientThatReadsNothingAreDropped(t *testing.T) {
	forEachSQL(t, 0, func(t *testing.T, s *localwatch.Stream, b server.Backend) {
		for range 1000 {
			send(t, s, progress)
		}
		r := read(t, s)
		n := 0
		for {
			select {
			case <-r.c:
				n++
				continue
			case <-time.After(300 * time.Millisecond):
			}
			break
		}
		if n == 0 || n > 64 {
			t.Fatalf("%d answers to 1,000 progress requests nobody read; want 1 to 64", n)
		}
	})
}

// gatedSource holds the catch-up of watches of one range until its gate
// opens, as a large catch-up takes a while.
type gatedSource struct {
	localwatch.Source
	key  string
	gate chan struct{}
}

func (g gatedSource) WatchRange(ctx context.Context, key, end string, revision int64) server.WatchResult {
	if key == g.key {
		select {
		case <-g.gate:
		case <-ctx.Done():
		}
	}
	return g.Source.WatchRange(ctx, key, end, revision)
}

// A create whose catch-up takes a while holds up no other request: a
// cancel of another watch is answered meanwhile (the tenant's every watch
// stream shares this one). Created answers still keep the creates' order.
// (Each catch-up was read in Send, and the requests after it waited.)
func TestASlowCatchUpHoldsUpNoOtherRequest(t *testing.T) {
	var gate chan struct{}
	wrap := func(src localwatch.Source) localwatch.Source {
		gate = make(chan struct{}) // each backend's own
		return gatedSource{src, "/slow/", gate}
	}
	forEachSQLSource(t, 0, wrap, func(t *testing.T, s *localwatch.Stream, b server.Backend) {
		r := read(t, s)
		send(t, s, create(1, "/a/", "/a0", 0))
		r.until("watch 1's created answer", func(resp *etcdserverpb.WatchResponse) bool { return resp.Created && resp.WatchId == 1 })

		sent := make(chan error, 1)
		go func() { // the hub's writer, which may wait in Send
			for _, req := range []*etcdserverpb.WatchRequest{
				create(2, "/slow/", "/slow0", 1),
				create(3, "/b/", "/b0", 0),
				{RequestUnion: &etcdserverpb.WatchRequest_CancelRequest{CancelRequest: &etcdserverpb.WatchCancelRequest{WatchId: 1}}},
			} {
				if err := s.Send(req); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		got := r.until("watch 1's canceled answer while watch 2's catch-up is held", func(resp *etcdserverpb.WatchResponse) bool {
			return resp.Canceled && resp.WatchId == 1
		})
		for _, resp := range got {
			if resp.Created {
				t.Fatalf("a created answer before the held catch-up's: %s", describe(got))
			}
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		close(gate)
		got = r.until("watch 3's created answer", func(resp *etcdserverpb.WatchResponse) bool { return resp.Created && resp.WatchId == 3 })
		if len(got) != 2 || got[0].WatchId != 2 || !got[0].Created {
			t.Fatalf("want watch 2's created answer, then watch 3's; got %s", describe(got))
		}
	})
}
