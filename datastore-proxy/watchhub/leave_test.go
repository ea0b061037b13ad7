package watchhub

import (
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/keyspace"
	"kplex.dev/datastore-proxy/quota"
	"kplex.dev/datastore-proxy/tenantbackend"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// A stream that leaves cancels its creates not yet answered, once: a
// watch from the past would otherwise wait for a read slot and read its
// history for nobody while the tenant's other streams keep the store
// stream open. Another stream's create is left alone, and the answer that
// comes for the canceled one asks for no second cancel.
func TestALeavingStreamCancelsItsCreatesNotYetAnswered(t *testing.T) {
	h := New(Config{})
	space, err := keyspace.ForTenant("alpha")
	if err != nil {
		t.Fatal(err)
	}
	tb := tenantbackend.New(nil, space, func() tenantconfig.Limits { return tenantconfig.Limits{MaxWatches: 2} }, &quota.Usage{})
	reserve := func() *tenantbackend.Reservation {
		res, err := tb.ReserveWatch()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	gone, stays := &stream{ids: map[int64]int64{}}, &stream{ids: map[int64]int64{}}
	up := &upstream{streams: map[*stream]bool{gone: true, stays: true}, asked: map[*stream]bool{}, watches: map[int64]*route{},
		pending: []*pendingCreate{{s: gone, id: 1, eid: 10, res: reserve()}, {s: stays, id: 1, eid: 11, res: reserve()}}}
	h.leave(up, gone)
	if got := canceledIDs(up.out); len(got) != 1 || got[0] != 10 {
		t.Fatalf("after the stream left, cancels sent for %v; want [10], its create not yet answered", got)
	}
	up.out = nil
	h.route(up, &etcdserverpb.WatchResponse{WatchId: 10, Created: true})
	if got := canceledIDs(up.out); len(got) != 0 {
		t.Fatalf("the answer to a create canceled as its stream left: cancels sent again for %v; want none", got)
	}
	if len(up.pending) != 1 || up.pending[0].eid != 11 {
		t.Fatalf("pending after the answer: %v; want the staying stream's create only", up.pending)
	}
	if _, err := tb.ReserveWatch(); err != nil {
		t.Fatalf("the canceled create's place was not given back: %v", err)
	}
}

func canceledIDs(out []*etcdserverpb.WatchRequest) []int64 {
	var ids []int64
	for _, r := range out {
		if c := r.GetCancelRequest(); c != nil {
			ids = append(ids, c.WatchId)
		}
	}
	return ids
}
