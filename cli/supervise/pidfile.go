package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PidFile is the identity of a started process.
type PidFile struct {
	PID       int
	StartTime uint64 // from /proc/<pid>/stat, to detect pid reuse
}

// ReadPidFile reads a pid file. An absent file is returned as an error
// wrapping fs.ErrNotExist.
func ReadPidFile(path string) (PidFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return PidFile{}, fmt.Errorf("read pid file: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return PidFile{}, fmt.Errorf("pid file %s: want \"<pid> <starttime>\", got %q", path, b)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return PidFile{}, fmt.Errorf("pid file %s: bad pid %q", path, f[0])
	}
	start, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return PidFile{}, fmt.Errorf("pid file %s: bad start time %q", path, f[1])
	}
	return PidFile{PID: pid, StartTime: start}, nil
}

// write stores the pid file atomically (temp file + rename).
func (p PidFile) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create pid dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", p.PID, p.StartTime)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// State is what a pid file says about its process.
type State int

const (
	// Absent: no pid file.
	Absent State = iota
	// Running: the recorded process is alive.
	Running
	// Stale: a pid file whose process is gone (crash, reboot, pid reuse).
	Stale
)

func (s State) String() string {
	switch s {
	case Running:
		return "running"
	case Stale:
		return "stale"
	default:
		return "absent"
	}
}

// Inspect reports the state of the process recorded in a pid file.
func Inspect(path string) (State, PidFile, error) {
	p, err := ReadPidFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Absent, PidFile{}, nil
	}
	if err != nil {
		return Stale, PidFile{}, err
	}
	if alive(p.PID, p.StartTime) {
		return Running, p, nil
	}
	return Stale, p, nil
}
