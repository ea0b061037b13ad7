package framework

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"kplex.dev/cli/supervise"
)

// Process is a binary the test runs, stopped at cleanup.
type Process struct {
	Spec supervise.Spec
	proc *supervise.Process
}

// StartProcess runs bin/<binary> with args, logging to dir/<name>.log, and
// stops it at cleanup (printing its log tail if the test failed).
func StartProcess(t *testing.T, dir, name, binary string, args ...string) *Process {
	t.Helper()
	return Run(t, supervise.Spec{
		Name: name, Path: filepath.Join(BinDir(t), binary), Args: args, DieWithParent: true,
		LogPath: filepath.Join(dir, name+".log"), PidPath: filepath.Join(dir, name+".pid"),
	})
}

// Run starts a process from its spec and stops it at cleanup (printing
// its log tail if the test failed).
func Run(t *testing.T, spec supervise.Spec) *Process {
	t.Helper()
	p := &Process{Spec: spec}
	p.Start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- last lines of %s ----\n%s", spec.Name, supervise.Tail(spec.LogPath, 40))
		}
		_ = supervise.Stop(spec.PidPath, 10*time.Second)
	})
	return p
}

// Start (re)starts the process.
func (p *Process) Start(t *testing.T) {
	t.Helper()
	proc, err := supervise.Start(p.Spec)
	if err != nil {
		t.Fatal(err)
	}
	p.proc = proc
}

// Stop stops the process with SIGTERM (SIGKILL after grace).
func (p *Process) Stop(t *testing.T, grace time.Duration) {
	t.Helper()
	if err := supervise.Stop(p.Spec.PidPath, grace); err != nil {
		t.Fatal(err)
	}
}

// WaitHTTP waits until url answers 200, failing with the process's log
// tail if it exits or time runs out.
func (p *Process) WaitHTTP(t *testing.T, url string, client *http.Client, timeout time.Duration) {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	Eventually(t, timeout, p.Spec.Name+" ready at "+url, func(ctx context.Context) error {
		select {
		case <-p.proc.Exited():
			t.Fatalf("%s exited: %v\n%s", p.Spec.Name, p.proc.ExitErr(), supervise.Tail(p.Spec.LogPath, 40))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &statusError{resp.StatusCode}
		}
		return nil
	}, func() string { return supervise.Tail(p.Spec.LogPath, 20) })
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }
