package localenv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"kplex.dev/cli/ports"
	"kplex.dev/cli/supervise"
)

// Up brings the environment up: every component not yet running is
// started and waited for, in order. Running components are left alone, and
// pid files left by a crashed run are cleaned up first. It is safe to run
// again at any time.
func Up(ctx context.Context, opts Options) error {
	requested := opts
	opts.defaults()
	if err := opts.validate(); err != nil {
		return err
	}
	l := Layout{Root: opts.Dir}
	st, err := loadOrInitState(l, requested, opts)
	if err != nil {
		return err
	}
	e := &env{opts: opts, layout: l, state: st}
	cs, err := e.components()
	if err != nil {
		return err
	}
	out := opts.Progress
	start := time.Now()

	states := make([]supervise.State, len(cs))
	var stale, toStart []string
	for i, c := range cs {
		states[i], _, _ = supervise.Inspect(l.Pid(c.name))
		if states[i] == supervise.Stale {
			stale = append(stale, c.name)
		}
		if states[i] != supervise.Running {
			toStart = append(toStart, c.name)
		}
	}
	if len(toStart) == 0 {
		fmt.Fprintf(out, "kplex local environment in %s is already running (%d processes); checking readiness\n", l.Root, len(cs))
	}
	if len(stale) > 0 {
		fmt.Fprintf(out, "found pid files of processes that are gone (a crashed or killed run): %s; cleaning up and restarting them with their data\n", strings.Join(stale, ", "))
		for _, name := range stale {
			if err := supervise.Stop(l.Pid(name), time.Second); err != nil {
				return err
			}
		}
	}
	if err := checkPorts(st.Ports, cs, toStart); err != nil {
		return err
	}

	for i, c := range cs {
		if c.prepare != nil {
			if err := c.prepare(ctx); err != nil {
				return fmt.Errorf("prepare %s: %w", c.name, err)
			}
		}
		if states[i] == supervise.Running {
			_, pf, _ := supervise.Inspect(l.Pid(c.name))
			fmt.Fprintf(out, "  running: %-26s pid %d\n", c.name, pf.PID)
			if err := waitReady(ctx, out, c.name, nil, l.Log(c.name), c.readyTimeout, c.ready); err != nil {
				return err
			}
			continue
		}
		if err := e.start(ctx, c); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "kplex local environment up in %.1fs\n", time.Since(start).Seconds())
	return nil
}

// start starts c's process and waits for it to be ready, starting it
// again up to c.startRetries times if it exits first.
func (e *env) start(ctx context.Context, c component) error {
	out, logPath := e.opts.Progress, e.layout.Log(c.name)
	for attempt := 0; ; attempt++ {
		path, args, env, err := c.command()
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		fmt.Fprintf(out, "starting %s (log: %s)\n", c.name, logPath)
		proc, err := supervise.Start(e.spec(c, path, args, env))
		if err == nil {
			err = waitReady(ctx, out, c.name, proc, logPath, c.readyTimeout, c.ready)
		}
		var early *exitedEarlyError
		switch {
		case errors.As(err, &early):
		case errors.Is(err, supervise.ErrExitedAtOnce):
			early = &exitedEarlyError{name: c.name, exit: err, logPath: logPath, tail: supervise.Tail(logPath, 25)}
		default: // ready, or failed otherwise
			return err
		}
		if attempt >= c.startRetries {
			return err
		}
		fmt.Fprintf(out, "  %s exited (%v) before it was ready; starting it again (retry %d of %d); last lines of %s:\n%s",
			c.name, early.exit, attempt+1, c.startRetries, logPath, early.tail)
		if err := supervise.Stop(e.layout.Pid(c.name), time.Second); err != nil {
			return err
		}
	}
}

// checkPorts fails, naming each busy port and its owner, if a component
// about to start would find its port taken.
func checkPorts(all ports.Set, cs []component, toStart []string) error {
	need := ports.Set{}
	for _, c := range cs {
		if !slices.Contains(toStart, c.name) {
			continue
		}
		for _, role := range c.ports {
			need[role] = all[role]
		}
	}
	// A process that just died may hold its port for a moment while its
	// last threads exit: give a busy port a few seconds before failing.
	var err error
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err = ports.Check(need); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cannot start the environment:\n%w\nstop what uses the port, or choose another with --port NAME=PORT (or --free-ports)", err)
	}
	return nil
}

// loadOrInitState returns the saved state, refusing requests that
// contradict it, or decides a new one (ports, nodes) and saves it.
func loadOrInitState(l Layout, requested, opts Options) (*State, error) {
	exists, err := stateExists(l)
	if err != nil {
		return nil, err
	}
	if exists {
		st, err := LoadState(l)
		if err != nil {
			return nil, err
		}
		if err := conflicts(st, requested); err != nil {
			return nil, fmt.Errorf("%w; the environment in %s was set up differently (`kplexctl down --purge` removes it so `up` can start anew)", err, l.Root)
		}
		return st, addNewPorts(l, st, opts)
	}
	st := &State{Nodes: opts.Nodes, NodeKind: opts.NodeKind, PodCIDR: opts.PodCIDR, ServiceCIDR: opts.ServiceCIDR, VClusters: opts.VClusters, HostOnly: opts.HostOnly}
	st.Ports = DefaultPorts(opts.VClusters)
	if opts.FreePorts {
		free, err := ports.Free(len(st.Ports))
		if err != nil {
			return nil, err
		}
		for i, name := range st.Ports.Names() {
			st.Ports[name] = free[i]
		}
	}
	for name, p := range opts.PortOverrides {
		if _, ok := st.Ports[name]; !ok {
			return nil, fmt.Errorf("unknown port %q: known ports are %s", name, strings.Join(st.Ports.Names(), ", "))
		}
		st.Ports[name] = p
	}
	if err := st.Save(l); err != nil {
		return nil, err
	}
	return st, nil
}

// addNewPorts gives an environment made by an older kplexctl the ports of
// components it did not have yet.
func addNewPorts(l Layout, st *State, opts Options) error {
	var missing []string
	for name := range DefaultPorts(st.VClusters) {
		if _, ok := st.Ports[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	def := DefaultPorts(st.VClusters)
	free, err := ports.Free(len(missing))
	if err != nil {
		return err
	}
	for i, name := range missing {
		st.Ports[name] = def[name]
		if opts.FreePorts {
			st.Ports[name] = free[i]
		}
	}
	return st.Save(l)
}

// conflicts reports an explicitly requested setting the saved state lacks.
func conflicts(st *State, req Options) error {
	var errs []error
	if req.Nodes != 0 && req.Nodes != st.Nodes {
		errs = append(errs, fmt.Errorf("--nodes %d asked, it has %d", req.Nodes, st.Nodes))
	}
	if req.NodeKind != "" && req.NodeKind != st.NodeKind {
		errs = append(errs, fmt.Errorf("--node-kind %s asked, it has %s", req.NodeKind, st.NodeKind))
	}
	if req.PodCIDR != "" && req.PodCIDR != st.PodCIDR {
		errs = append(errs, fmt.Errorf("--pod-cidr %s asked, it has %s", req.PodCIDR, st.PodCIDR))
	}
	if req.ServiceCIDR != "" && req.ServiceCIDR != st.ServiceCIDR {
		errs = append(errs, fmt.Errorf("--service-cidr %s asked, it has %s", req.ServiceCIDR, st.ServiceCIDR))
	}
	for name, p := range req.PortOverrides {
		if st.Ports[name] != p {
			errs = append(errs, fmt.Errorf("--port %s=%d asked, it has %d", name, p, st.Ports[name]))
		}
	}
	if req.HostOnly && !st.HostOnly {
		errs = append(errs, errors.New("--host-only asked, it runs the kplex platform"))
	}
	if req.VClusters != nil && !slices.Equal(req.VClusters, st.VClusters) {
		errs = append(errs, fmt.Errorf("virtual clusters %v asked, it has %v", req.VClusters, st.VClusters))
	}
	return errors.Join(errs...)
}
