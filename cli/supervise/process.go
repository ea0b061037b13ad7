package supervise

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Spec describes a process to start.
type Spec struct {
	Name    string   // for messages, e.g. "host-apiserver"
	Path    string   // binary
	Args    []string // without argv[0]
	Env     []string // added to the caller's environment
	LogPath string   // stdout+stderr appended here
	PidPath string
	// DieWithParent kills the process when the starting process dies (Linux
	// parent-death signal). Tests set it so nothing outlives a crashed test
	// binary; `kplexctl up` leaves it off so the environment outlives the CLI.
	DieWithParent bool
}

// Process is a started process.
type Process struct {
	Spec Spec
	PidFile
	exited chan struct{} // closed when the process has been reaped
	err    error         // exit error, valid after exited is closed
}

// ErrExitedAtOnce is Start's error when the process died before its pid
// file could be written.
var ErrExitedAtOnce = errors.New("exited immediately")

// Start launches the process described by spec and writes its pid file. It
// refuses to start when the pid file names a live process.
func Start(spec Spec) (*Process, error) {
	if state, p, _ := Inspect(spec.PidPath); state == Running {
		return nil, fmt.Errorf("%s is already running as pid %d", spec.Name, p.PID)
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
		return nil, fmt.Errorf("create log dir for %s: %w", spec.Name, err)
	}
	logf, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", spec.Name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	fmt.Fprintf(logf, "\n===== %s: starting %s =====\n", time.Now().Format(time.RFC3339), spec.Name)

	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if spec.DieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	proc := &Process{Spec: spec, exited: make(chan struct{})}
	go func() { // reap, so a dead child is never mistaken for a live zombie
		proc.err = cmd.Wait()
		close(proc.exited)
	}()
	st, err := readStat(cmd.Process.Pid)
	if err != nil {
		// It died at once; report how.
		<-proc.exited
		return nil, fmt.Errorf("%s %w (%v); log: %s", spec.Name, ErrExitedAtOnce, proc.err, spec.LogPath)
	}
	proc.PidFile = PidFile{PID: cmd.Process.Pid, StartTime: st.StartTime}
	if err := proc.PidFile.write(spec.PidPath); err != nil {
		_ = signalGroup(proc.PID, syscall.SIGKILL)
		return nil, err
	}
	return proc, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr is the process's exit status; valid once Exited is closed.
func (p *Process) ExitErr() error { return p.err }

// Stop stops the process recorded in pidPath: SIGTERM to its process group,
// then SIGKILL after grace. A stale or absent pid file is removed and is not
// an error. It returns once the process is gone.
func Stop(pidPath string, grace time.Duration) error {
	state, p, err := Inspect(pidPath)
	if state != Running {
		if rmErr := os.Remove(pidPath); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			return fmt.Errorf("remove stale pid file: %w", rmErr)
		}
		_ = err // an unreadable pid file is stale: nothing to signal
		return nil
	}
	if err := signalGroup(p.PID, syscall.SIGTERM); err != nil {
		return err
	}
	if !waitGone(p, grace) {
		if err := signalGroup(p.PID, syscall.SIGKILL); err != nil {
			return err
		}
		if !waitGone(p, 10*time.Second) {
			return fmt.Errorf("pid %d survived SIGKILL", p.PID)
		}
	}
	if err := os.Remove(pidPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}

func waitGone(p PidFile, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !alive(p.PID, p.StartTime) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
