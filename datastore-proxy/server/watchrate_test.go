package server_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A watch create request counts against its tenant's request rate, as
// any request does: a watch from a revision reads the store's history,
// and creates and cancels sent without end on one stream held no token
// and no slot, loading the shared store past the tenant's rate. Over the
// rate a create is refused in etcd's way, created and canceled, with the
// reason; another tenant's creates go on.
func TestWatchCreatesKeepToTheTenantsRate(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		cfg := filepath.Join(t.TempDir(), "tenants.yaml")
		writeConfig(t, cfg, "tenants:\n  alpha: {requestsPerSecond: 0.5, burst: 3}\n")
		px := proxytest.StartWith(t, b, func(o *app.Options) { o.TenantConfig = cfg })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		creates := func(tenant string, n int) (created, refused int) {
			ws := px.WatchStream(t, ctx, tenant)
			for range n {
				if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
					Key: []byte("/registry/a"), StartRevision: 1,
				}}}); err != nil {
					t.Fatal(err)
				}
			}
			for created+refused < n {
				resp, err := ws.Recv()
				if err != nil {
					t.Fatalf("%s's creates: %v", tenant, err)
				}
				switch {
				case resp.Created && resp.Canceled:
					if !strings.Contains(resp.CancelReason, rpctypes.ErrTooManyRequests.Error()) {
						t.Fatalf("%s's create refused for %q; want too many requests", tenant, resp.CancelReason)
					}
					refused++
				case resp.Created:
					created++
				}
			}
			return created, refused
		}
		start := time.Now()
		created, refused := creates("alpha", 12)
		// The burst, then a token every 2 s, which a create waits for up
		// to 1 s: at most 3 and one a 2 s since, the rest refused.
		if most := 3 + int(time.Since(start).Seconds()/2) + 1; created > most || refused == 0 {
			t.Errorf("alpha, a request every 2 s with a burst of 3: %d of 12 creates in %v, %d refused; want at most %d", created, time.Since(start), refused, most)
		}
		if created, refused := creates("beta", 12); created != 12 || refused != 0 {
			t.Errorf("beta, no rate: %d of 12 creates, %d refused; want all", created, refused)
		}
	})
}
