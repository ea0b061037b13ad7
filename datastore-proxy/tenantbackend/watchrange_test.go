package tenantbackend

import (
	"reflect"
	"testing"

	"github.com/k3s-io/kine/pkg/server"
)

func TestOwnBatch(t *testing.T) {
	ev := func(key string) *server.Event { return &server.Event{KV: &server.KeyValue{Key: key}} }
	strip := func(e *server.Event) *server.Event {
		if len(e.KV.Key) < 3 || e.KV.Key[:3] != "/a/" {
			return nil
		}
		c := *e
		c.KV = &server.KeyValue{Key: e.KV.Key[2:]}
		return &c
	}
	for _, tc := range []struct {
		name string
		in   server.EventBatch
		own  func(*server.Event) *server.Event
		want server.EventBatch
	}{
		{"no own: as it is", server.EventBatch{CurrentRev: 7, Events: []*server.Event{ev("/b/x")}}, nil,
			server.EventBatch{CurrentRev: 7, Events: []*server.Event{ev("/b/x")}}},
		{"made the tenant's", server.EventBatch{CurrentRev: 9, Events: []*server.Event{ev("/a/x"), ev("/a/y")}}, strip,
			server.EventBatch{CurrentRev: 9, Events: []*server.Event{ev("/x"), ev("/y")}}},
		{"others' dropped", server.EventBatch{CurrentRev: 9, Events: []*server.Event{ev("/b/x"), ev("/a/y")}}, strip,
			server.EventBatch{CurrentRev: 9, Events: []*server.Event{ev("/y")}}},
		{"none left: the revision stays", server.EventBatch{CurrentRev: 11, Events: []*server.Event{ev("/b/x")}}, strip,
			server.EventBatch{CurrentRev: 11}},
		{"a progress batch", server.EventBatch{CurrentRev: 12}, strip, server.EventBatch{CurrentRev: 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in.Events[:len(tc.in.Events):len(tc.in.Events)]
			before := make([]server.Event, len(in))
			for i, e := range in {
				before[i] = *e
			}
			if got := OwnBatch(tc.in, tc.own); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			for i, e := range in {
				if *e != before[i] {
					t.Errorf("event %d changed: %+v, was %+v", i, *e, before[i])
				}
			}
		})
	}
}
