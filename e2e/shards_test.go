package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/cli/localenv"
	"kplex.dev/cli/ports"
	"kplex.dev/e2e/framework"
)

// TestSyncerShards runs four tenants on three shards: each tenant has
// exactly one owner; kill -9 of an owner during a 200-pod rollout hands
// its tenants over within 10 s and every pod converges with no duplicate
// or orphan; a
// SIGSTOPped owner is replaced and, resumed, writes nothing more for the
// tenant; a fourth shard takes only tenants that must move.
func TestSyncerShards(t *testing.T) {
	tenants := []string{"t1", "t2", "t3", "t4"}
	env := framework.Start(t, func(o *localenv.Options) { o.VClusters = tenants })
	ctx := context.Background()
	host := env.Host(t)
	vc := map[string]kubernetes.Interface{}
	for _, tn := range tenants {
		vc[tn] = env.VCluster(t, tn)
	}
	shards := []*shardProc{envShard(t, env), startShard(t, env, "shard-1"), startShard(t, env, "shard-2")}
	own := stableOwners(t, shards, tenants, 45*time.Second)
	t.Logf("owners with 3 shards: %v", own)
	for _, tn := range tenants {
		if _, err := vc[tn].AppsV1().Deployments("default").Create(ctx, deployment("web", 10), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range tenants {
		framework.Eventually(t, 90*time.Second, tn+": 10 pods", func(ctx context.Context) error {
			return converged(ctx, vc[tn], host, tn, "default", "web", 10)
		}, describeSync(env, t, tn))
	}

	t.Run("kill -9 of an owner mid-rollout", func(t *testing.T) {
		victim := shardOf(shards, own["t1"])
		scale(t, vc["t1"], "default", "web", 200)
		// Mid-rollout: some of the new pods are on the host, most are not.
		framework.Eventually(t, 60*time.Second, "t1's rollout under way", func(ctx context.Context) error {
			h, err := hostPods(ctx, host, "t1", "default", "web")
			if err == nil && len(h) < 30 {
				err = fmt.Errorf("%d host pods", len(h))
			}
			return err
		}, nil)
		onHost, _ := hostPods(ctx, host, "t1", "default", "web")
		victim.signal(t, syscall.SIGKILL)
		t.Logf("%s killed with %d of t1's 200 pods on the host", victim.name, len(onHost))
		killed := time.Now()
		var after map[string]string
		framework.Eventually(t, 10*time.Second, "t1 owned by a live shard within 10 s", func(ctx context.Context) error {
			var err error
			after, err = owners(ctx, shards, tenants)
			if err == nil && after["t1"] == victim.name {
				err = fmt.Errorf("t1 still with %s", victim.name)
			}
			return err
		}, nil)
		t.Logf("t1 moved from %s to %s %.1fs after the kill", victim.name, after["t1"], time.Since(killed).Seconds())
		framework.Eventually(t, 180*time.Second, "t1: 200 pods Running, no duplicates or orphans", func(ctx context.Context) error {
			return converged(ctx, vc["t1"], host, "t1", "default", "web", 200)
		}, describeSync(env, t, "t1"))
		t.Logf("t1 converged at 200 pods %.1fs after the kill", time.Since(killed).Seconds())
		shards = without(shards, victim.name)
		own = after
	})

	t.Run("a frozen owner is fenced", func(t *testing.T) {
		frozen := shardOf(shards, own["t2"])
		held, err := frozen.epochs(ctx)
		if err != nil || held["t2"] == "" {
			t.Fatalf("epoch of t2 on %s: %v %v", frozen.name, held, err)
		}
		oldManager := "kplex-syncer/" + frozen.name + "@" + held["t2"]
		frozen.signal(t, syscall.SIGSTOP)
		resumed := false
		defer func() {
			if !resumed {
				frozen.signal(t, syscall.SIGCONT)
			}
		}()
		scale(t, vc["t2"], "default", "web", 15)
		framework.Eventually(t, 15*time.Second, "t2 taken over from the frozen shard", func(ctx context.Context) error {
			after, err := owners(ctx, shards, tenants)
			if err == nil && (after["t2"] == frozen.name || after["t2"] == "") {
				err = fmt.Errorf("t2 still with %s", frozen.name)
			}
			return err
		}, nil)
		framework.Eventually(t, 60*time.Second, "t2: 15 pods under the new owner", func(ctx context.Context) error {
			return converged(ctx, vc["t2"], host, "t2", "default", "web", 15)
		}, describeSync(env, t, "t2"))
		resumeAt := time.Now().Truncate(time.Second)
		frozen.signal(t, syscall.SIGCONT)
		resumed = true
		scale(t, vc["t2"], "default", "web", 12)
		framework.Eventually(t, 60*time.Second, "t2: 12 pods after the resume", func(ctx context.Context) error {
			return converged(ctx, vc["t2"], host, "t2", "default", "web", 12)
		}, describeSync(env, t, "t2"))
		framework.Eventually(t, 10*time.Second, "the resumed shard gave up its old lease", func(ctx context.Context) error {
			now, err := frozen.epochs(ctx)
			if err == nil && now["t2"] == held["t2"] {
				err = fmt.Errorf("%s still reports t2 at its old epoch %s", frozen.name, held["t2"])
			}
			return err
		}, nil)
		// It may own t2 again (rendezvous may give it back), but only
		// under a new epoch: nothing may carry the old lease's name after
		// the resume.
		w, err := writesBy(ctx, host, naming.HostNamespace("t2"), oldManager, resumeAt)
		if err != nil {
			t.Fatal(err)
		}
		if len(w) > 0 {
			t.Fatalf("the resumed shard wrote for t2 under its lost lease (%s): %v", oldManager, w)
		}
		own = stableOwners(t, shards, tenants, 45*time.Second)
	})

	t.Run("kill -9 of the relay leader mid-rollout", func(t *testing.T) {
		st, err := localenv.LoadState(env.Layout)
		if err != nil {
			t.Fatal(err)
		}
		free, err := ports.Free(1)
		if err != nil {
			t.Fatal(err)
		}
		standby := framework.StartProcess(t, env.Dir, "test-relay-1", "kplex-syncer",
			"--mode=relay", "--shard-name=relay-1",
			"--host-kubeconfig="+env.Layout.HostKubeconfig(),
			fmt.Sprintf("--nats-url=nats://127.0.0.1:%d", st.Ports[localenv.PortNATS]),
			fmt.Sprintf("--metrics-address=127.0.0.1:%d", free[0]))
		standby.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", free[0]), nil, 30*time.Second)
		time.Sleep(2 * time.Second) // the standby learns who is live
		leader := &shardProc{name: "relay-0", pidFile: env.Layout.Pid("syncer-relay")}
		scale(t, vc["t3"], "default", "web", 25)
		leader.signal(t, syscall.SIGKILL)
		framework.Eventually(t, 90*time.Second, "t3: 25 pods through the standby relay", func(ctx context.Context) error {
			return converged(ctx, vc["t3"], host, "t3", "default", "web", 25)
		}, describeSync(env, t, "t3"))
		scale(t, vc["t3"], "default", "web", 10)
		framework.Eventually(t, 60*time.Second, "t3: back to 10", func(ctx context.Context) error {
			return converged(ctx, vc["t3"], host, "t3", "default", "web", 10)
		}, describeSync(env, t, "t3"))
	})

	t.Run("a new shard takes only what must move", func(t *testing.T) {
		before := own
		shards = append(shards, startShard(t, env, "shard-3"))
		time.Sleep(3 * time.Second) // the new shard's first heartbeats
		after := stableOwners(t, shards, tenants, 45*time.Second)
		t.Logf("owners before %v, after %v", before, after)
		for _, tn := range tenants {
			if after[tn] != before[tn] && after[tn] != "shard-3" {
				t.Errorf("%s moved from %s to %s: only moves to the new shard are allowed", tn, before[tn], after[tn])
			}
		}
		for _, tn := range tenants {
			framework.Eventually(t, 60*time.Second, tn+" still converged", func(ctx context.Context) error {
				n := 10
				switch tn {
				case "t1":
					n = 200
				case "t2":
					n = 12
				}
				return converged(ctx, vc[tn], host, tn, "default", "web", n)
			}, describeSync(env, t, tn))
		}
	})
}

func without(shards []*shardProc, name string) []*shardProc {
	var out []*shardProc
	for _, s := range shards {
		if s.name != name {
			out = append(out, s)
		}
	}
	return out
}
