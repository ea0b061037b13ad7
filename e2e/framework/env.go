// Package framework starts a fresh local kplex environment for a test and
// guarantees it is torn down: every process is stopped in t.Cleanup, and
// each is started with a parent-death signal so nothing outlives a test
// binary that panics or times out. On failure it prints the tail of every
// process's log.
package framework

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kplex.dev/cli/kubeconfig"
	"kplex.dev/cli/localenv"
	"kplex.dev/cli/supervise"
)

// Env is a running local environment.
type Env struct {
	Dir    string
	Layout localenv.Layout
	Opts   localenv.Options
}

// BinDir is where the binaries are: $KPLEX_BIN_DIR, or the repository's bin/.
func BinDir(t testing.TB) string {
	if d := os.Getenv("KPLEX_BIN_DIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	d := filepath.Join(filepath.Dir(file), "..", "..", "bin")
	if _, err := os.Stat(filepath.Join(d, "kplex-apiserver")); err != nil {
		t.Fatalf("binaries not found in %s (run `make build`, or set KPLEX_BIN_DIR): %v", d, err)
	}
	return d
}

// Start brings up a fresh environment on free ports in a temporary
// directory. mutate may adjust the options.
func Start(t *testing.T, mutate func(*localenv.Options)) *Env {
	t.Helper()
	dir, err := os.MkdirTemp("", "kplex-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	opts := localenv.Options{
		Dir:           dir,
		BinDir:        BinDir(t),
		FreePorts:     true,
		DieWithParent: true,
		Progress:      &logWriter{t: t},
	}
	if mutate != nil {
		mutate(&opts)
	}
	e := &Env{Dir: dir, Layout: localenv.Layout{Root: dir}, Opts: opts}
	t.Cleanup(func() {
		if t.Failed() {
			e.DumpLogs(t)
		}
		if err := localenv.Down(dir, false, &logWriter{t: t}); err != nil {
			t.Errorf("teardown: %v", err)
		}
		if !t.Failed() {
			_ = os.RemoveAll(dir)
		} else {
			t.Logf("environment files kept in %s", dir)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := localenv.Up(ctx, opts); err != nil {
		t.Fatalf("up: %v", err)
	}
	return e
}

// DumpLogs prints the last lines of every process's log.
func (e *Env) DumpLogs(t testing.TB) {
	logs, _ := filepath.Glob(filepath.Join(e.Dir, "logs", "*.log"))
	for _, l := range logs {
		t.Logf("---- last lines of %s ----\n%s", filepath.Base(l), supervise.Tail(l, 30))
	}
	t.Logf("---- datastore-proxy: slot waits and requests not OK ----\n%s", proxyState(e.Layout))
}

// RESTConfig loads a kubeconfig of the environment with generous client
// rate limits.
func RESTConfig(t testing.TB, path string) *rest.Config {
	t.Helper()
	cfg, err := kubeconfig.RESTConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg
}

// Host is a client of the host cluster.
func (e *Env) Host(t testing.TB) kubernetes.Interface {
	return clientFor(t, RESTConfig(t, e.Layout.HostKubeconfig()))
}

// VCluster is an admin client of a virtual cluster.
func (e *Env) VCluster(t testing.TB, name string) kubernetes.Interface {
	return clientFor(t, RESTConfig(t, e.Layout.VClusterKubeconfig(name)))
}

func clientFor(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logWriter sends whole lines to t.Log.
type logWriter struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.t.Log("progress: " + line[:len(line)-1])
	}
}
