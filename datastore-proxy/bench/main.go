// Command bench measures the datastore-proxy against the backends it sits
// on (make bench-datastore; figures go to docs/benchmarks.md):
//
//   - put/get/list/watch-event throughput and p50/p99 latency with 16
//     concurrent clients, through the proxy with 1, 10 and 100 tenants vs
//     directly to the same backend (etcd direct; kine direct for SQLite and
//     PostgreSQL), all over mutual TLS on loopback;
//   - fairness: one tenant's get p99 alone vs while another tenant floods
//     the proxy with writes.
//
// Everything runs in this process on loopback: etcd (embedded), kine and
// the proxy's own server code; PostgreSQL at 127.0.0.1:5432 when present.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"runtime/pprof"
	"time"
)

func main() {
	ops := flag.Int("ops", 2000, "operations per measurement")
	conc := flag.Int("clients", 16, "concurrent clients")
	backends := flag.String("backends", "etcd,sqlite,postgres", "backends to measure")
	flag.IntVar(&backendSlots, "backend-slots", 32, "the proxy's --backend-slots")
	flag.IntVar(&writeSlots, "backend-write-slots", 0, "the proxy's --backend-write-slots (0: its default)")
	flag.IntVar(&tenantShare, "backend-tenant-share", 2, "the proxy's --backend-tenant-share")
	fairOnly := flag.Bool("fairness-only", false, "measure only fairness")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	work, err := os.MkdirTemp("", "kplex-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	pki, err := newBenchPKI(work)
	if err != nil {
		log.Fatal(err)
	}

	fmt.Printf("## datastore-proxy benchmark (%s, %d clients, %d ops per cell)\n\n", time.Now().UTC().Format("2006-01-02"), *conc, *ops)
	for _, b := range splitComma(*backends) {
		if b == "postgres" && !reachable("127.0.0.1:5432") {
			fmt.Printf("### %s: SKIPPED (no server at 127.0.0.1:5432)\n\n", b)
			continue
		}
		env, err := startBackend(ctx, work, b, pki)
		if err != nil {
			log.Fatalf("%s: %v", b, err)
		}
		fmt.Printf("### %s\n\n| target | put ops/s | put p50/p99 ms | get ops/s | get p50/p99 ms | list(100) ops/s | list p50/p99 ms | watch events/s |\n|---|---|---|---|---|---|---|---|\n", b)
		rows := []struct {
			name    string
			tenants int
		}{{env.directName, 0}, {"proxy, 1 tenant", 1}, {"proxy, 10 tenants", 10}, {"proxy, 100 tenants", 100}}
		for _, r := range rows {
			if *fairOnly {
				break
			}
			clients, cleanup, err := env.clients(r.tenants)
			if err != nil {
				log.Fatalf("%s %s: %v", b, r.name, err)
			}
			res := measure(ctx, clients, *conc, *ops)
			fmt.Printf("| %s | %s |\n", r.name, res)
			cleanup()
		}
		fmt.Println()
		if b != "postgres" {
			fair, err := fairness(ctx, env, *conc)
			if err != nil {
				log.Fatalf("%s fairness: %v", b, err)
			}
			fmt.Printf("Fairness (%s): %s\n\n", b, fair)
		}
		env.stop()
	}
}

var backendSlots, writeSlots, tenantShare int

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
