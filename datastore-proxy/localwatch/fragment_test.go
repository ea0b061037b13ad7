package localwatch

import (
	"bytes"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

func TestResponsesAreFragmentedOnlyWhenAskedAndLarge(t *testing.T) {
	ev := func(kib int) *mvccpb.Event {
		return &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte("/k"), Value: bytes.Repeat([]byte("v"), kib<<10), ModRevision: 9}}
	}
	tests := []struct {
		name     string
		fragment bool
		kib      []int
		want     []bool // each response's Fragment flag
	}{
		{"not asked", false, []int{600, 600, 600}, []bool{false}},
		{"asked, small", true, []int{1, 2, 3}, []bool{false}},
		{"asked, one large event", true, []int{3000}, []bool{false}},
		{"asked, large", true, []int{600, 600, 600}, []bool{true, true, false}},
		{"asked, two per part", true, []int{400, 400, 400, 400}, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events []*mvccpb.Event
			for _, k := range tt.kib {
				events = append(events, ev(k))
			}
			w := &watch{id: 3, fragment: tt.fragment}
			got := w.responses(9, events)
			var flags []bool
			n := 0
			for _, r := range got {
				flags = append(flags, r.Fragment)
				n += len(r.Events)
				if r.WatchId != 3 || r.Header.Revision != 9 {
					t.Errorf("response for watch %d at %d, want 3 at 9", r.WatchId, r.Header.Revision)
				}
			}
			if n != len(events) || len(flags) != len(tt.want) {
				t.Fatalf("%d events in responses fragmented %v, want %d in %v", n, flags, len(events), tt.want)
			}
			for i := range flags {
				if flags[i] != tt.want[i] {
					t.Fatalf("fragmented %v, want %v", flags, tt.want)
				}
			}
		})
	}
}
