package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// create writes key the way kube-apiserver creates objects.
func create(ctx context.Context, c *clientv3.Client, key, value string) error {
	resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, value)).Else(clientv3.OpGet(key)).Commit()
	if err == nil && !resp.Succeeded {
		return fmt.Errorf("%s exists", key)
	}
	return err
}

func writeConfig(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestQuotasAreLiveAndPerTenant: a tenant past its key or byte quota gets
// etcd's "space exceeded", another tenant does not, and a raised limit in
// the reloaded config lets the first write again.
func TestQuotasAreLiveAndPerTenant(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "tenants.yaml")
	writeConfig(t, cfg, "tenants:\n  alpha: {maxKeys: 3}\n  gamma: {maxBytes: 100}\n")
	px := proxytest.StartWith(t, backend.Config{Kind: "sqlite"}, func(o *app.Options) { o.TenantConfig = cfg })
	alpha, beta, gamma := px.Client(t, "alpha"), px.Client(t, "beta"), px.Client(t, "gamma")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for i := range 3 {
		if err := create(ctx, alpha, fmt.Sprintf("/k%d", i), "v"); err != nil {
			t.Fatalf("alpha create %d within quota: %v", i, err)
		}
	}
	err := create(ctx, alpha, "/k3", "v")
	if !errors.Is(rpctypes.Error(err), rpctypes.ErrNoSpace) {
		t.Fatalf("alpha's 4th key: err = %v, want %v", err, rpctypes.ErrNoSpace)
	}
	for i := range 10 {
		if err := create(ctx, beta, fmt.Sprintf("/k%d", i), "v"); err != nil {
			t.Fatalf("beta (no quota) create %d: %v", i, err)
		}
	}
	if err := create(ctx, gamma, "/big", strings.Repeat("x", 200)); !errors.Is(rpctypes.Error(err), rpctypes.ErrNoSpace) {
		t.Fatalf("gamma's 200-byte value over a 100-byte quota: err = %v", err)
	}
	if err := create(ctx, gamma, "/small", "x"); err != nil {
		t.Fatalf("gamma's small value: %v", err)
	}

	// A delete frees room; a raised limit applies without a restart.
	cur, err := alpha.Get(ctx, "/k0")
	if err != nil || len(cur.Kvs) != 1 {
		t.Fatalf("get /k0: %v", err)
	}
	if _, err := alpha.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/k0"), "=", cur.Kvs[0].ModRevision)).
		Then(clientv3.OpDelete("/k0")).Else(clientv3.OpGet("/k0")).Commit(); err != nil {
		t.Fatal(err)
	}
	if err := create(ctx, alpha, "/k3", "v"); err != nil {
		t.Fatalf("alpha after a delete: %v", err)
	}
	writeConfig(t, cfg, "tenants:\n  alpha: {maxKeys: 10}\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := create(ctx, alpha, "/k4", "v")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("raised quota not applied after reload: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRateLimitIsPerTenant: a tenant limited to 20 requests/s is slowed
// and refused past its rate; an unlimited tenant at the same time is not.
func TestRateLimitIsPerTenant(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "tenants.yaml")
	writeConfig(t, cfg, "tenants:\n  slow: {requestsPerSecond: 20, burst: 5}\n")
	px := proxytest.StartWith(t, backend.Config{Kind: "sqlite"}, func(o *app.Options) { o.TenantConfig = cfg })
	slow, fast := px.Client(t, "slow"), px.Client(t, "fast")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	run := func(c *clientv3.Client) (ok, refused int64, took time.Duration) {
		start := time.Now()
		var okN, refusedN atomic.Int64
		var wg sync.WaitGroup
		for w := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					_, err := c.Get(ctx, fmt.Sprintf("/w%d-%d", w, i))
					switch {
					case err == nil:
						okN.Add(1)
					case errors.Is(rpctypes.Error(err), rpctypes.ErrTooManyRequests):
						refusedN.Add(1)
					default:
						t.Errorf("unexpected error: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		return okN.Load(), refusedN.Load(), time.Since(start)
	}
	var slowOK, slowRefused, fastOK int64
	var slowTook, fastTook time.Duration
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); slowOK, slowRefused, slowTook = run(slow) }()
	go func() { defer wg.Done(); fastOK, _, fastTook = run(fast) }()
	wg.Wait()
	t.Logf("slow: %d ok, %d refused in %v; fast: %d ok in %v", slowOK, slowRefused, slowTook, fastOK, fastTook)
	// 100 requests at 20/s (+5 burst) cannot all pass within a second.
	if slowRefused == 0 && slowTook < 3*time.Second {
		t.Fatalf("rate limit not applied: 100 requests in %v, none refused", slowTook)
	}
	if fastOK != 100 {
		t.Fatalf("unlimited tenant: %d of 100 ok", fastOK)
	}
	if fastTook > slowTook {
		t.Fatalf("unlimited tenant (%v) slower than the limited one (%v)", fastTook, slowTook)
	}
}

// A request that waits for its tenant's rate and whose caller gives up
// meanwhile is counted as canceled, not as refused: every such request
// was counted "too many requests" (ResourceExhausted) in the metrics.
func TestARequestCanceledWhileRateLimitedIsCanceled(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "tenants.yaml")
	writeConfig(t, cfg, "tenants:\n  slow: {requestsPerSecond: 2, burst: 1}\n")
	px := proxytest.StartWith(t, backend.Config{Kind: "sqlite"}, func(o *app.Options) { o.TenantConfig = cfg })
	slow := px.Client(t, "slow")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := slow.Get(ctx, "/a"); err != nil { // the burst's token
		t.Fatal(err)
	}
	// The next token is half a second away: the caller gives up first.
	short, stop := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, stop)
	if _, err := slow.Get(short, "/a"); err == nil {
		t.Fatal("a get canceled while it waited for a token succeeded")
	}
	const method = `method="/etcdserverpb.KV/Range",tenant="slow"`
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := scrape(t, px.MetricsAddress)
		if strings.Contains(body, `kplex_datastore_proxy_requests_total{code="ResourceExhausted",`+method+`}`) {
			t.Fatal("the canceled get was counted as refused (ResourceExhausted)")
		}
		if strings.Contains(body, `kplex_datastore_proxy_requests_total{code="Canceled",`+method+`} 1`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no canceled range counted for slow:\n%s", grepLines(body, "requests_total"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
