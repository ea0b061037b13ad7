// Command bench measures the datastore-proxy against the backends it sits
// on (make bench-datastore; figures go to docs/benchmarks.md):
//
//   - put/get/list/watch-event throughput and p50/p99 latency with 16
//     concurrent clients, through the proxy with 1, 10 and 100 tenants vs
//     directly to the same backend with as many clients, each with its
//     own key prefix (etcd direct; kine direct for SQLite and PostgreSQL),
//     all over mutual TLS on loopback;
//   - the CPU time and the read and write system calls per operation of
//     the clients, the proxy and the store server, each in its own
//     process;
//   - on etcd, the writes each of etcd's WAL syncs carried in the put and
//     watch cells (walsyncs.go);
//   - fairness: one tenant's get and put p99 alone vs while another tenant
//     floods the proxy with writes, and the same without the proxy.
//   - the fair share's price: a flooding tenant's puts a second beside a
//     tenant putting once every 100 ms vs alone (burst.go).
//
// Everything runs on loopback: the clients in this process; etcd
// (embedded), kine and the proxy (its own code and command line) each in
// a child process of this binary (serve.go); PostgreSQL at 127.0.0.1:5432
// when present.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if serveChild(os.Args[1:]) {
		return
	}
	ops := flag.Int("ops", 2000, "operations per measurement")
	conc := flag.Int("clients", 16, "concurrent clients")
	backends := flag.String("backends", "etcd,sqlite,postgres", "backends to measure (etcd, sqlite, postgres, mysql)")
	flag.IntVar(&backendSlots, "backend-slots", 32, "the proxy's --backend-slots")
	flag.IntVar(&writeSlots, "backend-write-slots", 0, "the proxy's --backend-write-slots (0: its default)")
	flag.IntVar(&tenantShare, "backend-tenant-share", 2, "the proxy's --backend-tenant-share")
	flag.IntVar(&tenantWriteShare, "backend-tenant-write-share", -1, "the proxy's --backend-tenant-write-share (-1: the backend's default)")
	flag.Float64Var(&tenantBusyShare, "backend-tenant-busy-share", -1, "the proxy's --backend-tenant-busy-share (-1: its default for the backend)")
	floodWriters := flag.Int("flood-writers", 0, "the fairness flood's concurrent writers (0: 4 x -clients)")
	flag.IntVar(&floodValueBytes, "flood-value-bytes", len(value), "the size of the fairness flood's values")
	proxyFlags := flag.String("proxy-flags", "", "space-separated flags added to the proxy's command line, e.g. \"--max-concurrent-streams=256\"")
	flag.IntVar(&floodNice, "flood-nice", 0, "niceness of the fairness flood's client process (0: as the benchmark; 10: as if the flooding tenant ran on other machines), with and without the proxy alike")
	proxyEnvFlag := flag.String("proxy-env", "", "space-separated NAME=value settings added to the proxy's environment, e.g. \"GOGC=400 GOMAXPROCS=1\"")
	fairOnly := flag.Bool("fairness-only", false, "measure only fairness")
	withFairness := flag.Bool("fairness", true, "measure fairness too (false: only throughput)")
	fairDirect := flag.Bool("fairness-direct", true, "measure fairness straight to the store too, the floor the proxy's figure compares with (false: through the proxy only, for quicker A/B runs)")
	flag.BoolVar(&listStream, "list-stream", false, "list with RangeStream, as kube-apiserver v1.37 does, instead of Range, in direct and proxied rows alike")
	rounds := flag.Int("rounds", 1, "run the throughput rows this many times in turn and show each figure's median")
	cpuProfile := flag.String("cpuprofile", "", "write the proxy's CPU profile to this file (with one backend)")
	flag.BoolVar(&etcdSeparateHTTP, "etcd-separate-http", false, "etcd serves its HTTP endpoints on a client URL of their own (--listen-client-http-urls), so that gRPC on its TLS client URL is grpc-go's own transport rather than net/http's (etcd's default, and kubeadm's)")
	tenants := flag.String("tenants", "1,10,100", "the throughput rows' numbers of tenants, each with a direct row of as many clients")
	flag.StringVar(&cellProfile, "cell-cpuprofile", "", "profile the store's process and the proxy in each throughput cell apart, to PREFIX-N-CELL-PROCESS.prof (N counts the rows of every round, the direct row of a pair first, as logged)")
	flag.IntVar(&pinStoreCPU, "pin-store", -1, "etcd only: run etcd on this CPU alone, the clients and the proxy on the others (-1: no pinning)")
	flag.BoolVar(&relayHop, "relay", false, "etcd only, with -fairness=false: in place of the proxy, a relay that only copies bytes (relay.go), so that the proxied rows measure what the extra hop alone costs")
	flag.IntVar(&pinProxyCPU, "pin-proxy", -1, "run the proxy on this CPU alone, the clients and the store on the others, in direct and proxied rows alike (-1: no pinning)")
	flag.Parse()
	tenantCounts = nil
	for _, t := range splitComma(*tenants) {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 {
			log.Fatalf("-tenants: want positive numbers separated by commas, got %q", *tenants)
		}
		tenantCounts = append(tenantCounts, n)
	}
	if len(tenantCounts) == 0 {
		log.Fatal("-tenants: name at least one number of tenants")
	}
	if cellProfile != "" && (*cpuProfile != "" || len(splitComma(*backends)) != 1) {
		log.Fatal("-cell-cpuprofile: with one backend (-backends), and not with -cpuprofile")
	}
	for _, kv := range strings.Fields(*proxyEnvFlag) {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
			log.Fatalf("-proxy-env: %q is not NAME=value", kv)
		}
		proxyEnv = append(proxyEnv, kv)
	}
	proxyExtraFlags = strings.Fields(*proxyFlags)
	if *floodWriters < 0 || floodValueBytes < 0 {
		log.Fatal("-flood-writers, -flood-value-bytes: want numbers, not negative")
	}
	writersOfFlood := 4 * *conc
	if *floodWriters > 0 {
		writersOfFlood = *floodWriters
	}
	if *fairOnly && !*withFairness {
		log.Fatal("-fairness-only and -fairness=false: nothing to measure")
	}
	if *rounds < 1 {
		log.Fatal("-rounds: want at least 1")
	}
	if pinProxyCPU >= 0 {
		others := otherCPUs(pinProxyCPU)
		if pinStoreCPU >= 0 || len(others) == 0 {
			log.Fatal("-pin-proxy: not with -pin-store, and only on a machine with more than one CPU")
		}
		if err := pinSelf(others); err != nil {
			log.Fatal(err)
		}
	}
	if pinStoreCPU >= 0 {
		others := otherCPUs(pinStoreCPU)
		if *backends != "etcd" || len(others) == 0 {
			log.Fatal("-pin-store: only with -backends etcd, on a machine with more than one CPU")
		}
		if err := pinSelf(others); err != nil {
			log.Fatal(err)
		}
	}
	if relayHop && (*backends != "etcd" || *withFairness || *cpuProfile != "") {
		log.Fatal("-relay: only with -backends etcd and -fairness=false, and not with -cpuprofile (-cell-cpuprofile profiles the relay)")
	}
	if *cpuProfile != "" && len(splitComma(*backends)) != 1 {
		log.Fatal("-cpuprofile: name one backend (-backends)")
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

	var failed []string // what failed, for the exit status; the rest goes on
	fmt.Printf("## datastore-proxy benchmark (%s, %d clients, %d ops per cell)\n\n", time.Now().UTC().Format("2006-01-02"), *conc, *ops)
	for _, b := range splitComma(*backends) {
		if srv, ok := sqlServers[b]; ok && !reachable(srv.addr) {
			fmt.Printf("### %s: SKIPPED (no server at %s)\n\n", b, srv.addr)
			continue
		}
		env, err := startBackend(work, b, pki, *cpuProfile)
		if err != nil {
			if env != nil {
				env.stop()
			}
			log.Fatalf("%s: %v", b, err)
		}
		fmt.Printf("### %s\n\n", b)
		if !*fairOnly {
			if err := throughput(ctx, env, *conc, *ops, *rounds); err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", b, err))
			}
		}
		fmt.Println()
		if *withFairness {
			for _, f := range []struct {
				writers int
				direct  bool
				through string
			}{
				{writersOfFlood, false, "through the proxy"},
				{writersOfFlood, true, "without the proxy, " + env.directName},
				{1, true, "without the proxy, " + env.directName},
			} {
				if f.direct && !*fairDirect {
					continue
				}
				if f.direct && b == "postgres" && f.writers > pgDirectWriters {
					// kine opens a PostgreSQL connection per concurrent
					// request: 64 writers straight to kine pass the
					// server's max_connections (100) beside the proxy's
					// pool, and fail.
					fmt.Printf("Fairness (%s, %d writer(s) %s): not measured (kine direct needs a connection per writer; PostgreSQL allows 100, and the benchmark uses at most %d of them here)\n\n", b, f.writers, f.through, pgDirectWriters)
					continue
				}
				fair, err := fairness(ctx, env, f.writers, f.direct)
				if err != nil {
					fmt.Printf("Fairness (%s, %d writer(s) %s): FAILED: %v\n\n", b, f.writers, f.through, err)
					failed = append(failed, fmt.Sprintf("%s fairness, %d writer(s) %s: %v", b, f.writers, f.through, err))
					continue
				}
				if floodNice != 0 {
					f.through += fmt.Sprintf(", the flood's client at nice %d", floodNice)
				}
				if floodValueBytes != len(value) {
					f.through += fmt.Sprintf(", values of %d bytes", floodValueBytes)
				}
				fmt.Printf("Fairness (%s, %d writer(s) %s): %s\n\n", b, f.writers, f.through, fair)
			}
			if price, err := burstPrice(ctx, env, writersOfFlood); err != nil {
				fmt.Printf("The fair share's price (%s): FAILED: %v\n\n", b, err)
				failed = append(failed, fmt.Sprintf("%s fair share's price: %v", b, err))
			} else {
				fmt.Printf("The fair share's price (%s, through the proxy): %s\n\n", b, price)
			}
			if rss := peakRSS(env.proxy.pid()); rss > 0 {
				fmt.Printf("The proxy's peak resident memory so far: %.0f MiB.\n\n", rss)
			}
		}
		env.stop()
	}
	if len(failed) > 0 {
		// What the runs measured is printed above; the exit status says
		// that some of it is missing.
		os.RemoveAll(work)
		log.Fatalf("failed:\n- %s", strings.Join(failed, "\n- "))
	}
}

// pgDirectWriters is the most fairness writers sent straight to kine on
// PostgreSQL: one connection each, beside the proxy's pool, within the
// server's default max_connections of 100.
const pgDirectWriters = 32

var backendSlots, writeSlots, tenantShare, tenantWriteShare int

// etcdSeparateHTTP: -etcd-separate-http.
var etcdSeparateHTTP bool
var tenantBusyShare float64

// proxyEnv is added to the proxy's environment (-proxy-env).
var proxyEnv []string

// proxyExtraFlags are added to the proxy's command line (-proxy-flags).
var proxyExtraFlags []string

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
