// Package bench holds what the benchmark commands share: rollouts timed
// as the user sees them, cleanup, and process readings (CPU, memory).
package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"kplex.dev/cli/kubeconfig"
	"kplex.dev/cli/localenv"
	"kplex.dev/cli/supervise"
)

// target is a namespace of a cluster (the host or a tenant).
type Target struct {
	C  kubernetes.Interface
	NS string
}

// result is one rollout's timing.
type Result struct {
	Total time.Duration
	Pods  []time.Duration // first seen -> Running, per pod
}

func (r Result) P(q int) time.Duration {
	if len(r.Pods) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), r.Pods...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*q + 99) / 100
	return s[max(i-1, 0)]
}

// rollout creates a Deployment of n pods in every target at once and
// waits until all pods of all targets are Running, as each cluster reports.
func Rollout(ctx context.Context, targets []Target, n int) (Result, error) {
	var mu sync.Mutex
	seen := map[string]time.Time{}
	running := map[string]time.Duration{}
	want := n * len(targets)
	done := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	for _, t := range targets {
		f := informers.NewSharedInformerFactoryWithOptions(t.C, 0, informers.WithNamespace(t.NS))
		inf := f.Core().V1().Pods().Informer()
		prefix := fmt.Sprintf("%p/", t.C) + t.NS + "/"
		observe := func(o any) {
			p, ok := o.(*corev1.Pod)
			if !ok {
				return
			}
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			id := prefix + p.Name
			if _, ok := seen[id]; !ok {
				seen[id] = now
			}
			if _, ok := running[id]; !ok && p.Status.Phase == corev1.PodRunning {
				running[id] = now.Sub(seen[id])
				if len(running) == want {
					close(done)
				}
			}
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: observe, UpdateFunc: func(_, o any) { observe(o) }}); err != nil {
			return Result{}, err
		}
		f.Start(stop)
		f.WaitForCacheSync(stop)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(targets))
	for _, t := range targets {
		wg.Go(func() {
			if err := ensureNamespace(ctx, t); err != nil {
				errs <- err
				return
			}
			if _, err := t.C.AppsV1().Deployments(t.NS).Create(ctx, Deployment(n), metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return Result{}, err
	}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			r := Result{Total: time.Since(start)}
			mu.Lock()
			for _, d := range running {
				r.Pods = append(r.Pods, d)
			}
			mu.Unlock()
			return r, nil
		case <-tick.C:
			mu.Lock()
			fmt.Fprintf(os.Stderr, "  %d/%d pods Running after %s\n", len(running), want, time.Since(start).Round(time.Second))
			mu.Unlock()
		case <-ctx.Done():
			return Result{}, fmt.Errorf("pods not Running in time: %w", ctx.Err())
		}
	}
}

func ensureNamespace(ctx context.Context, t Target) error {
	_, err := t.C.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.NS}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func Deployment(n int) *appsv1.Deployment {
	labels := map[string]string{"app": "bench"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(n)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
}

// cleanup deletes the Deployments and waits until every pod is gone.
func Cleanup(ctx context.Context, targets []Target) error {
	for _, t := range targets {
		err := t.C.AppsV1().Deployments(t.NS).Delete(ctx, "bench", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, t := range targets {
			pods, err := t.C.CoreV1().Pods(t.NS).List(ctx, metav1.ListOptions{})
			if err != nil || len(pods.Items) > 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

// shardRSS is the resident memory of the syncer shard process.
func ShardRSS(l localenv.Layout) (int64, error) {
	_, pf, err := supervise.Inspect(l.Pid("syncer-shard-0"))
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pf.PID))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pf.PID)
}

func NumCPU() int { return runtime.NumCPU() }

// Client is a client of a cluster of the environment with limits high
// enough that the client never paces a benchmark.
func Client(kubeconfigPath string) (kubernetes.Interface, error) {
	cfg, err := kubeconfig.RESTConfig(kubeconfigPath)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	return kubernetes.NewForConfig(cfg)
}
