package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A stream's create answers come in the order of its creates, refusals
// too, on every backend: etcd's client takes each created answer for its
// oldest create still unanswered. On SQL the proxy sent a refusal (past
// maxWatches) at once, and kine its own (a client's watch ID), ahead of
// the answer to a create kine was still catching up for. Since the SQL
// backends' watches are the proxy's own (localwatch), a client's watch ID
// is taken there too, as etcd takes it.
func TestCreateAnswersKeepTheirOrder(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		cfg := filepath.Join(t.TempDir(), "tenants.yaml")
		writeConfig(t, cfg, "tenants:\n  alpha: {maxWatches: 1}\n")
		px := proxytest.StartWith(t, b, func(o *app.Options) { o.TenantConfig = cfg })
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for _, tc := range []struct {
			tenant  string
			second  *etcdserverpb.WatchCreateRequest
			refused bool
		}{
			{"alpha", &etcdserverpb.WatchCreateRequest{Key: []byte("/registry/x")}, true},             // past maxWatches
			{"beta", &etcdserverpb.WatchCreateRequest{Key: []byte("/registry/x"), WatchId: 7}, false}, // a client's own ID, as etcd takes it
		} {
			c := px.Client(t, tc.tenant)
			for i := range 300 { // a catch-up that takes a while
				if _, err := c.Put(ctx, fmt.Sprintf("/registry/p/%04d", i), "v"); err != nil {
					t.Fatal(err)
				}
			}
			ws := px.WatchStream(t, ctx, tc.tenant)
			for _, cr := range []*etcdserverpb.WatchCreateRequest{
				{Key: []byte("/registry/p/"), RangeEnd: []byte("/registry/p0"), StartRevision: 1},
				tc.second,
			} {
				if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: cr}}); err != nil {
					t.Fatal(err)
				}
			}
			var answers []*etcdserverpb.WatchResponse
			for len(answers) < 2 {
				resp, err := ws.Recv()
				if err != nil {
					t.Fatalf("%s: answers so far %v: %v", tc.tenant, answers, err)
				}
				if resp.Created {
					answers = append(answers, resp)
				}
			}
			if a := answers[0]; a.Canceled || a.WatchId != 0 {
				t.Errorf("%s: first answer: %v; want the first create's watch 0", tc.tenant, a)
			}
			switch a := answers[1]; {
			case tc.refused && (!a.Canceled || a.WatchId != -1):
				t.Errorf("%s: second answer: %v; want the second create refused", tc.tenant, a)
			case !tc.refused && (a.Canceled || a.WatchId != tc.second.WatchId):
				t.Errorf("%s: second answer: %v; want watch %d created", tc.tenant, a, tc.second.WatchId)
			}
		}
	})
}
