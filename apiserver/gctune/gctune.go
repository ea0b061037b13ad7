// Package gctune runs a tenant API server's garbage collector in two
// gears. Idle, GOGC stays low so the heap stays near its live size (memory
// is what hundreds of idle tenants cost the host). Busy, a low GOGC costs
// more CPU than the work itself (a 100-pod rollout: 1.8 s of apiserver CPU
// at GOGC=10 against 0.8 s at 100, docs/benchmarks.md), so while the
// allocation rate is high GOGC is raised, and lowered again, with the
// freed memory returned to the OS, once the burst is over.
package gctune

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"
)

// EnvBusy names the environment variable holding the busy GOGC; the idle
// GOGC is the process's GOGC.
const EnvBusy = "KPLEX_GOGC_BUSY"

// Settings of the two gears.
type Settings struct {
	Idle, Busy int
	// BusyRate is the allocation rate (bytes/s) that shifts up.
	BusyRate float64
	// Cooldown is how long the rate must stay low to shift down.
	Cooldown time.Duration
	Interval time.Duration
	// Delay keeps the idle gear through start-up: the long-lived heap
	// built then (OpenAPI specs, routes) stays compact, where a busy-gear
	// start left ~30 MiB of fragmented spans in an idle apiserver's RSS.
	Delay time.Duration
}

// FromEnv returns the settings the environment asks for, if any.
func FromEnv() (Settings, bool) {
	busy, err := strconv.Atoi(os.Getenv(EnvBusy))
	if err != nil || busy <= 0 {
		return Settings{}, false
	}
	idle := 100
	if v, err := strconv.Atoi(os.Getenv("GOGC")); err == nil && v > 0 {
		idle = v
	}
	return Settings{Idle: idle, Busy: busy, BusyRate: 2 << 20, Cooldown: 5 * time.Second, Interval: 500 * time.Millisecond, Delay: 30 * time.Second}, true
}

// Run shifts gears for the life of the process.
func Run(s Settings) {
	time.Sleep(s.Delay)
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	last, busy, lastBusy := read(), false, time.Time{}
	for range time.Tick(s.Interval) {
		cur := read()
		rate := float64(cur-last) / s.Interval.Seconds()
		last = cur
		now := time.Now()
		switch {
		case rate >= s.BusyRate:
			lastBusy = now
			if !busy {
				debug.SetGCPercent(s.Busy)
				busy = true
			}
		case busy && now.Sub(lastBusy) >= s.Cooldown:
			debug.SetGCPercent(s.Idle)
			debug.FreeOSMemory()
			busy = false
		}
	}
}
