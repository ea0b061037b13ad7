// Command bench-fleet measures the syncer fleet (make bench-fleet; figures
// in docs/benchmarks.md), on one local environment:
//
//   - host watch requests open on the host API server with 1 vs 4 shards
//     and 1 vs all tenants registered (target: constant);
//   - fairness: one tenant rolling out many pods, another tenant's single
//     pod, time to Running against the same pod with nothing else going on
//     (target: at most 1 s more);
//   - failover: kill -9 of the shard owning the most tenants, with pods in
//     all of them: time until its tenants are owned again, until the
//     survivor is ready (every tenant replayed and synced), and until a new
//     pod in each of them runs (target <= 10 s, goal 5 s); the survivor's
//     live heap per synced pod.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"k8s.io/client-go/kubernetes"

	"kplex.dev/cli/localenv"
	"kplex.dev/e2e/bench"
)

func main() {
	binDir := flag.String("bin-dir", "bin", "directory with the kplex binaries (make build)")
	nTenants := flag.Int("tenants", 10, "tenants")
	podsPer := flag.Int("pods-per-tenant", 100, "pods in each tenant during the failover")
	flood := flag.Int("flood", 2000, "pods the busy tenant rolls out in the fairness run")
	nodes := flag.Int("nodes", 12, "simulated host nodes (250 pods each)")
	flag.Parse()
	if err := run(*binDir, *nTenants, *podsPer, *flood, *nodes); err != nil {
		fmt.Fprintln(os.Stderr, "bench-fleet:", err)
		os.Exit(1)
	}
}

type fleet struct {
	l       localenv.Layout
	binDir  string
	natsURL string
	host    kubernetes.Interface
	tenants []string
	vc      map[string]kubernetes.Interface
	shards  []*shard
}

func run(binDir string, nTenants, podsPer, flood, nodes int) error {
	bin, err := filepath.Abs(binDir)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kplex-bench-fleet-")
	if err != nil {
		return err
	}
	f := &fleet{l: localenv.Layout{Root: dir}, binDir: bin, vc: map[string]kubernetes.Interface{}}
	for i := range nTenants {
		f.tenants = append(f.tenants, fmt.Sprintf("t%d", i))
	}
	opts := localenv.Options{Dir: dir, BinDir: bin, FreePorts: true, Nodes: nodes, VClusters: f.tenants, DieWithParent: true, Progress: os.Stderr}
	defer func() {
		for _, s := range f.shards {
			s.stop()
		}
		_ = localenv.Down(dir, true, os.Stderr)
		_ = os.RemoveAll(dir)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if err := localenv.Up(ctx, opts); err != nil {
		return err
	}
	st, err := localenv.LoadState(f.l)
	if err != nil {
		return err
	}
	f.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", st.Ports[localenv.PortNATS])
	if f.host, err = bench.Client(f.l.HostKubeconfig()); err != nil {
		return err
	}
	for _, tn := range f.tenants {
		if f.vc[tn], err = bench.Client(f.l.VClusterKubeconfig(tn)); err != nil {
			return err
		}
	}
	f.shards = []*shard{{name: "shard-0", metrics: st.Ports[localenv.PortShardMetrics], pidFile: f.l.Pid("syncer-shard-0")}}

	fmt.Printf("## Fleet benchmark (%s, %d cores, %d KWOK nodes, %d tenants)\n\n", time.Now().UTC().Format("2006-01-02"), bench.NumCPU(), nodes, nTenants)
	if err := f.watches(ctx); err != nil {
		return fmt.Errorf("watches: %w", err)
	}
	if err := f.fairness(ctx, flood); err != nil {
		return fmt.Errorf("fairness: %w", err)
	}
	if err := f.failover(ctx, podsPer); err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
