// Command bench-sync measures kplex's sync path against the same workload
// run directly on the host, in one run on one local environment
// (make bench-sync; figures in docs/benchmarks.md):
//
//   - a 50-pod Deployment in one tenant vs directly on the host: time from
//     create until every pod is Running (median of --rounds);
//   - 1,000 pods across 10 tenants vs 1,000 pods in 10 host namespaces:
//     total time and p50/p99 per-pod latency (first seen -> Running);
//   - the syncer shard's memory per synced pod (RSS growth / pods).
//
// Both sides' controller managers run with the same raised client limits
// (cli/localenv), so a rate limit does not hide the difference.
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
	tenants := flag.Int("tenants", 10, "tenants (and host namespaces) of the large run")
	pods := flag.Int("pods", 1000, "pods of the large run, spread over the tenants")
	small := flag.Int("small", 50, "pods of the single Deployment")
	rounds := flag.Int("rounds", 3, "rounds of the single-Deployment comparison")
	nodes := flag.Int("nodes", 10, "simulated host nodes")
	keep := flag.Bool("keep", false, "leave the environment running (its directory is printed)")
	flag.Parse()
	if err := run(*binDir, *tenants, *pods, *small, *rounds, *nodes, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench-sync:", err)
		os.Exit(1)
	}
}

func run(binDir string, nTenants, nPods, small, rounds, nodes int, keep bool) error {
	bin, err := filepath.Abs(binDir)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kplex-bench-sync-")
	if err != nil {
		return err
	}
	vcs := make([]string, nTenants)
	for i := range vcs {
		vcs[i] = fmt.Sprintf("t%d", i)
	}
	opts := localenv.Options{Dir: dir, BinDir: bin, FreePorts: true, Nodes: nodes, VClusters: vcs, DieWithParent: !keep, Progress: os.Stderr}
	if !keep {
		defer func() {
			_ = localenv.Down(dir, true, os.Stderr)
			_ = os.RemoveAll(dir)
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	fmt.Fprintf(os.Stderr, "bringing up a host with %d nodes and %d virtual clusters in %s\n", nodes, nTenants, dir)
	if err := localenv.Up(ctx, opts); err != nil {
		return err
	}
	l := localenv.Layout{Root: dir}
	host, err := bench.Client(l.HostKubeconfig())
	if err != nil {
		return err
	}
	tcs := make([]kubernetes.Interface, nTenants)
	for i, vc := range vcs {
		if tcs[i], err = bench.Client(l.VClusterKubeconfig(vc)); err != nil {
			return err
		}
	}
	baseRSS, err := bench.ShardRSS(l)
	if err != nil {
		return err
	}
	baseHeap, err := bench.ShardLiveHeap(l)
	if err != nil {
		return err
	}

	fmt.Printf("## Sync benchmark (%s, %d cores, %d KWOK nodes)\n\n", time.Now().UTC().Format("2006-01-02"), bench.NumCPU(), nodes)
	fmt.Printf("### One Deployment of %d pods: create -> all Running (median of %d rounds)\n\n", small, rounds)
	var direct, viaKplex []time.Duration
	for r := range rounds {
		ns := fmt.Sprintf("bench-%d", r)
		d, err := bench.Rollout(ctx, []bench.Target{{C: host, NS: ns}}, small)
		if err != nil {
			return fmt.Errorf("direct round %d: %w", r, err)
		}
		direct = append(direct, d.Total)
		k, err := bench.Rollout(ctx, []bench.Target{{C: tcs[0], NS: ns}}, small)
		if err != nil {
			return fmt.Errorf("kplex round %d: %w", r, err)
		}
		viaKplex = append(viaKplex, k.Total)
		fmt.Fprintf(os.Stderr, "round %d: direct %s, kplex %s\n", r, d.Total, k.Total)
		if err := bench.Cleanup(ctx, []bench.Target{{C: host, NS: ns}, {C: tcs[0], NS: ns}}); err != nil {
			return err
		}
	}
	md, mk := median(direct), median(viaKplex)
	fmt.Println("| path | rounds | median | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| directly on the host | %s | %.2f s | 1.00 |\n", list(direct), md.Seconds())
	fmt.Printf("| kplex tenant | %s | %.2f s | %.2fx |\n\n", list(viaKplex), mk.Seconds(), mk.Seconds()/md.Seconds())

	fmt.Printf("### %d pods across %d tenants vs %d host namespaces\n\n", nPods, nTenants, nTenants)
	per := nPods / nTenants
	var hostTargets, kplexTargets []bench.Target
	for i := range nTenants {
		hostTargets = append(hostTargets, bench.Target{C: host, NS: fmt.Sprintf("bulk-%d", i)})
		kplexTargets = append(kplexTargets, bench.Target{C: tcs[i], NS: "bulk"})
	}
	cpu0 := bench.CPUTimes(l)
	d, err := bench.Rollout(ctx, hostTargets, per)
	if err != nil {
		return fmt.Errorf("direct bulk: %w", err)
	}
	cpu1 := bench.CPUTimes(l)
	if err := bench.Cleanup(ctx, hostTargets); err != nil {
		return err
	}
	cpu2 := bench.CPUTimes(l)
	k, err := bench.Rollout(ctx, kplexTargets, per)
	if err != nil {
		return fmt.Errorf("kplex bulk: %w", err)
	}
	cpu3 := bench.CPUTimes(l)
	loadedRSS, err := bench.ShardRSS(l)
	if err != nil {
		return err
	}
	loadedHeap, err := bench.ShardLiveHeap(l)
	if err != nil {
		return err
	}
	fmt.Println("| path | all Running | ratio | p50 per pod | p99 per pod |")
	fmt.Println("|---|---|---|---|---|")
	fmt.Printf("| directly on the host | %.2f s | 1.00 | %.2f s | %.2f s |\n", d.Total.Seconds(), d.P(50).Seconds(), d.P(99).Seconds())
	fmt.Printf("| kplex (%d tenants) | %.2f s | %.2fx | %.2f s | %.2f s |\n\n", nTenants, k.Total.Seconds(), k.Total.Seconds()/d.Total.Seconds(), k.P(50).Seconds(), k.P(99).Seconds())
	bench.CPUReport("directly on the host", cpu0, cpu1)
	bench.CPUReport("through kplex", cpu2, cpu3)
	fmt.Println()

	synced := per * nTenants
	fmt.Printf("### Syncer shard memory\n\n")
	fmt.Printf("- RSS with %d tenants and no pods: %.1f MiB; with %d synced pods: %.1f MiB\n", nTenants, mib(baseRSS), synced, mib(loadedRSS))
	fmt.Printf("- per synced pod: %.1f KB of RSS growth, %.1f KB of live heap growth (%.1f -> %.1f MiB, after a GC)\n",
		float64(loadedRSS-baseRSS)/float64(synced)/1000, float64(loadedHeap-baseHeap)/float64(synced)/1000, mib(baseHeap), mib(loadedHeap))
	if err := bench.Cleanup(ctx, kplexTargets); err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(os.Stderr, "environment kept in %s\n", dir)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func list(ds []time.Duration) string {
	out := ""
	for i, d := range ds {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%.2f", d.Seconds())
	}
	return out + " s"
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
