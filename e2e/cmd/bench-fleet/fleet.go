package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"kplex.dev/cli/ports"
	"kplex.dev/cli/supervise"
	"kplex.dev/e2e/bench"
)

// shard is one kplex-syncer shard process.
type shard struct {
	name    string
	metrics int
	pidFile string
	own     bool // started by the bench (stopped at the end)
}

func (f *fleet) startShard(name string) (*shard, error) {
	free, err := ports.Free(1)
	if err != nil {
		return nil, err
	}
	s := &shard{name: name, metrics: free[0], pidFile: filepath.Join(f.l.Root, "run", "bench-"+name+".pid"), own: true}
	_, err = supervise.Start(supervise.Spec{
		Name: name, Path: filepath.Join(f.binDir, "kplex-syncer"), DieWithParent: true,
		LogPath: f.l.Log("bench-" + name), PidPath: s.pidFile,
		Args: []string{"--mode=shard", "--shard-name=" + name, "--host-kubeconfig=" + f.l.HostKubeconfig(), "--nats-url=" + f.natsURL,
			"--tenants-file=" + f.l.SyncerTenants(), fmt.Sprintf("--metrics-address=127.0.0.1:%d", s.metrics), "--profiling"},
	})
	if err != nil {
		return nil, err
	}
	f.shards = append(f.shards, s)
	return s, nil
}

func (s *shard) stop() {
	if s.own {
		_ = supervise.Stop(s.pidFile, 5*time.Second)
	}
}

func (s *shard) kill() error {
	_, pf, err := supervise.Inspect(s.pidFile)
	if err != nil {
		return err
	}
	return syscall.Kill(pf.PID, syscall.SIGKILL)
}

func (s *shard) get(path string) (string, int, error) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", s.metrics, path))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return b.String(), resp.StatusCode, err
}

func (s *shard) ready() bool {
	_, code, err := s.get("/readyz")
	return err == nil && code == http.StatusOK
}

func (s *shard) owned() map[string]bool {
	body, _, err := s.get("/metrics")
	out := map[string]bool{}
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `kplex_syncer_owned_tenant{`)
		if !ok || !strings.HasSuffix(rest, " 1") {
			continue
		}
		for _, kv := range strings.Split(strings.SplitN(rest, "}", 2)[0], ",") {
			if v, ok := strings.CutPrefix(kv, `tenant="`); ok {
				out[strings.TrimSuffix(v, `"`)] = true
			}
		}
	}
	return out
}

// settle waits until every shard is ready and every tenant of the
// registry has exactly one owner, stable for 2 s.
func (f *fleet) settle(ctx context.Context, registered []string) error {
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	stableSince := time.Time{}
	for time.Now().Before(deadline) {
		owners := map[string]string{}
		ok := true
		for _, s := range f.shards {
			if !s.ready() {
				ok = false
			}
			for tn := range s.owned() {
				if owners[tn] != "" {
					ok = false
				}
				owners[tn] = s.name
			}
		}
		ok = ok && len(owners) == len(registered)
		cur := fmt.Sprint(owners)
		if ok && cur == last {
			if time.Since(stableSince) >= 2*time.Second {
				return nil
			}
		} else {
			last, stableSince = cur, time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("shards did not settle: %s", last)
}

// register rewrites the shard registry to list only the given tenants.
func (f *fleet) register(names []string) error {
	type tenant struct {
		Name       string `json:"name"`
		Kubeconfig string `json:"kubeconfig"`
	}
	var reg struct {
		Tenants []tenant `json:"tenants"`
	}
	for _, n := range names {
		kc, _ := filepath.Abs(f.l.VClusterComponentKubeconfig(n, "syncer"))
		reg.Tenants = append(reg.Tenants, tenant{Name: n, Kubeconfig: kc})
	}
	b, err := yaml.Marshal(reg)
	if err != nil {
		return err
	}
	tmp := f.l.SyncerTenants() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, f.l.SyncerTenants())
}

// hostWatches is the number of WATCH requests open on the host API server.
func (f *fleet) hostWatches(ctx context.Context) (int, error) {
	raw, err := f.host.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "apiserver_longrunning_requests{") && strings.Contains(line, `verb="WATCH"`) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err == nil {
				total += v
			}
		}
	}
	return int(total), nil
}

func (f *fleet) watches(ctx context.Context) error {
	measure := func(label string, registered []string) (string, error) {
		if err := f.register(registered); err != nil {
			return "", err
		}
		time.Sleep(3 * time.Second) // the registry reload
		if err := f.settle(ctx, registered); err != nil {
			return "", err
		}
		time.Sleep(2 * time.Second)
		n, err := f.hostWatches(ctx)
		return fmt.Sprintf("| %s | %d |", label, n), err
	}
	var rows []string
	add := func(label string, registered []string) error {
		r, err := measure(label, registered)
		rows = append(rows, r)
		return err
	}
	one := f.tenants[:1]
	if err := add("1 shard, 1 tenant", one); err != nil {
		return err
	}
	if err := add(fmt.Sprintf("1 shard, %d tenants", len(f.tenants)), f.tenants); err != nil {
		return err
	}
	for i := 1; i <= 3; i++ {
		if _, err := f.startShard(fmt.Sprintf("shard-%d", i)); err != nil {
			return err
		}
	}
	if err := add(fmt.Sprintf("4 shards, %d tenants", len(f.tenants)), f.tenants); err != nil {
		return err
	}
	if err := add("4 shards, 1 tenant", one); err != nil {
		return err
	}
	if err := f.register(f.tenants); err != nil {
		return err
	}
	for _, s := range f.shards[2:] {
		s.stop()
	}
	f.shards = f.shards[:2]
	fmt.Println("### Host watch requests (all clients of the host API server)")
	fmt.Println()
	fmt.Println("| syncer | WATCH requests open |")
	fmt.Println("|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
	fmt.Println()
	return f.settle(ctx, f.tenants)
}

// probe creates one pod and returns how long until the tenant shows it
// Running.
func probe(ctx context.Context, c kubernetes.Interface, name string) (time.Duration, error) {
	start := time.Now()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
	if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	for time.Since(start) < 2*time.Minute {
		got, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && got.Status.Phase == corev1.PodRunning {
			return time.Since(start), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("probe pod %s not Running in 2 minutes", name)
}

func (f *fleet) fairness(ctx context.Context, flood int) error {
	quiet, busy := f.vc[f.tenants[1]], f.vc[f.tenants[0]]
	var alone, loaded []time.Duration
	for i := range 3 {
		d, err := probe(ctx, quiet, fmt.Sprintf("alone-%d", i))
		if err != nil {
			return err
		}
		alone = append(alone, d)
	}
	if _, err := busy.AppsV1().Deployments("default").Create(ctx, bench.Deployment(flood), metav1.CreateOptions{}); err != nil {
		return err
	}
	start := time.Now()
	time.Sleep(3 * time.Second)
	for i := range 3 {
		d, err := probe(ctx, quiet, fmt.Sprintf("loaded-%d", i))
		if err != nil {
			return err
		}
		loaded = append(loaded, d)
		time.Sleep(time.Second)
	}
	running := func() int {
		pods, err := busy.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=bench"})
		if err != nil {
			return 0
		}
		n := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				n++
			}
		}
		return n
	}
	doneAtProbe := running()
	for running() < flood && time.Since(start) < 20*time.Minute {
		time.Sleep(2 * time.Second)
	}
	floodTime := time.Since(start)
	fmt.Printf("### Fairness: one tenant rolls out %d pods, another creates one pod\n\n", flood)
	fmt.Println("| the quiet tenant's pod, create -> Running | runs | median | max |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| nothing else running | %s | %.2f s | %.2f s |\n", list(alone), median(alone).Seconds(), maxOf(alone).Seconds())
	fmt.Printf("| during the %d-pod rollout | %s | %.2f s | %.2f s |\n\n", flood, list(loaded), median(loaded).Seconds(), maxOf(loaded).Seconds())
	fmt.Printf("- delay added by the flood: median %.2f s, worst %.2f s (target <= 1 s); %d of the flood's pods were Running after the probes; the whole flood took %.0f s\n\n",
		(median(loaded) - median(alone)).Seconds(), (maxOf(loaded) - median(alone)).Seconds(), doneAtProbe, floodTime.Seconds())
	if err := busy.AppsV1().Deployments("default").Delete(ctx, "bench", metav1.DeleteOptions{}); err != nil {
		return err
	}
	for _, c := range []kubernetes.Interface{quiet, busy} {
		_ = c.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	}
	return bench.Cleanup(ctx, []bench.Target{{C: busy, NS: "default"}, {C: quiet, NS: "default"}})
}

func (f *fleet) failover(ctx context.Context, podsPer int) error {
	if err := f.settle(ctx, f.tenants); err != nil {
		return err
	}
	var targets []bench.Target
	for _, tn := range f.tenants {
		targets = append(targets, bench.Target{C: f.vc[tn], NS: "fleet"})
	}
	if _, err := bench.Rollout(ctx, targets, podsPer); err != nil {
		return err
	}
	victim, survivor := f.shards[0], f.shards[1]
	if len(f.shards[1].owned()) > len(victim.owned()) {
		victim, survivor = f.shards[1], f.shards[0]
	}
	lost := sortedKeys(boolKeys(victim.owned()))
	heapBefore, err := bench.LiveHeap(survivor.metrics)
	if err != nil {
		return err
	}
	killed := time.Now()
	if err := victim.kill(); err != nil {
		return err
	}
	var owned, ready time.Duration
	for time.Since(killed) < 2*time.Minute {
		mine := survivor.owned()
		all := true
		for _, tn := range lost {
			all = all && mine[tn]
		}
		if all && owned == 0 {
			owned = time.Since(killed)
		}
		if all && survivor.ready() {
			ready = time.Since(killed)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ready == 0 {
		return fmt.Errorf("the survivor did not take over %v in 2 minutes", lost)
	}
	// A new pod in every lost tenant runs.
	for _, tn := range lost {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s, err := f.vc[tn].AppsV1().Deployments("fleet").GetScale(ctx, "bench", metav1.GetOptions{})
			if err != nil {
				return err
			}
			s.Spec.Replicas = int32(podsPer + 1)
			_, err = f.vc[tn].AppsV1().Deployments("fleet").UpdateScale(ctx, "bench", s, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return err
		}
	}
	var probed time.Duration
	for time.Since(killed) < 3*time.Minute {
		all := true
		for _, tn := range lost {
			pods, err := f.vc[tn].CoreV1().Pods("fleet").List(ctx, metav1.ListOptions{})
			n := 0
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning {
					n++
				}
			}
			all = all && err == nil && n == podsPer+1
		}
		if all {
			probed = time.Since(killed)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	heapAfter, err := bench.LiveHeap(survivor.metrics)
	if err != nil {
		return err
	}
	moved := podsPer * len(lost)
	fmt.Printf("### Failover: kill -9 of a shard owning %d tenants (%v) with %d pods\n\n", len(lost), lost, moved)
	fmt.Println("| after the kill | time |")
	fmt.Println("|---|---|")
	fmt.Printf("| its tenants owned by the survivor | %.1f s |\n", owned.Seconds())
	fmt.Printf("| survivor ready: every tenant replayed and synced | %.1f s |\n", ready.Seconds())
	fmt.Printf("| a new pod in each of its tenants Running | %.1f s |\n\n", probed.Seconds())
	fmt.Printf("- survivor's live heap: %.1f -> %.1f MiB taking over %d pods: %.1f KB per synced pod\n",
		float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20), moved, float64(heapAfter-heapBefore)/float64(moved)/1000)
	return nil
}

func boolKeys(m map[string]bool) map[string]string {
	out := map[string]string{}
	for k := range m {
		out[k] = k
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func list(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return strings.Join(parts, ", ") + " s"
}
