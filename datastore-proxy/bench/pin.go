package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinStoreCPU, when >= 0, is the CPU that etcd gets to itself
// (-pin-store): etcd runs only there, and the clients and the proxy only
// on the other CPUs. It models a deployment where the store has its own
// machine and the proxy scales out beside the clients, which a two-core
// box can only approximate: the proxy still shares its CPU with the
// clients.
var pinStoreCPU = -1

// pinProxyCPU, when >= 0, is the CPU that the proxy gets to itself
// (-pin-proxy): the proxy runs only there, and the clients and the store
// only on the other CPUs, in the direct rows as in the proxied ones. It
// models a deployment where the proxy's replicas run on machines of their
// own, so that the proxy adds its latency but takes no CPU from the store
// and its clients; its CPU per operation is still counted in the tables.
var pinProxyCPU = -1

// pinSelf restricts every thread of this process to the given CPUs (new
// threads inherit it from the thread that makes them).
func pinSelf(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin thread %d: %w", tid, err)
		}
	}
	return nil
}

// otherCPUs are this machine's CPUs but cpu.
func otherCPUs(cpu int) []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var out []int
	for c := range 1024 {
		if c != cpu && set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}
