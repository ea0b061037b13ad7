package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// With -store-cpuprofile PREFIX, the etcd child profiles each measured row
// on its own: the benchmark signals it (SIGUSR1) before and after the row,
// and the child writes PREFIX-N.prof, N counting the rows from 1, so that
// what etcd does for a direct row and for a proxied one can be compared.

// storeProfileEnv names the child's profile prefix in its environment.
const storeProfileEnv = "KPLEX_BENCH_STORE_PROFILE"

var storeProfile string

// profileOnSignal toggles a CPU profile of this process on each SIGUSR1,
// to prefix-N.prof; it returns what stops the one running, if any.
func profileOnSignal(prefix string) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var f *os.File
		n := 0
		for {
			select {
			case <-sig:
			case <-done:
				if f != nil {
					pprof.StopCPUProfile()
					f.Close()
				}
				return
			}
			if f != nil {
				pprof.StopCPUProfile()
				f.Close()
				f = nil
				continue
			}
			n++
			var err error
			if f, err = os.Create(fmt.Sprintf("%s-%d.prof", prefix, n)); err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "store profile %d: %v\n", n, err)
				if f != nil {
					f.Close()
					f = nil
				}
			}
		}
	}()
	return func() { signal.Stop(sig); close(done); <-stopped }
}

// toggleStoreProfile starts or stops the store's profile of a row.
func (e *env) toggleStoreProfile() {
	if storeProfile != "" && e.store != nil {
		_ = e.store.cmd.Process.Signal(syscall.SIGUSR1)
	}
}
