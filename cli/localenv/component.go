package localenv

import (
	"context"
	"time"

	"kplex.dev/cli/supervise"
)

// component is one process of the environment and how to bring it up.
type component struct {
	name  string   // process name: logs/<name>.log, run/<name>.pid
	ports []string // port roles it listens on
	// prepare writes what the process needs (certificates, kubeconfigs,
	// config files, objects in the host API). Idempotent: it runs on every
	// up, also when the process is already running.
	prepare func(context.Context) error
	// command is the binary and arguments, computed after prepare.
	command func() (path string, args, env []string, err error)
	// ready is one readiness probe; nil error means ready.
	ready        func(context.Context) error
	readyTimeout time.Duration
	// startRetries is how many times a process that exits before it is
	// ready is started again (0: its exit fails the up). Only for a
	// process known to crash at start now and then for a reason of its
	// own; the log keeps every attempt.
	startRetries int
}

// env is an environment being brought up or inspected.
type env struct {
	opts   Options
	layout Layout
	state  *State
}

func (e *env) bin(name string) string { return e.opts.BinDir + "/" + name }

// components lists every process in start order: host control plane,
// nodes, the shared datastore-proxy, NATS, the host relay and the operator,
// each virtual cluster not made by the operator, then the syncer shard that
// serves them all. A host-only environment stops after the nodes.
func (e *env) components() ([]component, error) {
	cs := e.hostComponents()
	nodes, err := newNodeProvider(e)
	if err != nil {
		return nil, err
	}
	cs = append(cs, nodes.components()...)
	if e.state.HostOnly {
		return cs, nil
	}
	cs = append(cs, e.datastoreComponent(), e.natsComponent(), e.relayComponent(), e.operatorComponent())
	for _, vc := range e.state.VClusters {
		cs = append(cs, e.vclusterComponents(vc)...)
	}
	cs = append(cs, e.shardComponent())
	return cs, nil
}

func (e *env) spec(c component, path string, args, extraEnv []string) supervise.Spec {
	return supervise.Spec{
		Name:          c.name,
		Path:          path,
		Args:          args,
		Env:           extraEnv,
		LogPath:       e.layout.Log(c.name),
		PidPath:       e.layout.Pid(c.name),
		DieWithParent: e.opts.DieWithParent,
	}
}
