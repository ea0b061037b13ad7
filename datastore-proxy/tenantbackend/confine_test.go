package tenantbackend_test

import (
	"context"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protowire"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// A watch create request goes on to the store confined to the tenant's
// space and with nothing the proxy did not read: bytes a tenant added
// that decode as no known field (here the key again, with the wrong wire
// type) were passed on as they came, to a store that may read them.
func TestAConfinedWatchCreateCarriesNoUnreadBytes(t *testing.T) {
	tb := tenantOn(t, proxytest.OpenBackend(t, backend.Config{Kind: "sqlite"}), "alpha", tenantconfig.Limits{})
	ws, err := tb.WatchStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cr := &etcdserverpb.WatchCreateRequest{Key: []byte("/registry/a"), StartRevision: 7, PrevKv: true}
	cr.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 5))
	ws.Confine(cr, "/registry/a", "")
	if u := cr.ProtoReflect().GetUnknown(); len(u) != 0 {
		t.Fatalf("the confined request carries %d bytes the proxy did not read", len(u))
	}
	if string(cr.Key) != "/kplex/alpha//registry/a" || len(cr.RangeEnd) != 0 || cr.StartRevision != 7 || !cr.PrevKv {
		t.Fatalf("confined request %v; want the tenant's key in its space, the rest as sent", cr)
	}
}
