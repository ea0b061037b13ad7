package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procStat is what this package needs of /proc/<pid>/stat.
type procStat struct {
	State     byte   // R, S, D, Z, T...
	StartTime uint64 // clock ticks since boot
}

// errNoProcess means the pid does not exist (or is not visible).
var errNoProcess = errors.New("no such process")

// readStat parses /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return procStat{}, errNoProcess
		}
		return procStat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return parseStat(b)
}

// parseStat parses the text of /proc/<pid>/stat. The command name (field 2)
// is in parentheses and may itself contain spaces and parentheses, so fields
// are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, fmt.Errorf("malformed stat %q", b)
	}
	fields := strings.Fields(string(b[i+2:]))
	// fields[0] is field 3 (state); starttime is field 22 -> fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed stat %q", b)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed starttime in stat: %w", err)
	}
	return procStat{State: fields[0][0], StartTime: start}, nil
}

// alive reports whether pid exists with the given start time and has not
// finished exiting. A thread-group leader turns zombie before its other
// threads are gone, and the process's files (its listening sockets) are
// released only with the last thread, so a zombie with threads left is
// still alive here.
func alive(pid int, startTime uint64) bool {
	st, err := readStat(pid)
	if err != nil || st.StartTime != startTime {
		return false
	}
	if st.State == 'Z' || st.State == 'X' {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		return err == nil && len(tasks) > 1
	}
	return true
}

// signalGroup signals the process group led by pid (processes are started
// as session leaders), falling back to the process alone.
func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err == nil {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	return nil
}

// ReadProcState returns the kernel state letter of pid (R, S, Z...), for
// callers that must tell a live process from a zombie.
func ReadProcState(pid int) (byte, error) {
	st, err := readStat(pid)
	return st.State, err
}
