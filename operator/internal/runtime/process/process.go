// Package process is the runtime for local mode and tests: each tenant's
// apiserver, controller manager (and scheduler, when enabled) run as child
// processes of the operator, started detached with pid files so they are
// found again after an operator restart, and restarted when they die (the
// operator calls Ensure on every resync).
//
// Per tenant, under Dir/<tenant>/: the PKI and kubeconfig files the
// processes read (materialized from the PKI Secret, 0600) and ports.json,
// the ports reserved on first use. Pid files go to RunDir as
// vc-<tenant>-<component>.pid and logs to LogDir as
// vc-<tenant>-<component>.log, beside the local environment's own.
package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"kplex.dev/cli/supervise"
	"kplex.dev/operator/internal/runtime"
)

// Components of a tenant's control plane.
const (
	APIServer  = runtime.APIServer
	Controller = runtime.ControllerManager
	Scheduler  = runtime.Scheduler
)

// stopGrace is how long a component gets after SIGTERM.
const stopGrace = 15 * time.Second

// Runtime runs control planes as local processes.
type Runtime struct {
	Dir    string // per-tenant files
	RunDir string // pid files
	LogDir string
	BinDir string // kplex-apiserver, kplex-controller-manager, kplex-scheduler
	// DieWithOperator kills the control planes with the operator (tests:
	// nothing outlives a crashed test). Off in local mode, where control
	// planes outlive an operator restart.
	DieWithOperator bool
	// OnExit, when set, is told when a component this runtime started
	// exits, so the operator restarts it at once instead of at the next
	// resync. (Components adopted after an operator restart are found dead
	// at the resync.)
	OnExit func(tenant string)
	// MaxStarting bounds the apiservers starting at once (0: no bound).
	// Starting one costs a few CPU-seconds; twenty at once on a small
	// machine all finish late, in turn the first ones are Ready early.
	MaxStarting int

	mu       sync.Mutex           // guards port reservation
	startMu  sync.Mutex           // guards starting
	starting map[string]time.Time // tenants whose apiserver is not ready yet
	probeMu  sync.Mutex
	probes   map[string]*probeClients
}

// startTimeout is how long a starting apiserver holds a start slot.
const startTimeout = 2 * time.Minute

// admit reports whether the tenant may start its apiserver now, taking a
// start slot; done releases it.
func (r *Runtime) admit(tenant string) bool {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	if r.starting == nil {
		r.starting = map[string]time.Time{}
	}
	if _, ok := r.starting[tenant]; ok || r.MaxStarting <= 0 {
		return true
	}
	n := 0
	for t, since := range r.starting {
		if time.Since(since) > startTimeout {
			delete(r.starting, t)
			continue
		}
		n++
	}
	if n >= r.MaxStarting {
		return false
	}
	r.starting[tenant] = time.Now()
	return true
}

func (r *Runtime) done(tenant string) {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	delete(r.starting, tenant)
}

var _ runtime.Runtime = (*Runtime)(nil)

func (r *Runtime) tenantDir(t string) string { return filepath.Join(r.Dir, t) }

// ProcessName is a component's process name (pid file and log base name).
func ProcessName(tenant, component string) string { return "vc-" + tenant + "-" + component }

func (r *Runtime) pid(t, c string) string {
	return filepath.Join(r.RunDir, ProcessName(t, c)+".pid")
}

// Hosts adds nothing: the endpoint is loopback, already in every
// serving certificate.
func (r *Runtime) Hosts(string) []string { return nil }

// Endpoint reserves the tenant's ports on first use.
func (r *Runtime) Endpoint(_ context.Context, tenant string) (string, error) {
	p, err := r.ports(tenant)
	if err != nil {
		return "", err
	}
	return "https://127.0.0.1:" + strconv.Itoa(p.APIServer), nil
}

// Ensure writes the tenant's files and starts every component that is
// not running, restarting one whose inputs (flags, certificates) changed.
func (r *Runtime) Ensure(ctx context.Context, t runtime.Tenant) error {
	p, err := r.ports(t.Name)
	if err != nil {
		return err
	}
	specs, err := r.commands(t, p)
	if err != nil {
		return err
	}
	if st, _, _ := supervise.Inspect(r.pid(t.Name, APIServer)); st != supervise.Running && !r.admit(t.Name) {
		return runtime.ErrQueued
	}
	var errs []error
	for _, s := range specs {
		if s.component != APIServer && !answers(r.probe(ctx, t.Name, APIServer)) {
			// The controller manager and scheduler give up on an API that
			// does not answer: start them once it serves (they wait for
			// readyz themselves), so their start overlaps its bootstrap.
			break
		}
		if err := r.ensureOne(t.Name, s); err != nil {
			errs = append(errs, err)
		}
	}
	if !t.Scheduler {
		if err := supervise.Stop(r.pid(t.Name, Scheduler), stopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ensureOne starts a component unless it runs with the same inputs.
func (r *Runtime) ensureOne(tenant string, s command) error {
	pidPath := r.pid(tenant, s.component)
	stampPath := pidPath + ".inputs"
	state, _, _ := supervise.Inspect(pidPath) // an unreadable pid file is stale
	if state == supervise.Running {
		old, _ := os.ReadFile(stampPath)
		if string(old) == s.stamp {
			return nil
		}
		// New certificates or flags: restart to pick them up.
		if err := supervise.Stop(pidPath, stopGrace); err != nil {
			return fmt.Errorf("tenant %s: restart %s: %w", tenant, s.component, err)
		}
	} else if err := supervise.Stop(pidPath, time.Second); err != nil { // clears a stale pid file
		return fmt.Errorf("tenant %s %s: %w", tenant, s.component, err)
	}
	if err := os.MkdirAll(r.RunDir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	proc, err := supervise.Start(supervise.Spec{
		Name:          ProcessName(tenant, s.component),
		Path:          filepath.Join(r.BinDir, s.binary),
		Args:          s.args,
		Env:           s.env,
		LogPath:       filepath.Join(r.LogDir, ProcessName(tenant, s.component)+".log"),
		PidPath:       pidPath,
		DieWithParent: r.DieWithOperator,
	})
	if err != nil {
		return fmt.Errorf("tenant %s: %w", tenant, err)
	}
	if r.OnExit != nil {
		go func() {
			<-proc.Exited()
			r.OnExit(tenant)
		}()
	}
	return writeAtomic(stampPath, []byte(s.stamp), 0o644)
}

// Stop stops every component, keeping files and ports.
func (r *Runtime) Stop(_ context.Context, tenant string) error {
	var errs []error
	// Controller manager and scheduler first: they would only log errors
	// against a stopped apiserver.
	r.done(tenant)
	r.forgetClients(tenant)
	for _, c := range []string{Scheduler, Controller, APIServer} {
		if err := supervise.Stop(r.pid(tenant, c), stopGrace); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: stop %s: %w", tenant, c, err))
		}
		_ = os.Remove(r.pid(tenant, c) + ".inputs")
	}
	return errors.Join(errs...)
}

// Remove stops every component and deletes the tenant's files and logs.
func (r *Runtime) Remove(ctx context.Context, tenant string) error {
	if err := r.Stop(ctx, tenant); err != nil {
		return err
	}
	for _, c := range []string{Scheduler, Controller, APIServer} {
		_ = os.Remove(filepath.Join(r.LogDir, ProcessName(tenant, c)+".log"))
	}
	if err := os.RemoveAll(r.tenantDir(tenant)); err != nil {
		return fmt.Errorf("tenant %s: remove files: %w", tenant, err)
	}
	return nil
}
