package tenantbackend_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"kplex.dev/datastore-proxy/keyspace"
	"kplex.dev/datastore-proxy/quota"
	"kplex.dev/datastore-proxy/tenantbackend"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// BenchmarkFirstWritesAfterRestart measures what a proxy restart costs
// tenants with key or byte limits: the restarted proxy has no usage
// counts, and each such tenant's first write waits for its count, while
// every other tenant's count reads the store too. 100 tenants of 2,000
// keys of 1 KiB (200 MiB) on etcd in this process; each tenant then
// writes once, all at the same moment; the figures are the latency of
// those first writes:
//
//	cd datastore-proxy && go test ./tenantbackend -run '^$' -bench FirstWritesAfterRestart -benchtime 3x
func BenchmarkFirstWritesAfterRestart(b *testing.B) {
	const tenants, keys, valueSize = 100, 2000, 1024
	ctx, inner, url := etcdBackend(b)
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	spaces := make([]keyspace.Space, tenants)
	value := strings.Repeat("v", valueSize)
	for t := range tenants {
		if spaces[t], err = keyspace.ForTenant(fmt.Sprintf("t%03d", t)); err != nil {
			b.Fatal(err)
		}
		for from := 0; from < keys; from += 100 {
			var ops []clientv3.Op
			for i := from; i < from+100; i++ {
				ops = append(ops, clientv3.OpPut(spaces[t].Key(fmt.Sprintf("/registry/configmaps/ns/c%06d", i)), value))
			}
			if _, err := c.Txn(ctx).Then(ops...).Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	limits := func() tenantconfig.Limits { return tenantconfig.Limits{MaxKeys: 1 << 30} }
	var all []time.Duration
	round := 0
	for b.Loop() {
		// A restart: every tenant's backend and usage new.
		tbs := make([]*tenantbackend.Backend, tenants)
		for t := range tenants {
			tbs[t] = tenantbackend.New(inner, spaces[t], limits, &quota.Usage{})
		}
		lat := make([]time.Duration, tenants)
		errs := make([]error, tenants)
		var writers sync.WaitGroup
		for t := range tenants {
			writers.Go(func() {
				start := time.Now()
				wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
				defer wcancel()
				_, errs[t] = tbs[t].Create(wctx, fmt.Sprintf("/registry/configmaps/ns/after-%d", round), []byte("v"), 0)
				lat[t] = time.Since(start)
			})
		}
		writers.Wait()
		for t, err := range errs {
			if err != nil {
				b.Fatalf("tenant %d's first write: %v", t, err)
			}
		}
		all = append(all, lat...)
		round++
	}
	slices.Sort(all)
	b.ReportMetric(all[len(all)/2].Seconds()*1000, "p50-ms")
	b.ReportMetric(all[len(all)*99/100].Seconds()*1000, "p99-ms")
	b.ReportMetric(all[len(all)-1].Seconds()*1000, "max-ms")
}
