// Command bench-lifecycle measures VirtualCluster lifecycle through
// kplex-operator's process runtime (make bench-lifecycle; figures in
// docs/benchmarks.md), on one local environment:
//
//   - create -> Ready, one at a time (p50/p99), and N created at once
//     (p50/p99, and when all are Ready);
//   - delete -> gone, one at a time;
//   - operator memory per tenant (with 0 and N tenants);
//   - idle memory per tenant of the whole platform with N tenants: each
//     tenant's own processes plus its share of the shared ones
//     (datastore-proxy, NATS, relay, shard, operator); the host cluster
//     (etcd, host apiserver, controller manager, scheduler, KWOK) is
//     reported apart: it is there without kplex.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/v1alpha1"
	"kplex.dev/cli/localenv"
	"kplex.dev/cli/vcluster"
	"kplex.dev/e2e/bench"
)

func main() {
	binDir := flag.String("bin-dir", "bin", "directory with the kplex binaries (make build)")
	serial := flag.Int("serial", 5, "virtual clusters created one at a time")
	burst := flag.Int("burst", 20, "virtual clusters created at once")
	idle := flag.Duration("idle", 90*time.Second, "how long the platform idles before memory is read")
	flag.Parse()
	if err := run(*binDir, *serial, *burst, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "bench-lifecycle:", err)
		os.Exit(1)
	}
}

func run(binDir string, serial, burst int, idle time.Duration) error {
	bin, err := filepath.Abs(binDir)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kplex-bench-lifecycle-")
	if err != nil {
		return err
	}
	l := localenv.Layout{Root: dir}
	opts := localenv.Options{Dir: dir, BinDir: bin, FreePorts: true, VClusters: []string{}, DieWithParent: true, Progress: os.Stderr}
	defer func() {
		_ = localenv.Down(dir, true, os.Stderr)
		_ = os.RemoveAll(dir)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := localenv.Up(ctx, opts); err != nil {
		return err
	}
	c, err := vcluster.New(l.HostKubeconfig(), "default")
	if err != nil {
		return err
	}
	time.Sleep(5 * time.Second)
	op0 := bench.Memories(l)["operator"]

	fmt.Printf("## bench-lifecycle (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	var one []time.Duration
	for i := range serial {
		name := fmt.Sprintf("s%d", i)
		d, err := createReady(ctx, c, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s Ready in %.2fs\n", name, d.Seconds())
		one = append(one, d)
	}
	fmt.Printf("- create -> Ready, one at a time (%d): p50 %.2fs, p99 %.2fs (target p50 <= 8 s)\n", serial, pct(one, 50), pct(one, 99))
	var dels []time.Duration
	for i := range serial {
		name := fmt.Sprintf("s%d", i)
		start := time.Now()
		if err := deleteGone(ctx, c, name); err != nil {
			return err
		}
		dels = append(dels, time.Since(start))
	}
	fmt.Printf("- delete -> gone (control plane, datastore keys, host namespace), one at a time (%d): p50 %.2fs, p99 %.2fs\n", serial, pct(dels, 50), pct(dels, 99))

	start := time.Now()
	times := make([]time.Duration, burst)
	errs := make([]error, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() { times[i], errs[i] = createReady(ctx, c, fmt.Sprintf("b%02d", i)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Printf("- %d created at once: create -> Ready p50 %.2fs, p99 %.2fs; all Ready %.1fs after the first create (target <= 90 s)\n",
		burst, pct(times, 50), pct(times, 99), time.Since(start).Seconds())

	fmt.Fprintf(os.Stderr, "idling %s before reading memory\n", idle)
	time.Sleep(idle)
	before := bench.CPUTimes(l)
	time.Sleep(30 * time.Second)
	bench.CPUReport(fmt.Sprintf("30 s idle with %d tenants", burst), before, bench.CPUTimes(l))
	mem := bench.Memories(l)
	report(mem, op0, burst)
	return nil
}

// createReady creates a VirtualCluster and returns the time until its
// Ready condition is True.
func createReady(ctx context.Context, c *vcluster.Client, name string) (time.Duration, error) {
	start := time.Now()
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace}}
	if err := c.Create(ctx, vc); err != nil {
		return 0, fmt.Errorf("create %s: %w", name, err)
	}
	for {
		got, err := c.Get(ctx, name)
		if err == nil && apimeta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionReady) {
			return time.Since(start), nil
		}
		if time.Since(start) > 10*time.Minute {
			return 0, fmt.Errorf("%s not Ready after 10 minutes", name)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func deleteGone(ctx context.Context, c *vcluster.Client, name string) error {
	vc, err := c.Get(ctx, name)
	if err != nil {
		return err
	}
	if err := c.Delete(ctx, vc); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	return c.WaitGone(wctx, name, nopWriter{})
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

func report(mem map[string]bench.Memory, op0 bench.Memory, n int) {
	host := map[string]bool{"etcd": true, "host-apiserver": true, "host-controller-manager": true, "host-scheduler": true, "kwok": true}
	var tenantPSS, tenantRSS, sharedPSS, hostPSS int64
	var shared []string
	for name, m := range mem {
		switch {
		case strings.HasPrefix(name, "vc-"):
			tenantPSS += m.PSS
			tenantRSS += m.RSS
		case host[name]:
			hostPSS += m.PSS
		default:
			sharedPSS += m.PSS
			shared = append(shared, fmt.Sprintf("%s %.0f", name, mib(m.PSS)))
		}
	}
	sort.Strings(shared)
	op := mem["operator"]
	fmt.Printf("- operator: %.1f MiB RSS with 0 tenants, %.1f MiB with %d: %.0f KiB per tenant\n", mib(op0.RSS), mib(op.RSS), n, float64(op.RSS-op0.RSS)/float64(n))
	fmt.Printf("- idle, %d tenants: tenant processes %.0f MiB PSS (%.0f MiB RSS) = %.1f MiB PSS per tenant; shared kplex components %.0f MiB PSS (%s) = %.1f MiB per tenant\n",
		n, mib(tenantPSS), mib(tenantRSS), mib(tenantPSS)/float64(n), mib(sharedPSS), strings.Join(shared, ", "), mib(sharedPSS)/float64(n))
	fmt.Printf("- idle memory per tenant, all kplex processes counted: %.1f MiB PSS (target <= 300 MiB; vCluster 570-586 MiB); the host cluster itself: %.0f MiB PSS\n",
		mib(tenantPSS+sharedPSS)/float64(n), mib(hostPSS))
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func pct(ds []time.Duration, p int) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1].Seconds()
}
