package watchhub

import (
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func TestSplitEvents(t *testing.T) {
	value := strings.Repeat("v", 100)
	events := func(revs ...int64) []*mvccpb.Event {
		var out []*mvccpb.Event
		for i, r := range revs {
			out = append(out, &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte(fmt.Sprintf("/k%d", i)), Value: []byte(value), ModRevision: r}})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		resp     *etcdserverpb.WatchResponse
		max      int
		wantRevs [][]int64 // each part's events' revisions
	}{
		{"small: as it is", &etcdserverpb.WatchResponse{Events: events(1, 2, 3)}, 1 << 20, [][]int64{{1, 2, 3}}},
		{"no events", &etcdserverpb.WatchResponse{}, 10, [][]int64{nil}},
		{"one event, however large", &etcdserverpb.WatchResponse{Events: events(5)}, 10, [][]int64{{5}}},
		{"cut between revisions", &etcdserverpb.WatchResponse{Events: events(1, 2, 3, 4)}, 200, [][]int64{{1, 2}, {3, 4}}},
		{"a revision is never cut", &etcdserverpb.WatchResponse{Events: events(1, 2, 2, 2, 3)}, 200, [][]int64{{1, 2, 2, 2}, {3}}},
		{"a part per revision", &etcdserverpb.WatchResponse{Events: events(1, 2, 3)}, 10, [][]int64{{1}, {2}, {3}}},
		{"a fragment as it is", &etcdserverpb.WatchResponse{Fragment: true, Events: events(1, 2, 3)}, 10, [][]int64{{1, 2, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.resp.Header = &etcdserverpb.ResponseHeader{Revision: 9}
			tc.resp.WatchId = 4
			parts := splitEvents(tc.resp, tc.max)
			var got [][]int64
			n := 0
			for _, p := range parts {
				var revs []int64
				for _, ev := range p.Events {
					revs = append(revs, ev.Kv.ModRevision)
					if want := fmt.Sprintf("/k%d", n); string(ev.Kv.Key) != want {
						t.Errorf("event %d is %s, want %s: out of order", n, ev.Kv.Key, want)
					}
					n++
				}
				got = append(got, revs)
				if p.Header.Revision != 9 || p.WatchId != 4 {
					t.Errorf("part with header %v, watch %d; want 9 and 4", p.Header, p.WatchId)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantRevs) {
				t.Errorf("parts %v, want %v", got, tc.wantRevs)
			}
		})
	}
}
