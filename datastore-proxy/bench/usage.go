package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// usage is what a process has used so far: CPU time (user + system, every
// thread) and read and write system calls.
type usage struct {
	cpu      time.Duration
	syscalls float64
}

func (u usage) sub(v usage) usage { return usage{u.cpu - v.cpu, u.syscalls - v.syscalls} }

func (u usage) per(n int) usage {
	return usage{u.cpu / time.Duration(n), u.syscalls / float64(n)}
}

// procUsage reads a process's usage from /proc/PID/stat (CPU, in clock
// ticks of 10 ms, Linux's fixed USER_HZ for /proc) and /proc/PID/io
// (syscr, syscw). Zero where unreadable.
func procUsage(pid int) usage {
	var u usage
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	if b, err := os.ReadFile(dir + "stat"); err == nil {
		// The fields after the command name, which may hold spaces.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) >= 13 {
				ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
				st, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
				u.cpu = time.Duration(ut+st) * 10 * time.Millisecond
			}
		}
	}
	if b, err := os.ReadFile(dir + "io"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ": "); ok && (k == "syscr" || k == "syscw") {
				n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				u.syscalls += n
			}
		}
	}
	return u
}

// peakRSS is a process's peak resident set size (VmHWM in
// /proc/PID/status), in MiB; 0 where unreadable.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kib, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kib / 1024
		}
	}
	return 0
}
