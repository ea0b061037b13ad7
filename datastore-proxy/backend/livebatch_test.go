package backend

import (
	"testing"

	"github.com/k3s-io/kine/pkg/server"
)

// A live batch is cut to the events after the watch's catch-up, in its
// range, and never tells a revision before the catch-up's (a batch of a
// poller behind the catch-up did, and the watch's progress answers went
// back with it), nor an event before the watch's start.
func TestLiveBatch(t *testing.T) {
	ev := func(key string, rev int64) *server.Event {
		return &server.Event{KV: &server.KeyValue{Key: key, ModRevision: rev}}
	}
	for _, tc := range []struct {
		name     string
		batch    server.EventBatch
		rev      int64
		after    int64
		wantRev  int64
		wantKeys []string
	}{
		{"behind the catch-up", server.EventBatch{CurrentRev: 7, Events: []*server.Event{ev("/t/a", 6), ev("/t/b", 7)}}, 10, 0, 10, nil},
		{"across it", server.EventBatch{CurrentRev: 12, Events: []*server.Event{ev("/t/a", 9), ev("/t/b", 11), ev("/u/c", 12)}}, 10, 0, 12, []string{"/t/b"}},
		{"past it", server.EventBatch{CurrentRev: 14, Events: []*server.Event{ev("/t/a", 13), ev("/t/b", 14)}}, 10, 0, 14, []string{"/t/a", "/t/b"}},
		{"empty", server.EventBatch{CurrentRev: 3}, 10, 0, 10, nil},
		// A watch from a revision the log had not reached: its catch-up is
		// at the log's revision, its start further on.
		{"before a future start", server.EventBatch{CurrentRev: 12, Events: []*server.Event{ev("/t/a", 11), ev("/t/b", 12)}}, 10, 12, 12, nil},
		{"across a future start", server.EventBatch{CurrentRev: 14, Events: []*server.Event{ev("/t/a", 12), ev("/t/b", 13), ev("/t/c", 14)}}, 10, 12, 14, []string{"/t/b", "/t/c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := liveBatch(tc.batch, tc.rev, tc.after, "/t/", "/t0")
			var keys []string
			for _, e := range got.Events {
				keys = append(keys, e.KV.Key)
			}
			if got.CurrentRev != tc.wantRev || len(keys) != len(tc.wantKeys) {
				t.Fatalf("revision %d, keys %v; want %d, %v", got.CurrentRev, keys, tc.wantRev, tc.wantKeys)
			}
			for i := range keys {
				if keys[i] != tc.wantKeys[i] {
					t.Fatalf("keys %v, want %v", keys, tc.wantKeys)
				}
			}
		})
	}
}
