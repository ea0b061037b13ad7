package localwatch_test

import (
	"context"
	"testing"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/localwatch"
)

// heldSource holds a watch of one key after its start is read (a catch-up,
// or the revision of a watch from now), before the stream gets it: read is
// closed then, and the watch is handed over when gate opens.
type heldSource struct {
	localwatch.Source
	key        string
	read, gate chan struct{}
}

func (h heldSource) WatchRange(ctx context.Context, key, end string, revision int64) server.WatchResult {
	wr := h.Source.WatchRange(ctx, key, end, revision)
	if key == h.key {
		close(h.read)
		select {
		case <-h.gate:
		case <-ctx.Done():
		}
	}
	return wr
}

// A created answer carries the revision its watch starts after, not a
// later one the stream has sent another watch meanwhile: etcd's client
// takes a watch from now to start at its created answer's revision, and
// watches again from there when the stream breaks before an event; it
// would skip the watch's changes below it, still on their way. (The answer
// carried the highest revision the stream had seen.)
func TestACreatedAnswerCarriesItsWatchsOwnRevision(t *testing.T) {
	var held heldSource
	wrap := func(src localwatch.Source) localwatch.Source {
		held = heldSource{src, "/s/x", make(chan struct{}), make(chan struct{})} // each backend's own
		return held
	}
	forEachSQLSource(t, 0, wrap, func(t *testing.T, s *localwatch.Stream, b server.Backend) {
		r := read(t, s)
		send(t, s, create(1, "/s/", "/s0", 0))
		r.until("watch 1's created answer", func(resp *etcdserverpb.WatchResponse) bool { return resp.Created && resp.WatchId == 1 })
		before := put(t, b, "/s/before")
		r.until("watch 1's event of /s/before", func(resp *etcdserverpb.WatchResponse) bool { return resp.WatchId == 1 && len(resp.Events) > 0 })

		// Watch 2 of /s/x from now: it starts after /s/before, then /s/x
		// and /s/y are written, and watch 1 is sent them, before watch 2
		// is answered.
		send(t, s, &etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
			WatchId: 2, Key: []byte("/s/x")}}})
		<-held.read
		rev := put(t, b, "/s/x")
		later := put(t, b, "/s/y")
		r.until("watch 1's event of /s/y", func(resp *etcdserverpb.WatchResponse) bool {
			return resp.WatchId == 1 && len(resp.Events) > 0 && resp.Events[len(resp.Events)-1].Kv.ModRevision == later
		})
		close(held.gate)

		got := r.until("watch 2's event of /s/x", func(resp *etcdserverpb.WatchResponse) bool { return resp.WatchId == 2 && len(resp.Events) > 0 })
		if len(got) != 2 || !got[0].Created || got[0].WatchId != 2 {
			t.Fatalf("want watch 2's created answer, then its event; got %s", describe(got))
		}
		if h := got[0].Header.Revision; h != before {
			t.Fatalf("watch 2's created answer is at %d; want %d, the revision it starts after (a client watching again from %d would skip its event at %d)", h, before, h, rev)
		}
		if ev := got[1].Events[0]; string(ev.Kv.Key) != "/s/x" || ev.Kv.ModRevision != rev {
			t.Fatalf("watch 2's event is %s at %d; want /s/x at %d", ev.Kv.Key, ev.Kv.ModRevision, rev)
		}
	})
}
