package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"kplex.dev/datastore-proxy/internal/embedetcd"
)

// startEtcd runs a real etcd for the test and returns a client of it.
func startEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	url, stop, err := embedetcd.Start(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Concurrent calls share transactions, and each still gets its own
// result: of many creates of one key exactly one succeeds, every create of
// a key of its own succeeds, and every read sees what was written before
// it started.
func TestConcurrentCallsShareBatches(t *testing.T) {
	c := startEtcd(t)
	reg := prometheus.NewRegistry()
	b := New(c, &sync.WaitGroup{}, 0, 0, reg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := b.Create(ctx, "/r/before", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	const n = 64
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, exists, readOK := 0, 0, 0
	var errs []error
	for i := range n {
		wg.Go(func() {
			_, err := b.Create(ctx, "/r/same", []byte(fmt.Sprint(i)), 0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, server.ErrKeyExists):
				exists++
			default:
				errs = append(errs, err)
			}
		})
		wg.Go(func() {
			if _, err := b.Create(ctx, fmt.Sprintf("/r/own/%d", i), []byte("v"), 0); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
		wg.Go(func() {
			_, kv, err := b.Get(ctx, "/r/before", 0, false)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if kv != nil && string(kv.Value) == "v" {
				readOK++
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("calls failed: %v", errs)
	}
	if won != 1 || exists != n-1 || readOK != n {
		t.Fatalf("creates of one key: %d succeeded, %d found it existing (want 1, %d); reads that saw the earlier write: %d of %d", won, exists, n-1, readOK, n)
	}
	_, own, err := b.List(ctx, "/r/own/", "/r/own0", 0, 0, true)
	if err != nil || len(own) != n {
		t.Fatalf("list of the keys created apart: %d keys, err %v; want %d", len(own), err, n)
	}

	calls, batches := batchCounts(t, reg)
	t.Logf("%d calls in %d batches", calls, batches)
	if calls < 3*n || batches >= calls {
		t.Fatalf("%d calls went in %d batches: want at least %d calls, fewer batches than calls", calls, batches, 3*n)
	}
}

// When etcd refuses a batch for one call's sake, that call alone gets the
// error and the others are applied.
func TestARefusedBatchIsRetriedAlone(t *testing.T) {
	c := startEtcd(t)
	bad := putCall(context.Background(), "/r/bad", clientv3.WithLease(424242))
	good := putCall(context.Background(), "/r/good")
	sendOneBatch(c, bad, good)
	if !errors.Is(rpctypes.Error(bad.err), rpctypes.ErrLeaseNotFound) {
		t.Fatalf("the call with an unknown lease: err %v, want lease not found", bad.err)
	}
	if good.err != nil || good.rev == 0 {
		t.Fatalf("the other call of the refused batch: rev %d, err %v; want it applied", good.rev, good.err)
	}
	resp, err := c.Get(context.Background(), "/r/good")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the other call's key: %v, err %v", resp, err)
	}
}

// putCall is a call that puts "v" at key.
func putCall(ctx context.Context, key string, opts ...clientv3.OpOption) *call {
	return &call{ctx: ctx, op: clientv3.OpPut(key, "v", opts...), write: key, done: make(chan struct{})}
}

// sendOneBatch sends calls to etcd as one batch and waits for them all.
func sendOneBatch(c *clientv3.Client, calls ...*call) {
	b := newBatcher(c, 1, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x"}))
	bt := &batch{writes: map[string]bool{}}
	for _, cl := range calls {
		bt.add(cl)
	}
	b.send(bt)
	for _, cl := range calls {
		<-cl.done
	}
}

// batchCounts sums the calls and batches the histogram recorded.
func batchCounts(t *testing.T, reg *prometheus.Registry) (calls, batches int) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kplex_datastore_proxy_etcd_batch_calls" {
			continue
		}
		for _, m := range mf.GetMetric() {
			calls += int(m.GetHistogram().GetSampleSum())
			batches += int(m.GetHistogram().GetSampleCount())
		}
	}
	return calls, batches
}

// A call whose caller gave up before its batch went out is not sent: as
// with a request whose context ended before gRPC sent it, its caller's
// error means it was not applied.
func TestAnAbandonedCallIsNotSent(t *testing.T) {
	c := startEtcd(t)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	abandoned := putCall(gone, "/r/abandoned")
	live := putCall(context.Background(), "/r/live")
	sendOneBatch(c, abandoned, live)
	if !errors.Is(abandoned.err, context.Canceled) || live.err != nil {
		t.Fatalf("abandoned call: err %v (want canceled); live call: err %v", abandoned.err, live.err)
	}
	for key, want := range map[string]int{"/r/abandoned": 0, "/r/live": 1} {
		resp, err := c.Get(context.Background(), key)
		if err != nil || len(resp.Kvs) != want {
			t.Fatalf("%s: %d keys stored (want %d), err %v", key, len(resp.Kvs), want, err)
		}
	}
}

// Two changes of one tenant never share a revision, as kube-apiserver's
// watch cache assumes; changes of different tenants still share
// transactions.
func TestATenantsWritesNeverShareARevision(t *testing.T) {
	c := startEtcd(t)
	reg := prometheus.NewRegistry()
	b := New(c, &sync.WaitGroup{}, 0, 0, reg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const tenants, perTenant = 8, 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	revs := map[string]map[int64]string{} // tenant -> revision -> key
	var errs []error
	for tn := range tenants {
		tenant := fmt.Sprintf("t%d", tn)
		revs[tenant] = map[int64]string{}
		for i := range perTenant {
			wg.Go(func() {
				key := fmt.Sprintf("/kplex/%s/k%d", tenant, i)
				rev, err := b.Create(ctx, key, []byte("v"), 0)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if other, ok := revs[tenant][rev]; ok {
					errs = append(errs, fmt.Errorf("%s and %s were written at the same revision %d", other, key, rev))
				}
				revs[tenant][rev] = key
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d writes: %v", len(errs), tenants*perTenant, errs[:min(len(errs), 3)])
	}
	calls, batches := batchCounts(t, reg)
	t.Logf("%d writes in %d transactions", calls, batches)
	if calls != tenants*perTenant || batches >= calls {
		t.Fatalf("%d writes went in %d transactions: want %d writes, fewer transactions than writes", calls, batches, tenants*perTenant)
	}
}

func TestWriteGroup(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"/kplex/a/registry/pods/x", "/kplex/a/"},
		{"/kplex/a/", "/kplex/a/"},
		{"/kplex/tenant-2/x/y/z", "/kplex/tenant-2/"},
		{"/kplex/a", "/kplex/a"},
		{"/r/same", "/r/same"},
		{"", ""},
	} {
		if got := writeGroup(tc.key); got != tc.want {
			t.Errorf("writeGroup(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// A write waits for the next batch only while another tenant's write is
// pending, as only then could a write join its batch: one tenant's writes
// go at once even while the batches in flight are at their limit, and
// another tenant's pending write makes the next one wait for a batch.
func TestAWriteWaitsForABatchOnlyBesideAnotherTenantsWrite(t *testing.T) {
	c := startEtcd(t)
	b := newBatcher(c, 1, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x"}))
	b.mu.Lock()
	b.inflight = b.maxInflight // as if a batch were in flight
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, rev, err := b.do(ctx, clientv3.OpPut("/kplex/a/k", "v"), "/kplex/a/k", 8); err != nil || rev == 0 {
		t.Fatalf("tenant a's write, no other tenant writing: rev %d, err %v; want it sent at once", rev, err)
	}

	b.mu.Lock()
	b.startWriteLocked(writeGroup("/kplex/b/k")) // tenant b's write pending
	b.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, _, err := b.do(ctx, clientv3.OpPut("/kplex/a/k2", "v"), "/kplex/a/k2", 8)
		done <- err
	}()
	waitFor(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.queue) == 1
	}, "tenant a's write beside tenant b's to wait in a batch")
	select {
	case err := <-done:
		t.Fatalf("tenant a's write beside tenant b's returned (err %v) while no batch could go", err)
	default:
	}
	b.mu.Lock()
	b.inflight-- // the batch in flight returns
	next := b.takeLocked()
	b.mu.Unlock()
	go b.run(next)
	if err := <-done; err != nil {
		t.Fatalf("tenant a's write in the next batch: %v", err)
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A read that finds no batch in flight goes to etcd at once as a range of
// its own, not as a transaction of one (which costs etcd more and the
// caller a hop to another goroutine); the batches' histogram counts it as
// a batch of one.
func TestALoneReadIsARange(t *testing.T) {
	var mu sync.Mutex
	var methods []string
	record := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasPrefix(method, "/etcdserverpb.KV/") {
			mu.Lock()
			methods = append(methods, method)
			mu.Unlock()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	c := interceptedClient(t, record)
	reg := prometheus.NewRegistry()
	b := New(c, &sync.WaitGroup{}, 0, 0, reg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rev, err := b.Create(ctx, "/r/k", []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	methods = nil
	mu.Unlock()

	got, kv, err := b.Get(ctx, "/r/k", 0, false)
	if err != nil || kv == nil || string(kv.Value) != "v" || got < rev {
		t.Fatalf("Get = %d, %+v, %v; want the value v at revision %d or later", got, kv, err, rev)
	}
	if _, n, err := b.Count(ctx, "/r/", "/r0", 0); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v; want 1", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"/etcdserverpb.KV/Range", "/etcdserverpb.KV/Range"}; !slices.Equal(methods, want) {
		t.Errorf("etcd was sent %q; want %q", methods, want)
	}
	if calls, batches := batchCounts(t, reg); calls != 3 || batches != 3 {
		t.Errorf("the histogram counts %d calls in %d batches; want the create, the get and the count alone, 3 in 3", calls, batches)
	}
}

// interceptedClient is a client of a real etcd started for the test whose
// unary calls go through intercept.
func interceptedClient(t *testing.T, intercept grpc.UnaryClientInterceptor) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: startEtcd(t).Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(intercept)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
