package server_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/server"
)

// A tenant idle for --forget-idle-tenants is forgotten: its metric series
// go. Its next request finds its keys where they were, and its quota
// still holds: with the count kept while it was forgotten, or, once that
// is dropped too, counted again, a forgotten tenant at its key limit is
// still at it. A tenant with a watch open is never idle: it keeps its
// series and its watch its events.
func TestIdleTenantsAreForgotten(t *testing.T) {
	t.Run("count kept", func(t *testing.T) {
		defer server.SetDormantUsage(time.Hour)()
		proxytest.ForEachBackend(t, forgetIdle)
	})
	t.Run("count dropped", func(t *testing.T) { // the quota's own count, the same on every backend
		defer server.SetDormantUsage(0)()
		forgetIdle(t, backend.Config{Kind: "sqlite"})
	})
}

func forgetIdle(t *testing.T, b backend.Config) {
	cfg := filepath.Join(t.TempDir(), "tenants.yaml")
	writeConfig(t, cfg, "tenants:\n  alpha: {maxKeys: 2}\n")
	const idle = time.Second
	px := proxytest.StartWith(t, b, func(o *app.Options) { o.TenantConfig = cfg; o.ForgetIdle = idle })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alpha, beta := px.Client(t, "alpha"), px.Client(t, "beta")
	events := beta.Watch(ctx, "/registry/w", clientv3.WithCreatedNotify())
	if resp := <-events; !resp.Created {
		t.Fatalf("beta's watch: %+v", resp)
	}
	tenants := func() map[string]bool {
		seen := map[string]bool{}
		for _, m := range tenantLabel.FindAllStringSubmatch(scrape(t, px.MetricsAddress), -1) {
			seen[m[1]] = true
		}
		return seen
	}
	for i := range 2 {
		if err := create(ctx, alpha, fmt.Sprintf("/registry/k%d", i), "v"); err != nil {
			t.Fatalf("alpha's key %d: %v", i, err)
		}
	}
	// At once, well within the idle time.
	if seen := tenants(); !seen["alpha"] || !seen["beta"] {
		t.Fatalf("tenants in the metrics before: %v, want alpha and beta", seen)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tenants()["alpha"] {
		if time.Now().After(deadline) {
			t.Fatalf("alpha, idle, still in the metrics after 10 s:\n%s", grepLines(scrape(t, px.MetricsAddress), `tenant="alpha"`))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * idle) // beta's watch, open, kept beta longer than that
	if !tenants()["beta"] {
		t.Errorf("beta, with a watch open, was forgotten")
	}
	if _, err := beta.Put(ctx, "/registry/w", "x"); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-events:
		if len(resp.Events) != 1 {
			t.Errorf("beta's watch after the put: %+v", resp)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("beta's watch got no event of its put")
	}

	// Forgotten, alpha is where it was.
	got, err := alpha.Get(ctx, "/registry/k1")
	if err != nil || len(got.Kvs) != 1 {
		t.Fatalf("alpha's key after it was forgotten: %v, %v", got, err)
	}
	err = create(ctx, alpha, "/registry/k2", "v")
	if !errors.Is(rpctypes.Error(err), rpctypes.ErrNoSpace) {
		t.Fatalf("alpha's third key, at its limit of 2, after it was forgotten: err = %v, want %v", err, rpctypes.ErrNoSpace)
	}
	if !tenants()["alpha"] {
		t.Errorf("alpha's requests after it was forgotten are not in the metrics")
	}
}

var tenantLabel = regexp.MustCompile(`(?m)^kplex_datastore_proxy_\w+\{.*tenant="([^"]+)".*\} `)

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
