package localenv

import (
	"context"
	"fmt"
	"time"

	"kplex.dev/cli/supervise"
)

// ComponentStatus is one process as `kplexctl status` shows it.
type ComponentStatus struct {
	Name  string `json:"name"`
	State string `json:"state"` // running, stale, absent
	PID   int    `json:"pid,omitempty"`
	Ports []int  `json:"ports,omitempty"`
	Ready bool   `json:"ready"`
	// Reason says why a running process is not ready.
	Reason string `json:"reason,omitempty"`
	Log    string `json:"log"`
}

// Status inspects every component of the environment in dir, probing the
// running ones once.
func Status(ctx context.Context, dir string) ([]ComponentStatus, error) {
	l := Layout{Root: dir}
	st, err := LoadState(l)
	if err != nil {
		return nil, fmt.Errorf("no kplex environment in %s (run `make up`): %w", dir, err)
	}
	e := &env{opts: Options{Dir: dir}, layout: l, state: st}
	cs, err := e.components()
	if err != nil {
		return nil, err
	}
	out := make([]ComponentStatus, 0, len(cs))
	for _, c := range cs {
		state, pf, _ := supervise.Inspect(l.Pid(c.name))
		s := ComponentStatus{Name: c.name, State: state.String(), PID: pf.PID, Log: l.Log(c.name)}
		for _, role := range c.ports {
			s.Ports = append(s.Ports, st.Ports[role])
		}
		if state == supervise.Running {
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			if err := c.ready(pctx); err != nil {
				s.Reason = err.Error()
			} else {
				s.Ready = true
			}
			cancel()
		}
		out = append(out, s)
	}
	return out, nil
}
