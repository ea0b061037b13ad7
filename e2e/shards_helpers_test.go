package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/cli/localenv"
	"kplex.dev/cli/ports"
	"kplex.dev/cli/supervise"
	"kplex.dev/e2e/framework"
)

// shardProc is one syncer shard of the test: shard-0 is the environment's,
// the others the test starts.
type shardProc struct {
	name    string
	metrics int
	pidFile string
	proc    *framework.Process
}

func startShard(t *testing.T, env *framework.Env, name string) *shardProc {
	t.Helper()
	st, err := localenv.LoadState(env.Layout)
	if err != nil {
		t.Fatal(err)
	}
	free, err := ports.Free(1)
	if err != nil {
		t.Fatal(err)
	}
	p := framework.StartProcess(t, env.Dir, "test-"+name, "kplex-syncer",
		"--mode=shard", "--shard-name="+name,
		"--host-kubeconfig="+env.Layout.HostKubeconfig(),
		fmt.Sprintf("--nats-url=nats://127.0.0.1:%d", st.Ports[localenv.PortNATS]),
		"--tenants-file="+env.Layout.SyncerTenants(),
		fmt.Sprintf("--metrics-address=127.0.0.1:%d", free[0]),
		"--patrol-interval=10s")
	return &shardProc{name: name, metrics: free[0], pidFile: p.Spec.PidPath, proc: p}
}

func envShard(t *testing.T, env *framework.Env) *shardProc {
	st, err := localenv.LoadState(env.Layout)
	if err != nil {
		t.Fatal(err)
	}
	return &shardProc{name: "shard-0", metrics: st.Ports[localenv.PortShardMetrics], pidFile: env.Layout.Pid("syncer-shard-0")}
}

func (s *shardProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	_, pf, err := supervise.Inspect(s.pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pf.PID, sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, s.name, err)
	}
}

// owned lists the tenants a shard reports owning; an error if it does not
// answer (dead or frozen).
func (s *shardProc) owned(ctx context.Context) ([]string, error) {
	m, err := s.epochs(ctx)
	out := make([]string, 0, len(m))
	for tn := range m {
		out = append(out, tn)
	}
	sort.Strings(out)
	return out, err
}

// epochs maps each tenant a shard owns to its lease epoch.
func (s *shardProc) epochs(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(s.metrics)+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `kplex_syncer_owned_tenant{`)
		if !ok || !strings.HasSuffix(line, " 1") {
			continue
		}
		var tenant, epoch string
		for _, kv := range strings.Split(strings.SplitN(rest, "}", 2)[0], ",") {
			if v, ok := strings.CutPrefix(kv, `tenant="`); ok {
				tenant = strings.TrimSuffix(v, `"`)
			}
			if v, ok := strings.CutPrefix(kv, `epoch="`); ok {
				epoch = strings.TrimSuffix(v, `"`)
			}
		}
		out[tenant] = epoch
	}
	return out, sc.Err()
}

// stableOwners waits until every tenant has one owner and the owners stay
// the same over a few heartbeats (rebalancing is done).
func stableOwners(t *testing.T, shards []*shardProc, tenants []string, timeout time.Duration) map[string]string {
	t.Helper()
	var own map[string]string
	framework.Eventually(t, timeout, "owners settle", func(ctx context.Context) error {
		first, err := owners(ctx, shards, tenants)
		if err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		again, err := owners(ctx, shards, tenants)
		if err != nil {
			return err
		}
		for tn := range first {
			if again[tn] != first[tn] {
				return fmt.Errorf("still moving: %v -> %v", first, again)
			}
		}
		own = again
		return nil
	}, nil)
	return own
}

// owners maps each tenant to the one answering shard that owns it, and
// fails if a tenant has no owner or two.
func owners(ctx context.Context, shards []*shardProc, tenants []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range shards {
		ts, err := s.owned(ctx)
		if err != nil {
			continue // dead or frozen: owns nothing it can act on
		}
		for _, tn := range ts {
			if prev, dup := out[tn]; dup {
				return nil, fmt.Errorf("tenant %s owned by %s and %s", tn, prev, s.name)
			}
			out[tn] = s.name
		}
	}
	for _, tn := range tenants {
		if out[tn] == "" {
			return nil, fmt.Errorf("tenant %s has no owner (%v)", tn, out)
		}
	}
	return out, nil
}

func shardOf(shards []*shardProc, name string) *shardProc {
	for _, s := range shards {
		if s.name == name {
			return s
		}
	}
	return nil
}

// writesBy lists host objects of a namespace a field manager wrote at or
// after since.
func writesBy(ctx context.Context, host kubernetes.Interface, ns, manager string, since time.Time) ([]string, error) {
	var out []string
	pods, err := host.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, p := range pods.Items {
		for _, mf := range p.ManagedFields {
			if mf.Manager == manager && mf.Time != nil && !mf.Time.Time.Before(since) {
				out = append(out, "pod "+p.Name+" at "+mf.Time.String())
			}
		}
	}
	secrets, err := host.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, s := range secrets.Items {
		for _, mf := range s.ManagedFields {
			if mf.Manager == manager && mf.Time != nil && !mf.Time.Time.Before(since) {
				out = append(out, "secret "+s.Name+" at "+mf.Time.String())
			}
		}
	}
	return out, nil
}
