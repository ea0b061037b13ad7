package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A tenant with maxWatches open has its next watch refused, with a reason
// that names the limit; another tenant is not limited by it; a watch that
// ends frees its place; the limit is read live from the config.
func TestMaxWatchesIsPerTenantAndLive(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		cfg := filepath.Join(t.TempDir(), "tenants.yaml")
		writeConfig(t, cfg, "tenants:\n  alpha: {maxWatches: 3}\n")
		px := proxytest.StartWith(t, b, func(o *app.Options) { o.TenantConfig = cfg })
		alpha, beta := px.Client(t, "alpha"), px.Client(t, "beta")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		// watch opens a watch on its own stream and waits until it is
		// created or refused.
		watch := func(c *clientv3.Client, key string) (clientv3.WatchChan, context.CancelFunc, error) {
			wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			wc := c.Watch(wctx, key, clientv3.WithCreatedNotify())
			select {
			case resp, ok := <-wc:
				if !ok {
					wcancel()
					return nil, nil, fmt.Errorf("watch %s closed before it was created", key)
				}
				if err := resp.Err(); err != nil {
					wcancel()
					return nil, nil, err
				}
				if resp.Created {
					// A refused watch is created, then canceled at once.
					select {
					case resp, ok := <-wc:
						if !ok || resp.Err() != nil {
							wcancel()
							return nil, nil, fmt.Errorf("watch %s ended at once: %v", key, resp.Err())
						}
					case <-time.After(300 * time.Millisecond):
					}
				}
				return wc, wcancel, nil
			case <-ctx.Done():
				wcancel()
				return nil, nil, ctx.Err()
			}
		}
		var cancels []context.CancelFunc
		defer func() {
			for _, c := range cancels {
				c()
			}
		}()
		for i := range 3 {
			_, c, err := watch(alpha, fmt.Sprintf("/registry/w%d", i))
			if err != nil {
				t.Fatalf("alpha's watch %d of 3: %v", i, err)
			}
			cancels = append(cancels, c)
		}
		if _, _, err := watch(alpha, "/registry/w3"); err == nil || !strings.Contains(err.Error(), "maxWatches") {
			t.Fatalf("alpha's 4th watch: err = %v, want one naming maxWatches", err)
		}
		for i := range 5 {
			_, c, err := watch(beta, fmt.Sprintf("/registry/w%d", i))
			if err != nil {
				t.Fatalf("beta (no limit) watch %d: %v", i, err)
			}
			cancels = append(cancels, c)
		}
		active, refused := watchGauges(t, px.MetricsAddress)
		if active["alpha"] != 3 || active["beta"] != 5 || refused["alpha"] != 1 {
			t.Fatalf("active watches %v, refused %v; want alpha 3, beta 5, alpha refused 1", active, refused)
		}

		// An ended watch frees its place (it ends on the proxy a moment
		// after the client cancels it).
		// watchSoon retries a watch for up to 10 s.
		watchSoon := func(key, what string) {
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, c, err := watch(alpha, key)
				if err == nil {
					cancels = append(cancels, c)
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %v", what, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		cancels[0]()
		watchSoon("/registry/again", "alpha's watch after one ended")

		// A raised limit applies without a restart.
		writeConfig(t, cfg, "tenants:\n  alpha: {maxWatches: 5}\n")
		watchSoon("/registry/raised", "alpha's 4th watch under a raised limit")

		// Every place comes back when the watches end: none leaks.
		for _, c := range cancels {
			c()
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			active, _ := watchGauges(t, px.MetricsAddress)
			if active["alpha"] == 0 && active["beta"] == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("active watches %v after every watch ended; want 0", active)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for i := range 5 {
			_, c, err := watch(alpha, fmt.Sprintf("/registry/after%d", i))
			if err != nil {
				t.Fatalf("alpha's watch %d of 5 after the others ended: %v", i, err)
			}
			defer c()
		}
	})
}

var (
	activeWatchesMetric  = regexp.MustCompile(`(?m)^kplex_datastore_proxy_active_watches\{tenant="([^"]+)"\} (\S+)`)
	refusedWatchesMetric = regexp.MustCompile(`(?m)^kplex_datastore_proxy_watches_refused_total\{tenant="([^"]+)"\} (\S+)`)
)

func watchGauges(t *testing.T, addr string) (active, refused map[string]float64) {
	t.Helper()
	body := scrape(t, addr)
	return metricByTenant(activeWatchesMetric, body), metricByTenant(refusedWatchesMetric, body)
}

// scrape returns the proxy's metrics page.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricByTenant reads a metric whose one label is the tenant.
func metricByTenant(re *regexp.Regexp, body string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] = v
	}
	return out
}
