package localenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"kplex.dev/cli/supervise"
)

// stopGrace is how long a process gets to exit after SIGTERM.
const stopGrace = 15 * time.Second

// Down stops every process of the environment in dir, in reverse start
// order, then any other process with a pid file there. With purge it also
// removes dir (data, certificates, logs).
func Down(dir string, purge bool, out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	l := Layout{Root: dir}
	var order []string
	if st, err := LoadState(l); err == nil {
		e := &env{opts: Options{Dir: dir}, layout: l, state: st}
		if cs, err := e.components(); err == nil {
			for _, c := range slices.Backward(cs) {
				order = append(order, c.name)
			}
		}
	}
	pids, _ := filepath.Glob(filepath.Join(dir, "run", "*.pid"))
	for _, p := range pids {
		name := strings.TrimSuffix(filepath.Base(p), ".pid")
		if !slices.Contains(order, name) {
			order = append(order, name)
		}
	}
	var errs []error
	stopped := 0
	for _, name := range order {
		state, pf, _ := supervise.Inspect(l.Pid(name))
		if state == supervise.Absent {
			continue
		}
		if err := supervise.Stop(l.Pid(name), stopGrace); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", name, err))
			continue
		}
		if state == supervise.Running {
			fmt.Fprintf(out, "stopped %s (pid %d)\n", name, pf.PID)
			stopped++
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if stopped == 0 {
		fmt.Fprintf(out, "nothing was running in %s\n", dir)
	}
	if purge {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
		fmt.Fprintf(out, "removed %s\n", dir)
	}
	return nil
}
