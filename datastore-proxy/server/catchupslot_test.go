package server_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

var readSlotsMetric = regexp.MustCompile(`(?m)^kplex_datastore_proxy_slot_wait_seconds_count\{kind="read",tenant="alpha"\} (\d+)`)

// On a store whose watches the proxy serves itself, a watch from a past
// revision takes one of its tenant's read slots to read its history, as a
// list does: the watches of many apiservers resuming at once (a proxy
// restarted under hundreds of tenants) share the database fairly instead
// of all reading it at once. A watch from now reads nothing, and takes
// none.
func TestAWatchCatchUpTakesAReadSlot(t *testing.T) {
	px := proxytest.Start(t, backend.Config{Kind: "sqlite"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put, err := px.Client(t, "alpha").Put(ctx, "/registry/a", "v")
	if err != nil {
		t.Fatal(err)
	}
	readSlots := func() int {
		m := readSlotsMetric.FindStringSubmatch(scrape(t, px.MetricsAddress))
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	ws := px.WatchStream(t, ctx, "alpha")
	watch := func(id, start int64, responses int) {
		t.Helper()
		if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
			WatchId: id, Key: []byte("/registry/a"), StartRevision: start,
		}}}); err != nil {
			t.Fatal(err)
		}
		for range responses {
			if _, err := ws.Recv(); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := readSlots()
	watch(1, 0, 1) // created
	if got := readSlots(); got != before {
		t.Fatalf("a watch from now took %d read slots; want none", got-before)
	}
	watch(2, put.Header.Revision, 2) // created, then the put
	if got := readSlots(); got != before+1 {
		t.Fatalf("a watch from a past revision took %d read slots; want one", got-before)
	}
}
